"""What the preflight works from: the experiment with its configuration and secrets resolved
against the target's environment, and the resources and load it names.

Chaos Toolkit resolves `{"type": "env"}` entries from `os.environ`; the preflight runs in the
`gameday` process, whose environment is not yet the run's, so resolution happens inside
`environment(env)`, which swaps `os.environ` for the duration and restores it.
"""
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from chaosext.errors import GamedayError

__all__ = ["Context", "environment", "build_context", "RESOURCE_ARGS", "LOAD_CONTROL"]

LOAD_CONTROL = "chaosext.load.control"
# activity argument -> the kind of AWS resource it names
RESOURCE_ARGS = {"db_instance_identifier": "db-instance", "db_cluster_identifier": "db-cluster",
                 "replication_group_id": "replication-group"}


@contextlib.contextmanager
def environment(env: Dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Context:
    target: str  # lab | aws
    env: Dict[str, str]
    spec: dict
    configuration: Dict[str, Any]
    secrets: Dict[str, Any]  # every scope merged (the preflight reads, it never passes them on)
    run_id: str
    accept_any_account: bool = False
    resources: List[Tuple[str, str]] = field(default_factory=list)  # (kind, id)
    actions: List[dict] = field(default_factory=list)  # method + rollback actions, resolved
    facts: Dict[str, Any] = field(default_factory=dict)  # what checks found, for later checks

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.configuration.get(key)
        return default if value in (None, "") else value

    @property
    def region(self) -> Optional[str]:
        return self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION") or \
            self.setting("aws_region")

    def load_arguments(self) -> Optional[Dict[str, Any]]:
        for control in self.spec.get("controls", []):
            provider = control.get("provider", {})
            if provider.get("module") == LOAD_CONTROL:
                return dict(provider.get("arguments") or {})
        return None


def _activities(spec: dict) -> List[Tuple[str, dict]]:
    found = [("method", a) for a in spec.get("method", [])]
    found += [("rollback", a) for a in spec.get("rollbacks", [])]
    return [(phase, a) for phase, a in found if isinstance(a, dict) and a.get("type") == "action"]


def public_configuration(configuration: Dict[str, Any]) -> Dict[str, Any]:
    """The resolved configuration without anything secret-looking: what target.json records so
    reports fill an activity's `${key}` arguments with the values the run used."""
    from gameday.report.redact import SECRET_KEY
    return {k: v for k, v in configuration.items()
            if isinstance(v, (str, int, float, bool)) and not SECRET_KEY.search(k)}


def build_context(spec: dict, target: str, env: Dict[str, str], run_id: str,
                  accept_any_account: bool = False) -> Context:
    """Resolve configuration, secrets and every action's arguments as `chaos run` would."""
    from chaoslib import substitute
    from chaoslib.configuration import load_configuration
    from chaoslib.exceptions import ChaosException
    from chaoslib.secret import load_secrets
    with environment(env):
        try:
            configuration = load_configuration(dict(spec.get("configuration") or {}))
            scoped = load_secrets(dict(spec.get("secrets") or {}), configuration)
        except ChaosException as exc:
            raise GamedayError(f"the experiment's settings cannot be resolved: {exc}") from None
    secrets: Dict[str, Any] = {}
    for scope in scoped.values():
        if isinstance(scope, dict):
            secrets.update({k: v for k, v in scope.items() if v not in (None, "")})
    context = Context(target, env, spec, configuration, secrets, run_id, accept_any_account)
    context.facts["configuration"] = public_configuration(configuration)
    for phase, activity in _activities(spec):
        provider = activity.get("provider", {})
        arguments = substitute(dict(provider.get("arguments") or {}), configuration, scoped)
        func = (f"{provider.get('module')}.{provider.get('func')}" if provider.get("type") == "python"
                else f"{provider.get('type')} {provider.get('path') or provider.get('url') or ''}".strip())
        context.actions.append({"phase": phase, "name": activity.get("name"), "func": func,
                                "arguments": arguments, "background": bool(activity.get("background"))})
        for key, kind in RESOURCE_ARGS.items():
            if arguments.get(key) and (kind, arguments[key]) not in context.resources:
                context.resources.append((kind, str(arguments[key])))
    return context
