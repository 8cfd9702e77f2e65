"""What the lab's network suffers now: the impairments in force, and a wait for their end."""
import time
from typing import Any, Dict, List, Optional

from chaoslib.types import Configuration, Secrets

from chaosext.errors import ActivityError
from chaosext.lab.actions import lab_call
from chaosext.network.actions import refusal
from groundfloor.supervisor import poll_until

__all__ = ["network_impairments", "wait_for_impairments_to_end"]

END_MARGIN_SECONDS = 30.0  # the lab ends an impairment on a timer: well within this


def _in_force(configuration: Configuration, availability_zone: Optional[str]) -> List[Dict[str, Any]]:
    found = lab_call(configuration, "/_lab/network", "GET", refusal("az-network-slowdown"))["impairments"]
    return [i for i in found if availability_zone in (None, "", i["az"])]


def network_impairments(availability_zone: Optional[str] = None, configuration: Configuration = None,
                        secrets: Secrets = None) -> Dict[str, Any]:
    """The lab's network impairments in force now (all AZs, or one): `count` and one line each."""
    found = _in_force(configuration, availability_zone)
    return {"count": len(found), "impairments": [f"{i['az']}: {i['summary']}" for i in found]}


def wait_for_impairments_to_end(availability_zone: Optional[str] = None,
                                timeout: Optional[float] = None, configuration: Configuration = None,
                                secrets: Secrets = None) -> Dict[str, Any]:
    """Wait until no network impairment is in force (on `availability_zone`, or anywhere).

    For a method that started an impairment without waiting (to fail over during it): returns
    how many were still in force at the start; fails if they outlast `timeout` (by default the
    latest planned end of those in force, plus END_MARGIN_SECONDS).
    """
    found = _in_force(configuration, availability_zone)
    at_start = len(found)
    if timeout is None:
        timeout = max([i["ends_at"] - time.time() for i in found] + [0.0]) + END_MARGIN_SECONDS
    if not poll_until(lambda: not _in_force(configuration, availability_zone), float(timeout), 0.2):
        raise ActivityError(f"network impairments still in force after {timeout:g} s: "
                            + "; ".join(network_impairments(availability_zone, configuration)["impairments"]))
    return {"in_force_at_start": at_start, "ended": True}
