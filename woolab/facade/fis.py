"""AWS FIS (API 2020-12-01, rest-json) over the lab: experiment templates, experiments, tags.

Each handler takes ``(lab, params)`` (parsed per botocore's ``fis`` input shape) and returns an
output dict per the output shape; refusals raise the FIS error (``ValidationException``,
``ResourceNotFoundException``). Templates and experiments live in memory beside the lab, one
store per lab object (a restarted controller starts with none, like a new account). Every
experiment step is also written to the lab's ground-truth event log as a ``lab`` marker.

``handle(lab, method, path, headers, body)`` answers one HTTP request; ``is_fis_request``
tells FIS requests from the Query APIs on the same port.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from woolab.facade import fis_reads, fis_runner, restjson
from woolab.facade.fis_catalog import validate_template
from woolab.facade.fis_runner import TERMINAL, Experiment
from woolab.facade.protocol import AwsError, model_error, new_request_id

log = logging.getLogger("woolab.facade")

SERVICE = "fis"
_ALPHABET = string.ascii_letters + string.digits


class FisStore:
    """The FIS resources of one lab: templates, experiments, client tokens."""

    def __init__(self):
        self.lock = threading.Lock()
        self.templates: Dict[str, Dict[str, Any]] = {}
        self.experiments: Dict[str, Experiment] = {}
        self.tokens: Dict[Tuple[str, str], str] = {}  # (operation, clientToken) -> id


_STORES: "weakref.WeakKeyDictionary[Any, FisStore]" = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def store_for(lab) -> FisStore:
    with _STORES_LOCK:
        store = _STORES.get(lab)
        if store is None:
            store = _STORES[lab] = FisStore()
        return store


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(14))


def _arn(lab, kind: str, resource_id: str) -> str:
    snapshot = lab.snapshot()
    return f"arn:aws:fis:{snapshot['region']}:{snapshot['account_id']}:{kind}/{resource_id}"


def _not_found(what: str, resource_id: str) -> AwsError:
    return model_error(SERVICE, "ResourceNotFoundException", f"{what} {resource_id} not found.")


def _template(store: FisStore, template_id: str) -> Dict[str, Any]:
    template = store.templates.get(template_id)
    if template is None:
        raise _not_found("Experiment template", template_id)
    return template


def _experiment(store: FisStore, experiment_id: str) -> Experiment:
    experiment = store.experiments.get(experiment_id)
    if experiment is None:
        raise _not_found("Experiment", experiment_id)
    return experiment


# --------------------------------------------------------------------------- templates


def create_experiment_template(lab, params):
    validate_template(params)
    store = store_for(lab)
    with store.lock:
        existing = store.tokens.get(("template", params["clientToken"]))
        if existing in store.templates:
            return {"experimentTemplate": store.templates[existing]}
        template_id = _new_id("EXT")
        now = time.time()
        options = params.get("experimentOptions") or {}
        template = {
            "id": template_id, "arn": _arn(lab, "experiment-template", template_id),
            "description": params["description"], "targets": params.get("targets") or {},
            "actions": params["actions"], "stopConditions": params["stopConditions"],
            "creationTime": now, "lastUpdateTime": now, "roleArn": params["roleArn"],
            "tags": params.get("tags") or {},
            "experimentOptions": {"accountTargeting": options.get("accountTargeting", "single-account"),
                                  "emptyTargetResolutionMode": options.get("emptyTargetResolutionMode", "fail")},
        }
        store.templates[template_id] = template
        store.tokens[("template", params["clientToken"])] = template_id
    return {"experimentTemplate": template}


def get_experiment_template(lab, params):
    store = store_for(lab)
    with store.lock:
        return {"experimentTemplate": _template(store, params["id"])}


def delete_experiment_template(lab, params):
    store = store_for(lab)
    with store.lock:
        template = _template(store, params["id"])
        del store.templates[params["id"]]
    return {"experimentTemplate": template}


def list_experiment_templates(lab, params):
    store = store_for(lab)
    with store.lock:
        items = [{k: t[k] for k in ("id", "arn", "description", "creationTime", "lastUpdateTime", "tags")}
                 for t in sorted(store.templates.values(), key=lambda t: t["creationTime"])]
    page, token = restjson.page(items, params)
    return {"experimentTemplates": page, "nextToken": token}


# --------------------------------------------------------------------------- experiments


def start_experiment(lab, params):
    store = store_for(lab)
    with store.lock:
        existing = store.tokens.get(("experiment", params["clientToken"]))
        if existing in store.experiments:
            return {"experiment": store.experiments[existing].output()}
        template = _template(store, params["experimentTemplateId"])
        experiment_id = _new_id("EXP")
        experiment = Experiment(experiment_id, _arn(lab, "experiment", experiment_id), template["id"],
                                template, dict(params.get("tags") or {}))
        store.experiments[experiment_id] = experiment
        store.tokens[("experiment", params["clientToken"])] = experiment_id
    record = _recorder(lab, experiment)
    record(f"FIS experiment {experiment_id} started from template {template['id']}")
    thread = threading.Thread(target=_run_logged, args=(lab, experiment, record),
                              name=f"fis-{experiment_id}", daemon=True)
    thread.start()
    return {"experiment": experiment.output()}


def _recorder(lab, experiment: Experiment) -> Callable[[str], None]:
    events = getattr(lab, "events", None)

    def record(message: str) -> None:
        log.info("FIS %s: %s", experiment.id, message)
        if events is not None:
            events.record("lab", experiment.id, message)

    return record


def _run_logged(lab, experiment: Experiment, record) -> None:
    try:
        fis_runner.run(lab, experiment, record)
    except Exception as exc:  # a facade bug: the experiment fails, the controller lives on
        log.exception("FIS experiment %s crashed", experiment.id)
        experiment.finish("failed", f"internal error: {exc!r}", {"code": "InternalFailure"})


def get_experiment(lab, params):
    store = store_for(lab)
    with store.lock:
        experiment = _experiment(store, params["id"])
    return {"experiment": experiment.output()}


def stop_experiment(lab, params):
    store = store_for(lab)
    with store.lock:
        experiment = _experiment(store, params["id"])
    if experiment.status in TERMINAL:
        raise restjson.validation_error(f"Experiment {experiment.id} is {experiment.status}; only a "
                                        "pending, initiating or running experiment can be stopped.")
    experiment.request_stop()
    _recorder(lab, experiment)("stop requested")
    return {"experiment": experiment.output()}


def list_experiments(lab, params):
    store = store_for(lab)
    with store.lock:
        experiments = sorted(store.experiments.values(), key=lambda e: e.created)
    wanted = params.get("experimentTemplateId")
    items = [e.summary() for e in experiments if not wanted or e.template_id == wanted]
    page, token = restjson.page(items, params)
    return {"experiments": page, "nextToken": token}


# --------------------------------------------------------------------------- tags


def _tags_of(store: FisStore, resource_arn: str) -> Dict[str, str]:
    match = re.match(r"^arn:aws:fis:[^:]*:[^:]*:(experiment-template|experiment)/(.+)$", resource_arn)
    if not match:
        raise restjson.validation_error(f"Invalid resource ARN: {resource_arn}")
    kind, resource_id = match.groups()
    if kind == "experiment-template":
        return _template(store, resource_id).setdefault("tags", {})
    return _experiment(store, resource_id).tags


def tag_resource(lab, params):
    store = store_for(lab)
    with store.lock:
        _tags_of(store, params["resourceArn"]).update(params.get("tags") or {})
    return {}


def untag_resource(lab, params):
    store = store_for(lab)
    with store.lock:
        tags = _tags_of(store, params["resourceArn"])
        for key in params.get("tagKeys") or []:
            tags.pop(key, None)
    return {}


def list_tags_for_resource(lab, params):
    store = store_for(lab)
    with store.lock:
        return {"tags": dict(_tags_of(store, params["resourceArn"]))}


OPERATIONS: Dict[str, Callable] = {
    "CreateExperimentTemplate": create_experiment_template,
    "GetExperimentTemplate": get_experiment_template,
    "DeleteExperimentTemplate": delete_experiment_template,
    "ListExperimentTemplates": list_experiment_templates,
    "StartExperiment": start_experiment,
    "GetExperiment": get_experiment,
    "StopExperiment": stop_experiment,
    "ListExperiments": list_experiments,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    **fis_reads.OPERATIONS,
}


# --------------------------------------------------------------------------- HTTP


def is_fis_request(path: str, headers: Mapping[str, str]) -> bool:
    """FIS if the SigV4 scope says ``fis``, or the path is one of FIS's routes (Query uses ``/``)."""
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    scope = re.search(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if scope:
        return scope.group(1) == SERVICE
    route = urlsplit(path).path
    return any(route == p or route.startswith(p + "/") for p in restjson.route_prefixes(SERVICE))


def handle(lab, method: str, path: str, headers: Mapping[str, str], body: bytes):
    """Answer one FIS request: (status, headers, body)."""
    request_id = new_request_id()
    url = urlsplit(path)
    try:
        found = restjson.route(SERVICE, method, url.path)
        if found is None:
            raise AwsError("UnknownOperationException", f"No FIS operation for {method} {url.path}.", 404)
        operation, labels = found
        handler = OPERATIONS.get(operation.name)
        if handler is None:
            raise restjson.validation_error(f"The operation {operation.name} is not implemented by the "
                                            "failover-gameday lab.")
        params = restjson.parse_request(operation, labels, url.query, headers, body)
        data = restjson.serialize_response(operation, handler(lab, params))
        return 200, {"Content-Type": "application/json", "x-amzn-RequestId": request_id}, data
    except AwsError as error:
        reply_headers, data = restjson.serialize_error(error, request_id)
        return error.status, reply_headers, data
    except Exception:  # a bug in the facade or the lab: answer like AWS, keep the traceback in the log
        log.exception("FIS request failed")
        error = AwsError("InternalServerException", "The request processing has failed because of an "
                         "unknown error, exception or failure.", 500, sender=False)
        reply_headers, data = restjson.serialize_error(error, request_id)
        return 500, reply_headers, data
