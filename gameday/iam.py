"""The IAM policy in `infra/iam/gameday-policy.json` is the one source of the pack's permissions.

`ACTIVITY_ACTIONS` says which IAM actions each activity needs; tests check that every one is in
the policy, that every AWS call in `chaosext/` is covered, and that `docs/iam.md` (written by
`python -m gameday.iam > docs/iam.md`) is what `markdown()` renders from the policy.
"""
import importlib.resources
import json
import sys
from pathlib import Path
from typing import Dict, List, Set


__all__ = ["POLICY_PATH", "load_policy", "policy_actions", "ACTIVITY_ACTIONS", "needed_actions",
           "MUTATING", "markdown", "experiment_actions", "experiment_line"]

# package data (the preflight reads it on every run, from a wheel too); infra/iam/gameday-policy.json
# in a checkout is a link to it
POLICY_PATH = Path(str(importlib.resources.files("gameday").joinpath("policy", "gameday-policy.json")))

_RDS_INSTANCE = ["rds:DescribeDBInstances", "rds:ListTagsForResource", "rds:DescribeEvents",
                 "rds:RebootDBInstance"]
_CACHE_READ = ["elasticache:DescribeReplicationGroups", "elasticache:ListTagsForResource",
               "elasticache:DescribeEvents"]
_FIS = ["fis:CreateExperimentTemplate", "fis:GetExperimentTemplate", "fis:StartExperiment", "fis:GetExperiment",
        "fis:StopExperiment", "fis:ListExperiments", "iam:PassRole"]
# where "primary" is (chaosext/fis/placement.py): the DB instance, or a DB cluster's writer, and the cache
_PLACEMENT = _RDS_INSTANCE[:3] + ["rds:DescribeDBClusters"] + _CACHE_READ
ACTIVITY_ACTIONS: Dict[str, List[str]] = {
    "chaosext.rds.actions.force_failover": _RDS_INSTANCE,
    "chaosext.rds.actions.reboot_db_instance": _RDS_INSTANCE,
    # a cluster's members (their AZs) come from DescribeDBInstances (chaosext/rds/targets.py)
    "chaosext.rds.actions.failover_db_cluster": ["rds:DescribeDBClusters", "rds:DescribeDBInstances",
                                                 "rds:ListTagsForResource", "rds:DescribeEvents",
                                                 "rds:FailoverDBCluster"],
    "chaosext.elasticache.actions.test_failover": _CACHE_READ + ["elasticache:TestFailover"],
    "chaosext.elasticache.actions.delete_primary_node": _CACHE_READ + [
        "elasticache:DeleteCacheCluster", "elasticache:TestFailover"],
    "chaosext.elasticache.actions.restore_replicas": _CACHE_READ + [
        "elasticache:IncreaseReplicaCount", "elasticache:CreateCacheCluster",
        "elasticache:AddTagsToResource"],
    "chaosext.shop.actions.checkout_through_db_failover": ["rds:DescribeDBInstances"],
    "chaosext.shop.actions.remember_carts": [],
    "chaosext.shop.actions.warm_catalogue": [],
    # FIS: the runner creates, starts, watches and stops experiments; FIS itself (its role) acts
    "chaosext.fis.actions.az_power_interruption": _FIS + _PLACEMENT,
    "chaosext.fis.actions.run_experiment": _FIS,
    "chaosext.fis.actions.reboot_db_instances": _FIS + _RDS_INSTANCE[:3],
    "chaosext.fis.actions.failover_db_cluster": _FIS + ["rds:DescribeDBClusters", "rds:DescribeDBInstances",
                                                        "rds:ListTagsForResource"],
    "chaosext.fis.actions.interrupt_cache_az_power": _FIS + _CACHE_READ,
    "chaosext.fis.actions.stop_experiment": ["fis:StopExperiment", "fis:GetExperiment"],
    # FIS network faults: "primary" is resolved from the DB and the cache; FIS's role cuts or slows
    "chaosext.fis.actions.disrupt_az_connectivity": _FIS + _PLACEMENT,
    "chaosext.fis.actions.az_application_slowdown": _FIS + _PLACEMENT,
    "chaosext.fis.actions.cross_az_traffic_slowdown": _FIS + _PLACEMENT,
    # lab-only faults: they talk to the lab's control API, never to AWS
    "chaosext.lab.actions.crash_db_primary": [],
    "chaosext.lab.actions.crash_cache_primary": [],
    "chaosext.network.actions.impair_az_network": [],
    "chaosext.network.actions.clear_network_impairments": [],
    "chaosext.network.probes.wait_for_impairments_to_end": [],
    "chaosext.network.probes.network_impairments": [],
}
MUTATING = {"fis:StartExperiment", "fis:CreateExperimentTemplate", "rds:RebootDBInstance", "rds:FailoverDBCluster", "elasticache:TestFailover",
            "elasticache:DeleteCacheCluster", "elasticache:IncreaseReplicaCount",
            "elasticache:CreateCacheCluster", "elasticache:AddTagsToResource"}


