"""Run notifications: a Slack incoming-webhook message and a generic JSON webhook per run event.

Declare it as a Chaos Toolkit **control** (recommended) — it lives in the experiment file, sees
every activity's output and so can announce "fault injected" and "recovered" with the RTO
figures as they happen, and it records fault results for `chaosext.alerts.probes`::

    "controls": [{"name": "gameday-notify", "provider": {
        "type": "python", "module": "chaosext.alerts.notify"}}]

Or as a **notification plugin** in Chaos Toolkit's settings (run started / completed / failed /
deviated only: chaostoolkit raises no event between those)::

    notifications:
      - {type: plugin, module: chaosext.alerts.notify, events: [run-started, run-completed,
         run-failed, run-deviated]}

Webhook URLs (a Slack URL *is* a credential): control argument or channel setting
`slack_webhook_url` / `webhook_url`, else a secret of that name (any scope), else configuration
`gameday_slack_webhook_url` / `gameday_webhook_url`, else $GAMEDAY_SLACK_WEBHOOK_URL /
$GAMEDAY_WEBHOOK_URL. Optional: `events` (which to send), `timeout` (seconds, default 3).
Delivery failures are logged, never raised into the experiment; payloads carry no
configuration or secrets, only the fields listed in FAULT_FIELDS.
"""
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, List, Optional

from chaoslib.extension import set_extension
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosext.alerts import faults as fault_log
from groundfloor.timefmt import iso

__all__ = ["configure_control", "before_experiment_control", "after_activity_control",
           "after_experiment_control", "notify", "build_notification", "slack_message",
           "post_json", "destinations", "EVENTS"]

logger = logging.getLogger("chaostoolkit")

SOURCE = "failover-gameday"
EVENTS = ("run-started", "fault-injected", "recovered", "run-completed", "run-deviated",
          "run-failed")
ENV = {"slack": "GAMEDAY_SLACK_WEBHOOK_URL", "webhook": "GAMEDAY_WEBHOOK_URL"}
KEYS = {"slack": "slack_webhook_url", "webhook": "webhook_url"}
DEFAULT_TIMEOUT = 3.0
EXTENSION_NAME = "gameday-notifications"
# The only fault-result fields that leave the process.
FAULT_FIELDS = ("fault", "target", "method", "injected_at", "control_plane_completed_at",
                "data_plane_writable_at", "rto_seconds", "control_plane_seconds")
HEADLINES = {"run-started": ":rocket: Game day started", "fault-injected": ":boom: Fault injected",
             "recovered": ":white_check_mark: Recovered", "run-completed": ":trophy: Game day "
             "completed", "run-deviated": ":warning: Game day deviated", "run-failed":
             ":x: Game day failed"}

_sent: List[Dict[str, Any]] = []  # what this run delivered (journalled as an extension)


# -- where to send ---------------------------------------------------------------------------
def _from_secrets(secrets: Secrets, key: str) -> Optional[str]:
    secrets = secrets or {}
    if isinstance(secrets.get(key), str):
        return secrets[key]
    for scope in secrets.values():
        if isinstance(scope, dict) and isinstance(scope.get(key), str):
            return scope[key]
    return None


def destinations(arguments: Optional[Dict[str, Any]] = None,
                 configuration: Configuration = None, secrets: Secrets = None
                 ) -> Dict[str, str]:
    """{"slack": url, "webhook": url} for the destinations that are configured."""
    arguments, configuration = arguments or {}, configuration or {}
    found = {}
    for name, key in KEYS.items():
        url = (arguments.get(key) or _from_secrets(secrets, key)
               or configuration.get(f"gameday_{key}") or os.environ.get(ENV[name]))
        if url:
            found[name] = str(url)
    return found


# -- what to send ----------------------------------------------------------------------------
def _fault_facts(result: Dict[str, Any]) -> Dict[str, Any]:
    facts = {k: result.get(k) for k in FAULT_FIELDS if result.get(k) is not None}
    before, after = result.get("before") or {}, result.get("after") or {}
    for side, state in (("before", before), ("after", after)):
        where = state.get("az") if isinstance(state, dict) else None
        if where:
            facts[f"az_{side}"] = where
    return facts


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "n/a"


