"""One FIS experiment on the lab: its states, target resolution, action ordering and stop.

Why: the states and their order are what FIS documents, so a client that waits for
``completed``/``stopped``/``failed`` behaves the same on the lab and on AWS (FIS API reference,
``ExperimentState`` and ``ExperimentActionState``; user guide "Actions for AWS FIS" for
``startAfter``; "Troubleshooting" for the error codes ``InvalidTarget``/``ConfigurationFailure``):

- experiment: ``pending`` -> ``initiating`` (targets resolved) -> ``running`` -> ``completed``;
  a stop request -> ``stopping`` -> ``stopped``; an error -> ``failed`` with ``state.error``.
- action: ``pending`` -> ``running`` -> ``completed``; ``skipped`` (its target resolved to
  nothing and ``emptyTargetResolutionMode`` is ``skip``); ``cancelled`` (never started because
  the experiment ended); ``stopped``; ``failed``.
Actions without ``startAfter`` start together; the others when all they wait for completed.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from woolab.facade.fis_actions import RUNNERS, ActionFailed, ActionRun
from woolab.facade.fis_catalog import ACTIONS
from woolab.facade.fis_targets import Resource, TargetNotResolved, resolve

TERMINAL = ("completed", "stopped", "failed")


@dataclass
class ActionState:
    name: str
    definition: Dict[str, Any]  # the template's action
    status: str = "pending"
    reason: Optional[str] = None
    start: Optional[float] = None
    end: Optional[float] = None

    def set(self, status: str, reason: Optional[str] = None) -> None:
        self.status, self.reason = status, reason
        if status == "running":
            self.start = time.time()
        elif status in ("completed", "stopped", "failed", "cancelled", "skipped") and self.start:
            self.end = time.time()

    def output(self) -> Dict[str, Any]:
        out = {k: v for k, v in self.definition.items() if k != "description" or v}
        out["state"] = {"status": self.status, **({"reason": self.reason} if self.reason else {})}
        out.update(startTime=self.start, endTime=self.end)
        return out


@dataclass
class Experiment:
    id: str
    arn: str
    template_id: str
    template: Dict[str, Any]  # ExperimentTemplate output dict (targets, actions, roleArn...)
    tags: Dict[str, str]
    created: float = field(default_factory=time.time)
    status: str = "pending"
    reason: Optional[str] = None
    error: Optional[Dict[str, str]] = None
    start: Optional[float] = None
    end: Optional[float] = None
    actions: Dict[str, ActionState] = field(default_factory=dict)
    resolved: Dict[str, List[Resource]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.actions = {name: ActionState(name, dict(a)) for name, a in self.template["actions"].items()}

    def state(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.error:
            out["error"] = dict(self.error)
        return out

    def output(self) -> Dict[str, Any]:
        """The FIS ``Experiment`` structure."""
        with self.lock:
            return {
                "id": self.id, "arn": self.arn, "experimentTemplateId": self.template_id,
                "roleArn": self.template["roleArn"], "state": self.state(),
                "targets": self.template.get("targets", {}),
                "actions": {name: a.output() for name, a in self.actions.items()},
                "stopConditions": self.template["stopConditions"],
                "creationTime": self.created, "startTime": self.start, "endTime": self.end,
                "tags": self.tags, "experimentOptions": self._options(),
            }

    def summary(self) -> Dict[str, Any]:
        with self.lock:
            return {"id": self.id, "arn": self.arn, "experimentTemplateId": self.template_id,
                    "state": self.state(), "creationTime": self.created, "tags": self.tags,
                    "experimentOptions": self._options()}

    def _options(self) -> Dict[str, str]:
        options = self.template.get("experimentOptions") or {}
        return {"accountTargeting": options.get("accountTargeting", "single-account"),
                "emptyTargetResolutionMode": options.get("emptyTargetResolutionMode", "fail"),
                "actionsMode": "run-all"}

    def finish(self, status: str, reason: str, error: Optional[Dict[str, str]] = None) -> None:
        with self.lock:
            for action in self.actions.values():
                if action.status == "pending":
                    action.set("cancelled")
            self.status, self.reason, self.error, self.end = status, reason, error, time.time()

    def request_stop(self) -> None:
        with self.lock:
            if self.status in TERMINAL or self.stop.is_set():
                return
            self.status, self.reason = "stopping", "Experiment stop requested."
            self.stop.set()


def run(lab, experiment: Experiment, record) -> None:
    """Drive ``experiment`` to an end state (runs in its own thread); ``record(message)`` logs."""
    with experiment.lock:
        experiment.status = "initiating"
    try:
        _resolve_targets(lab, experiment)
    except TargetNotResolved as exc:
        experiment.finish("failed", str(exc), {"code": "InvalidTarget", "location": "targets"})
        record(f"failed: {exc}")
        return
    with experiment.lock:
        if not experiment.stop.is_set():
            experiment.status, experiment.start = "running", time.time()
    record("running; targets " + ", ".join(f"{name}={[r.id for r in res]}"
                                          for name, res in experiment.resolved.items()))
    failure = _run_actions(lab, experiment, record)
    if failure:
        name, reason, code = failure
        experiment.finish("failed", reason, {"code": code, "location": f"actions.{name}"})
    elif experiment.stop.is_set():
        experiment.finish("stopped", "Experiment stopped by user.")
    else:
        experiment.finish("completed", "Experiment completed.")
    record(f"{experiment.status}: {experiment.reason}")


def _resolve_targets(lab, experiment: Experiment) -> None:
    snapshot = lab.snapshot()
    skip = (experiment.template.get("experimentOptions") or {}).get("emptyTargetResolutionMode") == "skip"
    for name, target in experiment.template.get("targets", {}).items():
        try:
            experiment.resolved[name] = resolve(snapshot, name, target)
        except TargetNotResolved:
            if not skip:
                raise
            experiment.resolved[name] = []


def _run_actions(lab, experiment: Experiment, record):
    """Start actions as their ``startAfter`` allows; returns (action, reason, code) of a failure."""
    done: "queue.Queue[tuple]" = queue.Queue()
    running = set()
    failure = None
    while True:
        if failure is None and not experiment.stop.is_set():
            for action in _ready(experiment):
                running.add(action.name)
                _start(lab, experiment, action, done, record)
        if not running:
            return failure
        name, error, code = done.get()
        running.discard(name)
        action = experiment.actions[name]
        with experiment.lock:
            if error is not None:
                action.set("failed", error)
            else:
                action.set("stopped" if experiment.stop.is_set() else "completed")
        record(f"action {name} {action.status}" + (f": {error}" if error else ""))
        if error is not None and failure is None:
            failure = (name, error, code)
            experiment.stop.set()  # the other running actions stop; pending ones are cancelled


def _ready(experiment: Experiment) -> List[ActionState]:
    """Pending actions whose ``startAfter`` are all done; those without targets are skipped."""
    with experiment.lock:
        while True:
            ready, skipped = [], False
            for action in experiment.actions.values():
                after = action.definition.get("startAfter") or []
                if action.status != "pending" or any(
                        experiment.actions[b].status not in ("completed", "skipped") for b in after):
                    continue
                targets = action.definition.get("targets") or {}
                if targets and not any(experiment.resolved.get(t) for t in targets.values()):
                    action.set("skipped", "No targets were resolved for this action.")
                    skipped = True  # its followers may be ready now: look again
                else:
                    ready.append(action)
            if not skipped:
                return ready


def _start(lab, experiment: Experiment, action: ActionState, done, record) -> None:
    spec = ACTIONS[action.definition["actionId"]]
    targets = {key: experiment.resolved.get(name, [])
               for key, name in (action.definition.get("targets") or {}).items()}
    job = ActionRun(lab, action.name, action.definition.get("parameters") or {}, targets, experiment.stop)
    with experiment.lock:
        action.set("running")
    record(f"action {action.name} ({spec.action_id}) running")

    def body():
        try:
            RUNNERS[spec.action_id](job)
            done.put((action.name, None, None))
        except ActionFailed as exc:
            done.put((action.name, str(exc), exc.code))
        except Exception as exc:  # a lab bug must end the experiment, not hang it
            done.put((action.name, f"internal error: {exc!r}", "InternalFailure"))

    threading.Thread(target=body, name=f"fis-{experiment.id}-{action.name}", daemon=True).start()