# The role FIS assumes (GAMEDAY_FIS_ROLE_ARN) acts on the targets, not the runner: its rows, per FIS
# action the pack runs, from AWS's managed policy for that service (AWS Managed Policy Reference).
FIS_ROLE_ROWS = [
    ("aws:rds:failover-db-cluster", "`rds:FailoverDBCluster` on `arn:aws:rds:*:*:cluster:*`; "
     "`rds:DescribeDBClusters`, `rds:DescribeDBInstances`, `tag:GetResources` on `*`",
     "AWSFaultInjectionSimulatorRDSAccess"),
    ("aws:rds:reboot-db-instances", "`rds:RebootDBInstance` on `arn:aws:rds:*:*:db:*`; "
     "`rds:DescribeDBClusters`, `rds:DescribeDBInstances`, `tag:GetResources` on `*`",
     "AWSFaultInjectionSimulatorRDSAccess"),
    ("aws:network:disrupt-connectivity", "the EC2 network-ACL actions listed in [fis.md](fis.md)",
     "AWSFaultInjectionSimulatorNetworkAccess"),
]


def _fis_role_lines() -> List[str]:
    lines = ["", "## The role FIS assumes (`GAMEDAY_FIS_ROLE_ARN`)", "",
             "FIS experiments act through this role, not through the runner's policy above (the runner",
             "only needs `iam:PassRole` on it). Per FIS action the pack runs, from the AWS managed",
             "policy named (AWS Managed Policy Reference); attaching that policy grants them. Other FIS",
             "actions: [fis.md](fis.md), \"Configuration\".", "",
             "| FIS action | the role needs | AWS managed policy |", "|---|---|---|"]
    return lines + [f"| `{action}` | {needs} | `{policy}` |" for action, needs, policy in FIS_ROLE_ROWS]


def load_policy(path: Path = POLICY_PATH) -> dict:
    return json.loads(Path(path).read_text())


def _as_list(value) -> List[str]:
    return [value] if isinstance(value, str) else list(value or [])


def policy_actions(policy: dict = None) -> Set[str]:
    policy = policy or load_policy()
    return {a for s in policy["Statement"] if s.get("Effect") == "Allow" for a in _as_list(s["Action"])}


def needed_actions(funcs: List[str]) -> Dict[str, List[str]]:
    """{activity: IAM actions}; a Python activity the pack does not know maps to None (a process
    or HTTP step, such as a pause, calls no AWS API of ours)."""
    return {f: ACTIVITY_ACTIONS.get(f, [] if " " in f or "." not in f else None) for f in funcs}


def experiment_actions(spec: dict) -> List[str]:
    """The IAM actions an experiment's method and rollbacks need: what the preflight checks and
    what each page of docs/experiments/ lists (a test keeps them equal)."""
    funcs = []
    for activity in list(spec.get("method") or []) + list(spec.get("rollbacks") or []):
        provider = activity.get("provider") or {} if isinstance(activity, dict) else {}
        if activity.get("type") == "action" and provider.get("type") == "python":
            funcs.append(f"{provider.get('module')}.{provider.get('func')}")
    return sorted({a for acts in needed_actions(funcs).values() if acts for a in acts})


def experiment_line(spec: dict, name: str) -> str:
    """The IAM paragraph of an experiment's page in docs/experiments/."""
    actions = experiment_actions(spec)
    listed = ", ".join(f"`{a}`" for a in actions) or "none (it calls no AWS API)"
    return (f"**IAM** (method and rollbacks; `python -m gameday.iam --experiment {name}`): {listed}.")


def markdown(policy: dict = None) -> str:
    """The policy as a Markdown table: statement, actions, resources, condition."""
    policy = policy or load_policy()
    lines = ["# IAM permissions", "",
             "Generated from [`infra/iam/gameday-policy.json`](../infra/iam/gameday-policy.json) by",
             "`python -m gameday.iam > docs/iam.md`; a test fails when the two differ. Attach that",
             "file as the runner's policy; nothing else is needed (`sts:GetCallerIdentity` needs no",
             "permission; `iam:SimulatePrincipalPolicy` is optional and only lets the dry run check",
             "the fault actions; see [Before you run against AWS](before-aws.md)).", "",
             "| statement | actions | resources | condition |", "|---|---|---|---|"]
    for s in policy["Statement"]:
        condition = "; ".join(f"{op} {k} = {v}" for op, kv in (s.get("Condition") or {}).items()
                              for k, v in kv.items()) or "—"
        lines.append(f"| {s.get('Sid', '')} | {', '.join(f'`{a}`' for a in _as_list(s['Action']))} | "
                     f"{', '.join(f'`{r}`' for r in _as_list(s['Resource']))} | {condition} |")
    return "\n".join(lines + _fis_role_lines()) + "\n"


if __name__ == "__main__":  # python -m gameday.iam > docs/iam.md (or --experiment NAME); behaves on pipes
    from gameday.stdout import exit_code, guarded
    with guarded() as out:
        if sys.argv[1:2] == ["--experiment"] and len(sys.argv) == 3:
            from gameday.run import load_and_validate, resolve
            sys.stdout.write(experiment_line(load_and_validate(resolve(sys.argv[2])), Path(sys.argv[2]).stem) + "\n")
        else:
            sys.stdout.write(markdown())
    sys.exit(exit_code(out, 0))
