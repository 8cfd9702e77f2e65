"""Shop-level activities: the WooCommerce Store API journey, cart survival, graceful degradation."""
