"""AWS rest-json codec driven by botocore's service models (FIS speaks rest-json).

Why: like ``protocol.py`` for the Query APIs, nothing here is a hand-kept list of routes or field
names. Routes come from each operation's ``http.requestUri``; where every input member lives
(URI label, query string, header, JSON body) comes from its ``location`` trait; the JSON reply
is written member by member from the output shape; errors carry the code and HTTP status of the
model's error shape. A renamed field in a future botocore cannot drift from what we answer.

- ``route(service, method, path)``: (operation model, URI labels) or ``None``.
- ``parse_request(operation, labels, query, headers, body)``: input dict per the input shape.
- ``serialize_response(operation, output)``: JSON bytes per the output shape.
- ``serialize_error(error)``: (headers, body) as botocore's rest-json parser reads them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, unquote

from woolab.facade.protocol import AwsError, service_model


@functools.lru_cache(maxsize=None)
def _routes(service: str) -> List[Tuple[str, "re.Pattern", Any]]:
    """(HTTP method, path regex, operation model) for every operation of ``service``."""
    model = service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri = operation.http["requestUri"].split("?", 1)[0]
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", re.escape(uri).replace(r"\{", "{").replace(r"\}", "}"))
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        routes.append((operation.http["method"], re.compile(f"^{pattern}$"), operation))
    return routes


def route_prefixes(service: str) -> Tuple[str, ...]:
    """The first path segments of every route (``/experiments``, ``/tags``...): cheap detection."""
    return tuple(sorted({"/" + op.http["requestUri"].lstrip("/").split("/", 1)[0].split("?", 1)[0]
                         for _, _, op in _routes(service)}))


def route(service: str, method: str, path: str):
    """The operation a request names, with its URI labels (URL-decoded), or ``None``."""
    for verb, pattern, operation in _routes(service):
        match = pattern.match(path)
        if match and verb == method:
            return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def page(items: List[Any], params: Mapping[str, Any]) -> Tuple[List[Any], Optional[str]]:
    """One page of a list call (``maxResults`` 1-100, an opaque ``nextToken``), as FIS pages."""
    size = params.get("maxResults", 100)
    if not 1 <= size <= 100:
        raise validation_error(f"maxResults {size} must be between 1 and 100.")
    try:
        start = int(params.get("nextToken") or 0)
    except ValueError:
        raise validation_error("Invalid nextToken.") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def validation_error(message: str) -> AwsError:
    """A client-side input error: 400, code ``ValidationException`` (rest-json services' name)."""
    return AwsError("ValidationException", message, 400)


def parse_request(operation, labels: Mapping[str, str], query: str, headers: Mapping[str, str],
                  body: bytes) -> Dict[str, Any]:
    """Collect every input member from where the model says it lives, then check types."""
    shape = operation.input_shape
    if shape is None:
        return {}
    try:
        document = json.loads(body.decode("utf-8")) if body and body.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise validation_error("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise validation_error("The request body must be a JSON object.")
    lowered = {k.lower(): v for k, v in headers.items()}
    queries = parse_qs(query or "", keep_blank_values=True)
    params: Dict[str, Any] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            value = labels.get(wire)
        elif location == "querystring":
            value = _query_value(member, queries.get(wire), name)
        elif location == "header":
            value = lowered.get(wire.lower())
        else:
            value = document.get(wire)
        if value is not None:
            params[name] = _check(member, value, name)
    missing = [name for name in shape.required_members if name not in params]
    if missing:
        raise validation_error(f"1 validation error detected: Value null at '{missing[0]}' failed to "
                               "satisfy constraint: Member must not be null")
    return params


def _query_value(member, values: Optional[List[str]], name: str):
    if not values:
        return None
    if member.type_name == "list":
        return values
    if member.type_name in ("integer", "long"):
        try:
            return int(values[-1])
        except ValueError:
            raise validation_error(f"Invalid value for {name}: {values[-1]!r} is not an integer.") from None
    return values[-1]


_JSON_TYPES = {"string": str, "boolean": bool, "structure": dict, "map": dict, "list": list}


def _check(shape, value: Any, where: str) -> Any:
    """``value`` checked against ``shape`` recursively (members renamed from wire names)."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in ("float", "double"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "timestamp":
        ok = isinstance(value, (int, float, str))
    else:
        ok = isinstance(value, _JSON_TYPES.get(kind, object))
    if not ok:
        raise validation_error(f"Invalid type for {where}: expected {kind}.")
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if value.get(wire) is not None:
                out[name] = _check(member, value[wire], f"{where}.{name}")
        return out
    if kind == "list":
        return [_check(shape.member, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        return {_check(shape.key, k, f"{where} key"): _check(shape.value, v, f"{where}.{k}")
                for k, v in value.items()}
    return value


def serialize_response(operation, output: Optional[Mapping[str, Any]]) -> bytes:
    """Output dict -> JSON body; a key not in the output shape raises (a handler bug)."""
    shape = operation.output_shape
    if shape is None:
        if output:
            raise KeyError(f"{operation.name} has no output shape but got {sorted(output)}")
        return b"{}"
    return json.dumps(_encode(shape, output or {})).encode("utf-8")


def _encode(shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for key, item in value.items():
            if key not in shape.members:
                raise KeyError(f"{shape.name} has no member {key!r}")
            if item is not None:
                member = shape.members[key]
                out[member.serialization.get("name", key)] = _encode(member, item)
        return out
    if kind == "list":
        return [_encode(shape.member, item) for item in value]
    if kind == "map":
        return {str(k): _encode(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return _epoch(value)
    return value


def _epoch(value: Any) -> float:
    """rest-json's default timestamp format: epoch seconds (botocore parses it to a datetime)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return round(value.timestamp(), 3)
    return round(float(value), 3)


def serialize_error(error: AwsError, request_id: str) -> Tuple[Dict[str, str], bytes]:
    """Headers and body of a rest-json error: code in ``x-amzn-ErrorType``, ``message`` in the body."""
    headers = {"x-amzn-ErrorType": error.code, "x-amzn-RequestId": request_id,
               "Content-Type": "application/json"}
    return headers, json.dumps({"message": error.message}).encode("utf-8")
