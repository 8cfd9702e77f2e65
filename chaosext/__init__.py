"""failover-gameday's Chaos Toolkit extension: RDS and ElastiCache failover under load
(directly, or through AWS FIS experiments).

`chaos discover chaosext` publishes the activities of the modules listed in `ACTIVITY_MODULES`
(those that are installed; optional parts of the pack may be absent).
"""
import importlib.util
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import List

from chaoslib.discovery.discover import (
    discover_actions,
    discover_probes,
    initialize_discovery_result,
)
from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["__version__", "discover"]

try:
    __version__ = version("failover-gameday")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"

logger = logging.getLogger("chaostoolkit")

# (module, activity type) in the order `chaos discover` lists them.
ACTIVITY_MODULES = [
    ("chaosext.rds.actions", "action"),
    ("chaosext.rds.probes", "probe"),
    ("chaosext.elasticache.actions", "action"),
    ("chaosext.elasticache.probes", "probe"),
    ("chaosext.fis.actions", "action"),
    ("chaosext.fis.probes", "probe"),
    ("chaosext.dataplane", "probe"),
    ("chaosext.shop.probes", "probe"),
    ("chaosext.load.probes", "probe"),
    ("chaosext.alerts.probes", "probe"),
]


def discover(discover_system: bool = True) -> Discovery:
    """Describe the activities this extension exports (for `chaos discover chaosext`)."""
    logger.info("Discovering capabilities from chaosext")
    discovery = initialize_discovery_result("chaosext", __version__, "aws")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def load_exported_activities() -> List[DiscoveredActivities]:
    """Collect the `__all__` activities of every installed activity module."""
    activities = []
    for module, kind in ACTIVITY_MODULES:
        if not _module_exists(module):
            continue
        finder = discover_actions if kind == "action" else discover_probes
        activities.extend(finder(module))
    return activities


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # parent package missing
        return False
