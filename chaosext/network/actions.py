"""Gray failures on the lab: an AZ's network slowed, lossy or cut off while its hosts stay up.

`impair_az_network` applies one impairment through the lab's `/_lab/network` route and hands a
fault of kind "impairment" (chaosext.fault_model) to `chaosext.recovery.run_fault`: injected
when the impairment starts, control plane done when it ends, and per service the time to
recover after its end. `clear_network_impairments` (a rollback) lifts every impairment this
run started, also after Ctrl-C or SIGTERM to `gameday run`. On AWS both refuse in one line and
name the FIS variant (docs/aws-gray-failures.md).
"""
import logging
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails, thresholds
from chaosext.aws import aws_client
from chaosext.elasticache.probes import describe_group, group_target, node_group, roles
from chaosext.errors import ActivityError
from chaosext.fault_model import spec
from chaosext.lab.actions import lab_call, lab_control_url
from chaosext.network.plan import FIS_VARIANTS, Ask, ask
from chaosext.rds.probes import describe_instance, instance_target
from chaosext.recovery import Fault, dry_run_result, run_fault
from groundfloor.timefmt import iso

__all__ = ["impair_az_network", "clear_network_impairments"]

logger = logging.getLogger("chaostoolkit")
# (lab control URL, AZ) of every impairment this process started: what the rollback lifts
STARTED: List[Tuple[str, str]] = []
# how long after its planned end an impairment's services may take to write again
RECOVERY_MARGIN_SECONDS = 60.0


def refusal(fault: str) -> str:
    """The one line an impairment gives outside the lab."""
    return (f"{fault} through impair_az_network exists only in the local lab (its network layer); "
            f"on AWS use the {FIS_VARIANTS.get(fault, 'FIS network actions')} (chaosext.fis)")


class Resources:
    """The configured DB instance and replication group: their AZs, guardrails, nodes per AZ."""

    def __init__(self, db_instance_identifier: Optional[str], replication_group_id: Optional[str],
                 configuration: Configuration, secrets: Secrets) -> None:
        config = configuration or {}
        self.db_id = db_instance_identifier or config.get("db_instance_id")
        self.group_id = replication_group_id or config.get("replication_group_id")
        if not (self.db_id or self.group_id):
            raise ActivityError("impair_az_network: name the DB instance (db_instance_identifier or "
                                "configuration db_instance_id) or the replication group; nothing was changed")
        self.instance = self.group = None
        self.rds = self.cache = None
        if self.db_id:
            self.rds = aws_client("rds", configuration, secrets)
            self.instance = describe_instance(self.rds, self.db_id)
        if self.group_id:
            self.cache = aws_client("elasticache", configuration, secrets)
            self.group = describe_group(self.cache, self.group_id)

    def check(self, action: str, configuration: Configuration, service: Optional[str]) -> None:
        """Tags, allow-lists and production marks of every resource the impairment reaches."""
        if self.instance is not None and service != "cache":
            guardrails.check_target(instance_target(self.rds, self.instance), action, configuration)
        if self.group is not None and service != "db":
            guardrails.check_target(group_target(self.cache, self.group), action, configuration)

    def refresh(self) -> "Resources":
        """Describe both resources again (their primaries may have moved)."""
        if self.instance is not None:
            self.instance = describe_instance(self.rds, self.db_id)
        if self.group is not None:
            self.group = describe_group(self.cache, self.group_id)
        return self

    def primary_azs(self) -> Dict[str, str]:
        """resource -> the AZ of its primary (writer)."""
        found = {}
        if self.instance is not None:
            found[self.db_id] = self.instance.get("AvailabilityZone")
        if self.group is not None:
            found[self.group_id] = roles(node_group(self.group))["az"]
        return found

    def nodes_in(self, az: str, service: Optional[str]) -> List[str]:
        """What of the shop lives in `az`: "shop-db primary", "shop-cache-002 replica"."""
        found = []
        if self.instance is not None and service != "cache":
            if self.instance.get("AvailabilityZone") == az:
                found.append(f"{self.db_id} primary")
            if self.instance.get("SecondaryAvailabilityZone") == az:
                found.append(f"{self.db_id} standby")
        if self.group is not None and service != "db":
            for member in node_group(self.group).get("NodeGroupMembers", []):
                if member.get("PreferredAvailabilityZone") == az:
                    found.append(f"{member.get('CacheClusterId')} {member.get('CurrentRole')}")
        return found


def resolve_az(wanted: Ask, resources: Resources) -> str:
    """The AZ asked for, or the primaries' AZ (of the cache alone for a cache-only impairment)."""
    if wanted.availability_zone:
        return wanted.availability_zone
    primaries = resources.primary_azs()
    if wanted.service == "cache":
        primaries = {k: v for k, v in primaries.items() if k == resources.group_id}
    elif wanted.service == "db":
        primaries = {k: v for k, v in primaries.items() if k == resources.db_id}
    azs = set(primaries.values())
    if len(azs) != 1 or None in azs:
        where = ", ".join(f"{k} in {v}" for k, v in primaries.items()) or "none configured"
        raise ActivityError(f"impair_az_network: the primaries are not in one AZ ({where}): name the "
                            "availability_zone, or fail one over first; nothing was changed")
    return azs.pop()