def _summary(event: str, title: str, fault: Dict[str, Any], status: Optional[str]) -> str:
    where = f"{fault.get('fault', 'fault')} on {fault.get('target', '?')}"
    if event == "fault-injected":
        return (f"{where} via {fault.get('method', '?')} at {fault.get('injected_at', '?')}")
    if event == "recovered":
        return (f"{fault.get('target', '?')} writable again after "
                f"{_seconds(fault.get('rto_seconds'))} (data-plane RTO); control plane "
                f"{_seconds(fault.get('control_plane_seconds'))}")
    if event == "run-started":
        return f"{title}: started"
    verdict = {"run-completed": "steady state held", "run-deviated": "steady state NOT met "
               "after the fault", "run-failed": f"run ended {status or 'failed'}"}[event]
    return f"{title}: {verdict}"


def build_notification(event: str, title: str, fault: Optional[Dict[str, Any]] = None,
                       faults: Iterable[Dict[str, Any]] = (), status: Optional[str] = None,
                       deviated: Optional[bool] = None,
                       alerts: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """The generic JSON webhook payload for one run event (also the input of slack_message)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    fault_facts = _fault_facts(fault) if fault else {}
    note = {"source": SOURCE, "version": 1, "event": event, "ts": iso(time.time()),
            "experiment": title, "target_env": os.environ.get("GAMEDAY_TARGET"),
            "run_id": os.path.basename(os.environ.get("GAMEDAY_RUN_DIR", "")) or None,
            "summary": _summary(event, title, fault_facts, status)}
    if fault_facts:
        note["fault"] = fault_facts
    if event.startswith("run-") and event != "run-started":
        note.update(status=status, deviated=bool(deviated),
                    faults=[_fault_facts(f) for f in faults], alerts=list(alerts))
    return note


def _field(label: str, value: Any) -> Dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"[:2000]}


def slack_message(note: Dict[str, Any]) -> Dict[str, Any]:
    """A Slack incoming-webhook body ({"text", "blocks"}) for a notification payload."""
    fault = note.get("fault") or {}
    fields = []
    if fault:
        fields += [_field("Target", fault.get("target")), _field("Fault", fault.get("fault")),
                   _field("Method", fault.get("method"))]
        if note["event"] != "fault-injected":
            fields += [_field("RTO (data plane)", _seconds(fault.get("rto_seconds"))),
                       _field("Control plane", _seconds(fault.get("control_plane_seconds")))]
    for earlier in note.get("faults", [])[:3]:
        fields.append(_field(f"{earlier.get('fault')} on {earlier.get('target')}",
                             f"RTO {_seconds(earlier.get('rto_seconds'))}, control plane "
                             f"{_seconds(earlier.get('control_plane_seconds'))}"))
    for check in note.get("alerts", [])[:2]:
        fields.append(_field(f"Events {check.get('resource_id')}",
                             "met" if check.get("met") else f"missing {check.get('missing')}"))
    headline = HEADLINES[note["event"]]
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": headline[:150],
                                          "emoji": True}},
              {"type": "section", "text": {"type": "mrkdwn", "text": note["summary"][:3000]}}]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    context = " · ".join(str(v) for v in (note.get("experiment"), note.get("target_env"),
                                          note.get("run_id"), note.get("ts")) if v)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context[:3000]}]})
    return {"text": f"{headline}: {note['summary']}", "blocks": blocks}


# -- delivery --------------------------------------------------------------------------------
def _where(url: str) -> str:
    """The URL without path or query, for logs (a Slack webhook path is its secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def post_json(url: str, body: Dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """POST `body` as JSON; True on a 2xx answer. Never raises: failures are logged."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        logger.warning("Notification not sent: webhook URL must be http(s), got %r",
                       urllib.parse.urlsplit(url).scheme)
        return False
    request = urllib.request.Request(
        url, data=json.dumps(body, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": SOURCE})
    try:
        with urllib.request.urlopen(request, timeout=float(timeout)) as answer:
            return 200 <= answer.status < 300
    except urllib.error.HTTPError as error:
        logger.warning("Notification to %s refused: HTTP %s", _where(url), error.code)
    except Exception as error:  # delivery must never break the experiment
        logger.warning("Notification to %s failed: %s", _where(url), error)
    return False


def send(note: Dict[str, Any], where: Dict[str, str], timeout: float = DEFAULT_TIMEOUT,
         wanted: Optional[Iterable[str]] = None) -> Dict[str, bool]:
    """Deliver one notification to every configured destination; {destination: delivered}."""
    if wanted and note["event"] not in wanted:
        return {}
    bodies = {"slack": lambda: slack_message(note), "webhook": lambda: note}
    delivered = {name: post_json(url, bodies[name](), timeout) for name, url in where.items()}
    _sent.append({"event": note["event"], "ts": note["ts"], "delivered": delivered})
    return delivered


# -- journal reading -------------------------------------------------------------------------
def _outputs(journal: Journal) -> List[Dict[str, Any]]:
    return [r.get("output") for r in (journal or {}).get("run", [])
            if isinstance(r, dict) and isinstance(r.get("output"), dict)]


def _alert_checks(outputs: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{"resource_id": o.get("resource_id"), "met": o.get("met"),
             "missing": o.get("missing"), "latency_seconds": o.get("latency_seconds")}
            for o in outputs if "met" in o and "expected" in o]


def _final(journal: Journal, title: str) -> Dict[str, Any]:
    journal = journal or {}
    deviated = bool(journal.get("deviated"))
    status = journal.get("status")
    event = ("run-deviated" if deviated else "run-completed" if status == "completed"
             else "run-failed")
    outputs = _outputs(journal)
    return build_notification(event, title, faults=[o for o in outputs
                                                    if fault_log.is_fault_result(o)],
                              status=status, deviated=deviated, alerts=_alert_checks(outputs))


def _title(experiment: Any) -> str:
    return str((experiment or {}).get("title") or "experiment") if isinstance(experiment, dict) \
        else "experiment"


# -- Chaos Toolkit control -------------------------------------------------------------------
def _run(arguments, configuration, secrets, note) -> None:
    send(note, destinations(arguments, configuration, secrets),
         float(arguments.get("timeout", DEFAULT_TIMEOUT)), arguments.get("events"))


def configure_control(configuration: Configuration = None, secrets: Secrets = None,
                      experiment: Experiment = None, **arguments: Any) -> None:
    """Start a fresh run: forget earlier faults and deliveries; warn if nowhere to send; listen to
    `run_fault`, so "fault injected" goes out at injection and "recovered" at recovery, not
    after the action (and its waits) returned."""
    fault_log.forget()
    _sent.clear()
    title = _title(experiment)
    fault_log.listen(lambda event, result: _run(arguments, configuration, secrets,
                                                build_notification(event, title, result)))
    if not destinations(arguments, configuration, secrets):
        logger.info("gameday notifications: no webhook configured (set %s or %s); fault "
                    "results are still recorded for the alert probes", *ENV.values())


def before_experiment_control(context: Experiment, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    _run(arguments, configuration, secrets, build_notification("run-started", _title(context)))


def after_activity_control(context: Dict[str, Any], state: Dict[str, Any] = None,
                           configuration: Configuration = None, secrets: Secrets = None,
                           experiment: Experiment = None, **arguments: Any) -> None:
    """After a failover action: record it; announce injection and recovery only if `run_fault`
    did not already announce them the moment they happened (see `configure_control`)."""
    output = (state or {}).get("output") if isinstance(state, dict) else None
    if not fault_log.is_fault_result(output):
        return
    fault_log.remember(output)
    title = _title(experiment)
    if not fault_log.announced("fault-injected", output):  # an action that does not use run_fault
        _run(arguments, configuration, secrets, build_notification("fault-injected", title, output))
    if (output.get("rto_seconds") is not None or output.get("control_plane_completed_at")) \
            and not fault_log.announced("recovered", output):
        _run(arguments, configuration, secrets, build_notification("recovered", title, output))


def after_experiment_control(context: Experiment, state: Journal = None,
                             configuration: Configuration = None, secrets: Secrets = None,
                             **arguments: Any) -> None:
    """Send the verdict (completed / deviated / failed, with every fault's RTO); journal it."""
    _run(arguments, configuration, secrets, _final(state, _title(context)))
    if isinstance(state, dict):
        set_extension(state, {"name": EXTENSION_NAME, "sent": list(_sent)})


# -- Chaos Toolkit notification plugin -------------------------------------------------------
def notify(settings: Dict[str, Any], event: Dict[str, Any]) -> None:
    """Chaos Toolkit `type: plugin` channel: run-started and the run's verdict."""
    name = (event or {}).get("name")
    payload = (event or {}).get("payload")
    if name == "run-started":
        note = build_notification("run-started", _title(payload))
    elif name in ("run-completed", "run-failed", "run-deviated"):
        journal = payload if isinstance(payload, dict) else {}
        if journal.get("deviated") and name != "run-deviated":
            return  # chaostoolkit raises run-deviated next: send one verdict only
        note = _final(journal, _title(journal.get("experiment")))
    else:
        return
    send(note, destinations(settings), float((settings or {}).get("timeout", DEFAULT_TIMEOUT)))
