"""Fail the run's resources back to where target.json says they were before the run.

A DB instance whose writer is no longer in its original AZ gets one more forced failover (the
same guarded `force_failover`). A replication group node group whose primary changed gets a
TestFailover when that promotes the original node for sure (exactly one replica, the original
primary); with more replicas ElastiCache picks the replica itself, so the command to choose it
(`ModifyReplicationGroup --primary-cluster-id`) is printed instead of guessed.
"""
import os
from pathlib import Path
from typing import Dict, Optional

from chaosext.aws import aws_client
from chaosext.elasticache import actions as cache_actions
from chaosext.elasticache.probes import describe_group, roles
from chaosext.errors import GamedayError
from chaosext.rds import actions as rds_actions
from chaosext.rds.probes import describe_instance

from .preflight import environment, guards, mixing

__all__ = ["failback"]


def _env(target: dict, state_dir: Optional[Path]) -> Dict[str, str]:
    env = dict(os.environ)
    if target.get("kind") == "lab":
        from woolab import manage
        env.update(manage.env(state_dir or manage.default_state_dir()))
    else:
        mixing.refuse(env, what="failback of an AWS run")
    if target.get("region"):
        env.update(AWS_REGION=target["region"], AWS_DEFAULT_REGION=target["region"])
    return env


def _db(name: str, before: dict, configuration: dict) -> str:
    now = describe_instance(aws_client("rds", configuration), name).get("AvailabilityZone")
    if not before.get("az") or now == before["az"]:
        return f"DB instance {name}: writer already in {now}"
    rds_actions.force_failover(name, wait=True, timeout=900, configuration=configuration)
    return f"DB instance {name}: failed back from {now} to {before['az']}"


def _group(name: str, before: dict, configuration: dict) -> str:
    group = describe_group(aws_client("elasticache", configuration), name)
    done = []
    for shard in group.get("NodeGroups", []):
        now = roles(shard)
        wanted = (before.get("primaries") or {}).get(now["node_group"])
        if not wanted or now["node"] == wanted:
            done.append(f"{now['node_group']}: primary already {now['node']}")
        elif now["replicas"] == [wanted]:
            cache_actions.test_failover(name, now["node_group"], wait=True, timeout=900,
                                        configuration=configuration)
            done.append(f"{now['node_group']}: primary back on {wanted}")
        else:
            done.append(f"{now['node_group']}: not failed back (ElastiCache chooses among "
                        f"{len(now['replicas'])} replicas); run: aws elasticache modify-replication-group "
                        f"--replication-group-id {name} --primary-cluster-id {wanted} --apply-immediately")
    return f"replication group {name}: " + "; ".join(done)


def failback(target: dict, yes: bool, state_dir: Optional[Path] = None) -> None:
    """Print what moved back; GamedayError when nothing was recorded to fail back to."""
    original = target.get("original") or {}
    if not original:
        raise GamedayError("target.json records no placement before the run (an older run?); "
                           "fail back by hand (gameday lab failover / aws rds reboot-db-instance --force-failover)")
    if target.get("kind") == "aws":
        guards.confirm(f"gameday: fail back {', '.join(original)} (one more failover each)", yes,
                       prompt="Type yes to fail these resources back: ", what="failback")
    env = _env(target, state_dir)
    configuration = {"aws_region": env.get("AWS_REGION")}
    with environment(env):
        for name, before in original.items():
            step = _db if before.get("kind") == "db-instance" else _group
            print("failback: " + step(name, before, configuration), flush=True)
