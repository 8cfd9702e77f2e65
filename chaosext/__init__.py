"""failover-gameday's Chaos Toolkit extension: RDS and ElastiCache failover under load
(directly, or through AWS FIS experiments).

`chaos discover failover-gameday` (the distribution's name; Chaos Toolkit maps it to this
package) publishes the `__all__` activities of every module named `actions` or `probes` under
`chaosext`, plus `chaosext.dataplane` and `chaosext.readplane`. Finding the modules by name rather than from a list
means a new service package is published the day it is added.

Importing the package also notes every stop signal (Ctrl-C, SIGTERM, the safeguards'
SIGUSR1/SIGUSR2), so one whose exception Python dropped is raised again before a fault is
injected or waited for (`chaosext.stopsignals`): without that, a Ctrl-C at the wrong instant is
lost and the fault goes ahead.
"""
import importlib
import logging
import pkgutil
from importlib.metadata import PackageNotFoundError, version
from typing import List, Tuple

from chaoslib.discovery.discover import (
    discover_actions,
    discover_probes,
    initialize_discovery_result,
)
from chaoslib.types import DiscoveredActivities, Discovery

from chaosext import stopsignals

__all__ = ["__version__", "discover", "activity_modules"]

try:
    __version__ = version("failover-gameday")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"

logger = logging.getLogger("chaostoolkit")
stopsignals.install()

KINDS = {"actions": "action", "probes": "probe"}
EXTRA_ACTIVITY_MODULES = [("chaosext.dataplane", "probe"), ("chaosext.readplane", "probe"),
                          ("chaosext.load.safeguard", "probe")]


def discover(discover_system: bool = True) -> Discovery:
    """Describe the activities this extension exports (for `chaos discover failover-gameday`)."""
    logger.info("Discovering capabilities from failover-gameday (chaosext)")
    discovery = initialize_discovery_result("failover-gameday", __version__, "aws")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def activity_modules() -> List[Tuple[str, str]]:
    """(module, activity type) of every published module, in a stable order.

    Only packages are walked (importing one runs its `__init__`, never a module body), so the
    Locust files in `chaosext/loadtests` (not a package) are never imported here.
    """
    found = []
    for info in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        if not info.ispkg:
            continue
        package = importlib.import_module(info.name)
        for sub in pkgutil.iter_modules(package.__path__, prefix=info.name + "."):
            kind = KINDS.get(sub.name.rsplit(".", 1)[1])
            if kind and not sub.ispkg:
                found.append((sub.name, kind))
    return sorted(found) + EXTRA_ACTIVITY_MODULES


def load_exported_activities() -> List[DiscoveredActivities]:
    """Collect the `__all__` activities of every activity module."""
    activities = []
    for module, kind in activity_modules():
        finder = discover_actions if kind == "action" else discover_probes
        activities.extend(finder(module))
    return activities
