"""The "RDS" side of the lab: a MariaDB primary and its Multi-AZ standby, and their mechanics.

- :mod:`woolab.db.setup`: first start, users, GTID + semi-sync replication
- :mod:`woolab.db.failover`: reboot with failover and reboot in place, as RDS runs them
"""
