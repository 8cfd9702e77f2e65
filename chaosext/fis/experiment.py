"""Run one FIS experiment as a pack fault: guardrails, create/start, wait, stop on interruption.

Why: an FIS experiment keeps injecting faults on AWS after the process that started it is gone
(an AZ power interruption lasts its full duration). So every experiment this process starts is
registered until it ends, and stopped (StopExperiment) when the activity is interrupted (a
safeguard's SIGUSR1 -> SystemExit, SIGTERM -> InterruptExecution, Ctrl-C -> KeyboardInterrupt),
when it times out, by the `stop_experiment` rollback, and at interpreter exit.
"""
import logging
import uuid
from typing import Any, Dict, Optional

from chaoslib.types import Configuration, Secrets

from chaosext import guardrails
from chaosext.aws import aws_call, aws_client
from chaosext.errors import ActivityError
from chaosext.fault_model import FaultSpec
from chaosext.fis import live
from chaosext.fis.probes import END_STATES, check_completed, get_experiment, summarize
from chaosext.fis.tags import arn_tags
from chaosext.guardrails import Target
from chaosext.recovery import Fault, dry_run_result, run_fault

__all__ = ["FisRun", "stop_live", "stop_one"]

logger = logging.getLogger("chaostoolkit")


def _register(experiment_id: str, client) -> None:
    live.register(experiment_id, client, lambda: stop_live("interpreter exit"))


def stop_one(client, experiment_id: str, why: str) -> Optional[str]:
    """StopExperiment unless it already ended; returns the state it was stopped in (or None)."""
    try:
        state = get_experiment(client, experiment_id)["state"]["status"]
        if state in END_STATES:
            return None
        aws_call(client, "stop_experiment", f"FIS experiment {experiment_id}", id=experiment_id)
        logger.warning("FIS experiment %s stopped (%s)", experiment_id, why)
        return state
    finally:
        live.forget(experiment_id)


def stop_live(why: str = "stopped") -> Dict[str, Optional[str]]:
    """Stop every FIS experiment this process started that has not ended yet."""
    stopped = {}
    for experiment_id, client in live.live_experiments().items():
        try:
            stopped[experiment_id] = stop_one(client, experiment_id, why)
        except ActivityError as exc:  # keep stopping the others
            logger.error("could not stop FIS experiment %s: %s", experiment_id, exc)
            stopped[experiment_id] = f"error: {exc}"
    return stopped


class FisRun:
    """One experiment from a template (built here or given by id), as a `recovery.Fault`."""

    def __init__(self, spec: FaultSpec, template: Optional[Dict[str, Any]],
                 template_id: Optional[str], role_arn: Optional[str],
                 configuration: Configuration, secrets: Secrets):
        self.secrets = secrets
        if bool(template) == bool(template_id):
            raise ActivityError("give either an FIS experiment template or experiment_template_id "
                                "(exactly one)")
        self.spec = spec
        self.configuration = configuration or {}
        self.client = aws_client("fis", configuration, secrets)
        self.template_id = template_id
        self.template = self._given(template_id) if template_id else self._complete(template, role_arn)
        self.experiment_id: Optional[str] = None
        self.last: Dict[str, Any] = {}

    def _given(self, template_id: str) -> Dict[str, Any]:
        return aws_call(self.client, "get_experiment_template", f"FIS experiment template {template_id}",
                        id=template_id)["experimentTemplate"]

    def _complete(self, template: Dict[str, Any], role_arn: Optional[str]) -> Dict[str, Any]:
        role = role_arn or template.get("roleArn") or self.configuration.get("fis_role_arn")
        if not role:
            raise ActivityError("no IAM role for the FIS experiment: pass role_arn or set the "
                                "configuration key fis_role_arn (the lab accepts any role ARN)")
        return {"stopConditions": [{"source": "none"}], **template, "roleArn": role}

    def check_guardrails(self, action: str) -> None:
        """Every target must select by the allow tag, or name resources that carry it."""
        region = self.client.meta.region_name
        account = (self.template.get("roleArn") or "").split(":")[4:5] or [""]
        for name, spec in (self.template.get("targets") or {}).items():
            if spec.get("resourceArns"):
                for arn in spec["resourceArns"]:
                    guardrails.check_target(Target(spec["resourceType"], arn, arn, region,
                                                   arn_tags(arn, self.configuration, self.secrets)),
                                            action, self.configuration)
            else:
                pseudo_arn = f"arn:aws:fis:{region}:{account[0]}:target/{name}" if account[0] else None
                guardrails.check_target(Target(f"FIS target ({spec['resourceType']})", name, pseudo_arn,
                                               region, dict(spec.get("resourceTags") or {})),
                                        action, self.configuration)

    def inject(self) -> None:
        if self.template_id is None:
            answer = aws_call(self.client, "create_experiment_template", "FIS experiment template",
                              clientToken=str(uuid.uuid4()), **self.template)
            self.template_id = answer["experimentTemplate"]["id"]
        answer = aws_call(self.client, "start_experiment", f"FIS experiment template {self.template_id}",
                          clientToken=str(uuid.uuid4()), experimentTemplateId=self.template_id)
        self.experiment_id = answer["experiment"]["id"]
        _register(self.experiment_id, self.client)
        logger.info("FIS experiment %s started from template %s", self.experiment_id, self.template_id)

    def poll(self):
        self.last = summarize(get_experiment(self.client, self.experiment_id))
        return self.last["state"] in END_STATES, {"state": self.last["state"], "reason": self.last["reason"]}

    def fault(self, method: str) -> Fault:
        before = {"template_id": self.template_id, "targets": _targets(self.template)}
        return Fault(self.spec, self.template_id or self.template.get("description", "FIS template"),
                     method, before, self.inject, self.poll, lambda since: [])

    def run(self, method: str, wait: bool, timeout: float, poll_interval: float,
            measure_data_plane: bool, dry_run: Optional[bool]) -> Dict[str, Any]:
        """Guardrails, then the experiment; any interruption stops it before propagating."""
        self.check_guardrails(method)
        fault = self.fault(method)
        if guardrails.is_dry_run(self.configuration, dry_run):
            return dry_run_result(fault, f"would start an FIS experiment from "
                                  f"{self.template_id or 'a new template'} with actions "
                                  f"{sorted((self.template.get('actions') or {}))}")
        try:
            result = run_fault(fault, wait, timeout, poll_interval, measure_data_plane,
                               self.configuration, self.secrets)
        except BaseException as exc:  # safeguard, SIGTERM, Ctrl-C, timeout: stop FIS first
            if self.experiment_id:
                stop_one(self.client, self.experiment_id, f"{type(exc).__name__}: {exc}")
            raise
        if wait:
            live.forget(self.experiment_id)
        return self._result(result, wait)

    def _result(self, result: Dict[str, Any], wait: bool) -> Dict[str, Any]:
        if not self.last:
            self.poll()
        result.update(target=self.template_id, fis={**self.last, "template_id": self.template_id})
        if not wait:
            return result
        check_completed(self.last)
        return result


def _targets(template: Dict[str, Any]) -> Dict[str, Any]:
    return {name: {k: v for k, v in spec.items() if k in ("resourceType", "resourceTags", "resourceArns",
                                                         "parameters", "filters", "selectionMode")}
            for name, spec in (template.get("targets") or {}).items()}