class LabImpairment:
    """One impairment on the lab: start it, tell when it ended, what the lab says now."""

    def __init__(self, wanted: Ask, az: str, flows: str, resources: Resources,
                 configuration: Configuration) -> None:
        self.wanted, self.az, self.configuration = wanted, az, configuration
        self.resources = resources
        self.before = resources.primary_azs()
        self.why = refusal(wanted.fault)
        self.url = ""
        self.started: Optional[Dict[str, Any]] = None
        self.record = wanted.record(az, flows)

    def start(self) -> None:
        self.url = lab_control_url(self.configuration, self.why)
        path = "/_lab/network?" + urlencode(self.wanted.query(self.az))
        self.started = lab_call(self.configuration, path, "POST", self.why)["impairment"]
        STARTED.append((self.url, self.az))
        self.record["started_at"] = iso(self.started["started_at"])

    def poll(self) -> Tuple[bool, Dict[str, Any]]:
        """(ended, what is in force on the AZ now); once ended, where the primaries are and
        which moved during the impairment (nothing moves by itself unless Sentinel was cut)."""
        now = lab_call(self.configuration, "/_lab/network", "GET", self.why)["impairments"]
        mine = [i for i in now if i["az"] == self.az
                and abs(i["started_at"] - self.started["started_at"]) < 1e-6]
        state: Dict[str, Any] = {"in_force": [i["summary"] for i in now if i["az"] == self.az]}
        if not mine:
            if self.record["ended_at"] is None:
                self.record["ended_at"] = iso(min(time.time(), self.started["ends_at"]))
            state["primaries"] = self.resources.refresh().primary_azs()
            state["moved"] = sorted(k for k, v in state["primaries"].items() if self.before.get(k) != v)
        return not mine, state


def impair_az_network(availability_zone: Optional[str] = None, delay_ms: float = 0,
                      jitter_ms: float = 0, loss_percent: float = 0,
                      bandwidth_kbps: Optional[float] = None, blackhole: bool = False,
                      partition: Optional[str] = None, direction: str = "both",
                      duration_seconds: float = 20, sentinels: bool = False,
                      service: Optional[str] = None, fault: Optional[str] = None,
                      db_instance_identifier: Optional[str] = None,
                      replication_group_id: Optional[str] = None, wait: bool = True,
                      timeout: Optional[float] = None, poll_interval: float = 0.2,
                      measure_data_plane: bool = True, dry_run: Optional[bool] = None,
                      configuration: Configuration = None, secrets: Secrets = None
                      ) -> Dict[str, Any]:
    """Slow down, make lossy or cut off one AZ's network while its hosts stay up (lab only).

    `availability_zone` omitted or "primaries": the AZ of the DB instance's and the replication
    group's primaries (DescribeDBInstances, DescribeReplicationGroups). `service` "cache" or
    "db" impairs only that service's nodes. With `wait`, returns once the impairment ended
    (`duration_seconds`) and each service writes again: a fault result of kind "impairment"
    whose `impairment` entry says which AZ, which flows and when it started and ended, with
    each service's `time_to_recover_seconds`.
    """
    wanted = ask(availability_zone, delay_ms, jitter_ms, loss_percent, bandwidth_kbps, blackhole,
                 partition, direction, duration_seconds, sentinels, service, fault)
    lab_control_url(configuration, refusal(wanted.fault))  # on AWS: refuse before any call
    resources = Resources(db_instance_identifier, replication_group_id, configuration, secrets)
    action = f"network impairment ({wanted.fault}, lab)"
    resources.check(action, configuration, wanted.service)
    az = resolve_az(wanted, resources)
    flows = wanted.flows(az, resources.nodes_in(az, wanted.service))
    impairment = LabImpairment(wanted, az, flows, resources, configuration)
    target = resources.group_id if wanted.service == "cache" else (resources.db_id or resources.group_id)
    extra = {"impairment": impairment.record}
    fault = Fault(spec(wanted.fault), target, f"{wanted.effects()} on {az} (lab network)",
                  {"az": az, "primaries": resources.primary_azs()}, impairment.start,
                  impairment.poll, lambda since: [], extra=extra)
    if guardrails.is_dry_run(configuration, dry_run):
        return dry_run_result(fault, f"would impair {flows}")
    if timeout is None:
        timeout = wanted.duration_seconds + max(RECOVERY_MARGIN_SECONDS, thresholds.fault_timeout(
            configuration, wanted.fault, target, None, spec(wanted.fault).services))
    logger.info("Impairing %s", flows)
    return run_fault(fault, wait, timeout, poll_interval, measure_data_plane, configuration, secrets)


def clear_network_impairments(availability_zone: Optional[str] = None,
                              configuration: Configuration = None,
                              secrets: Secrets = None) -> Dict[str, Any]:
    """Lift every network impairment this run started (or those of `availability_zone`).

    Safe when nothing is in force; returns what ended and what is still in force. Outside the
    lab, with nothing started, there is nothing to lift and it says so.
    """
    wanted = [availability_zone] if availability_zone else sorted({az for _, az in STARTED})
    if not wanted:
        logger.info("No network impairment was started by this run: nothing to lift")
        return {"cleared": [], "in_force": []}
    why = refusal("az-network-slowdown")
    cleared = []
    for az in wanted:
        cleared += lab_call(configuration, "/_lab/network?" + urlencode({"clear": "1", "az": az}),
                            "POST", why)["cleared"]
    STARTED.clear()
    left = lab_call(configuration, "/_lab/network", "GET", why)["impairments"]
    logger.info("Lifted %d network impairment(s) on %s", len(cleared), ", ".join(wanted))
    return {"cleared": [f"{i['az']}: {i['summary']}" for i in cleared],
            "in_force": [f"{i['az']}: {i['summary']}" for i in left]}
