"""What the AWS facade and the control routes may read from and ask of the lab.

The facade depends on this protocol, not on the `Lab` class: the real lab and the facade tests'
in-memory fake both implement it, and a test checks that both still match it, so the fake cannot
drift from the lab it stands in for.
"""
from typing import List, Optional, Protocol, runtime_checkable

from .config import LabConfig
from .events import EventLog


@runtime_checkable
class LabBackend(Protocol):
    config: LabConfig
    events: EventLog

    def snapshot(self) -> dict:
        """The AWS-visible state as JSON (`woolab.state.LabState.snapshot`)."""

    def start_db_reboot(self, instance_id: str, force_failover: bool) -> None:
        """RebootDBInstance: validate, mark `rebooting`, run in the background."""

    def start_db_cluster_failover(self, cluster_id: str, target: Optional[str] = None) -> str:
        """FailoverDBCluster: validate, mark `failing-over`, run in the background; returns the
        reader being promoted."""

    def start_cache_primary_loss(self, replication_group_id: str, node_group_id: str) -> None:
        """TestFailover: validate, mark the group `modifying`, run in the background."""

    def start_delete_cache_node(self, cache_cluster_id: str) -> None:
        """DeleteCacheCluster of a member node."""

    def start_add_cache_node(self, replication_group_id: str, cache_cluster_id: Optional[str] = None,
                             az: Optional[str] = None) -> str:
        """CreateCacheCluster of a replica; returns the new node id."""

    def set_tags(self, kind: str, resource_id: str, tags: dict) -> None:
        """Add or overwrite tags; `kind` is db | replication-group | cache-cluster."""

    def remove_tags(self, kind: str, resource_id: str, keys: List[str]) -> None:
        """Remove tag keys (missing keys are ignored, as AWS does)."""

    def start_az_power_interruption(self, az: str, seconds: float,
                                    node_kinds: Optional[List[str]] = None) -> List[str]:
        """Power off the lab nodes in `az` (all, or only `node_kinds`: db, cache) for `seconds`;
        returns the nodes that lost power."""

    def end_az_power_interruption(self, az: str) -> None:
        """Give the AZ its power back before the planned end."""

    def impair_network(self, values: dict) -> dict:
        """Apply one impairment to an AZ's flows (keys of `/_lab/network`: az, direction,
        delay_ms, jitter_ms, loss_percent, blackhole, partition, seconds…); refused unchanged
        (`LabInvalidState`) when invalid or contradicting one in force."""

    def clear_network(self, az: Optional[str] = None) -> List[dict]:
        """End the impairments of `az` (every AZ when None); returns what ended."""

    def network_impairments(self) -> List[dict]:
        """The impairments in force now."""
