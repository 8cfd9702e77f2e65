"""AWS Query-protocol codec driven by botocore's service models.

Why: the facade must speak exactly what botocore (boto3, the AWS CLI, chaostoolkit-aws) sends
and parses. Field names, list member names, flattening and nesting are read from botocore's own
service model at run time, so nothing here is a hand-maintained field list that could drift.

- ``parse_request``: form-encoded params (``Tags.Tag.1.Key=...``) -> python dict per input shape.
- ``serialize_response``: python dict per output shape -> ``<{Op}Response>`` XML.
- ``serialize_error``: ``AwsError`` -> ``<ErrorResponse>`` XML.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import uuid
from typing import Any, Dict, List, Mapping, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

import botocore.session

#: API version -> botocore service name. RDS, ElastiCache and STS speak the Query protocol, EC2
#: its own variant of it (``woolab.facade.ec2``).
SERVICES_BY_VERSION = {"2014-10-31": "rds", "2015-02-02": "elasticache", "2011-06-15": "sts",
                       "2016-11-15": "ec2"}

#: AWS "Common Errors" (valid for every action of every Query service), code -> HTTP status.
COMMON_ERRORS = {
    "InvalidAction": 400,
    "MissingAction": 400,
    "MissingParameter": 400,
    "InvalidParameterValue": 400,
    "InvalidParameterCombination": 400,
    "NoSuchVersion": 400,
    "MalformedQueryString": 404,
    "InternalFailure": 500,
}


class AwsError(Exception):
    """An AWS error reply: code, message, HTTP status and fault side (Sender/Receiver)."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


@functools.lru_cache(maxsize=None)
def service_model(service: str):
    """botocore's service model for ``service`` (cached: loading it costs ~50 ms)."""
    return botocore.session.get_session().get_service_model(service)


@functools.lru_cache(maxsize=None)
def _error_traits(service: str) -> Dict[str, Tuple[str, int, bool]]:
    """Error shape name and error code -> (code, HTTP status, sender fault), from the model."""
    traits = {}
    for shape in service_model(service).error_shapes:
        trait = shape.metadata.get("error", {})
        code = trait.get("code", shape.name)
        entry = (code, int(trait.get("httpStatusCode", 400)), bool(trait.get("senderFault", True)))
        traits[shape.name] = entry
        traits.setdefault(code, entry)
    return traits


def model_error(service: str, name: str, message: str) -> AwsError:
    """Build the error AWS would send, by the model's error shape name or code.

    ``model_error("rds", "DBInstanceNotFoundFault", ...)`` -> code ``DBInstanceNotFound``, 404.
    Common errors (``InvalidParameterCombination``...) not modelled as shapes come from
    ``COMMON_ERRORS``.
    """
    traits = _error_traits(service)
    if name in traits:
        code, status, sender = traits[name]
        return AwsError(code, message, status, sender)
    if name in COMMON_ERRORS:
        status = COMMON_ERRORS[name]
        return AwsError(name, message, status, status < 500)
    raise KeyError(f"{service} has no error {name!r} in its model")


# --------------------------------------------------------------------------- requests


def decode_form(body: bytes | str, query: str = "") -> Dict[str, str]:
    """Form-encoded body (+ URL query string) -> flat dict; the body wins on duplicates."""
    from urllib.parse import parse_qsl

    if isinstance(body, bytes):
        body = body.decode("utf-8")
    flat: Dict[str, str] = {}
    for source in (query, body):
        for key, value in parse_qsl(source or "", keep_blank_values=True):
            flat[key] = value
    return flat


def service_for(flat: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """Tell RDS from ElastiCache: ``Version`` first, else the SigV4 credential scope."""
    version = flat.get("Version")
    if version:
        if version not in SERVICES_BY_VERSION:
            raise AwsError("NoSuchVersion", f"Version {version} is not supported by this endpoint.")
        return SERVICES_BY_VERSION[version]
    auth = headers.get("authorization", "")
    match = re.search(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if match and match.group(1) in SERVICES_BY_VERSION.values():
        return match.group(1)
    raise AwsError("MissingParameter", "The request must contain the parameter Version.")


def operation_for(service: str, flat: Mapping[str, str]):
    """The botocore operation model named by ``Action``; unknown -> ``InvalidAction``."""
    action = flat.get("Action")
    if not action:
        raise AwsError("MissingAction", "The request must contain the parameter Action.")
    model = service_model(service)
    if action not in model.operation_names:
        raise AwsError("InvalidAction", f"The action {action} is not valid for this web service.")
    return model.operation_model(action)


def parse_request(operation, flat: Mapping[str, str]) -> Dict[str, Any]:
    """Flat form params -> input dict per the operation's input shape (required members checked)."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params = _parse_structure(shape, flat, "", _KeyIndex(flat))
    return params or {}


class _KeyIndex:
    """Prefix lookups over the request's keys (lists need "which indices exist")."""

    def __init__(self, flat: Mapping[str, str]):
        self.flat = flat
        self.keys = list(flat)

    def indices(self, prefix: str) -> List[int]:
        pattern = re.compile(re.escape(prefix) + r"\.(\d+)(?:\.|$)")
        found = {int(m.group(1)) for m in map(pattern.match, self.keys) if m}
        return sorted(found)


def _member_name(shape, default: str) -> str:
    return shape.serialization.get("name", default)


def _parse(shape, flat, prefix: str, index: _KeyIndex):
    kind = shape.type_name
    if kind == "structure":
        return _parse_structure(shape, flat, prefix, index)
    if kind == "list":
        return _parse_list(shape, flat, prefix, index)
    if kind == "map":
        return _parse_map(shape, flat, prefix, index)
    if prefix not in flat:
        return None
    return _parse_scalar(shape, flat[prefix], prefix)


def _parse_structure(shape, flat, prefix, index):
    result = {}
    for name, member in shape.members.items():
        key = _member_name(member, name)
        if member.type_name == "list" and member.serialization.get("flattened"):
            key = _member_name(member.member, key)
        full = f"{prefix}.{key}" if prefix else key
        value = _parse(member, flat, full, index)
        if value is not None:
            result[name] = value
    missing = [name for name in shape.required_members if name not in result]
    if missing and (result or not prefix):
        where = f"{prefix}." if prefix else ""
        raise AwsError("MissingParameter", f"The request must contain the parameter {where}{missing[0]}.")
    return result if (result or not prefix) else None


def _parse_list(shape, flat, prefix, index):
    if flat.get(prefix) == "":
        return []  # botocore sends "Name=" for an empty list
    if shape.serialization.get("flattened"):
        prefixes = [prefix]
    else:
        # Accept the model's member name (what botocore sends) and the generic "member".
        prefixes = list(dict.fromkeys([f"{prefix}.{_member_name(shape.member, 'member')}", f"{prefix}.member"]))
    for list_prefix in prefixes:
        positions = index.indices(list_prefix)
        if positions:
            return [_parse(shape.member, flat, f"{list_prefix}.{i}", index) for i in positions]
    return None


def _parse_map(shape, flat, prefix, index):
    entry = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
    key_name = _member_name(shape.key, "key")
    value_name = _member_name(shape.value, "value")
    result = {}
    for i in index.indices(entry):
        key = _parse(shape.key, flat, f"{entry}.{i}.{key_name}", index)
        result[key] = _parse(shape.value, flat, f"{entry}.{i}.{value_name}", index)
    return result or None


def _parse_scalar(shape, raw: str, name: str):
    kind = shape.type_name
    try:
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
        if kind == "timestamp":
            return parse_timestamp(raw)
        if kind == "blob":
            return base64.b64decode(raw)
    except ValueError:
        raise AwsError("InvalidParameterValue", f"Invalid value {raw!r} for parameter {name}.") from None
    return raw


def parse_timestamp(raw: str) -> dt.datetime:
    """ISO 8601 (what botocore sends) or epoch seconds -> aware UTC datetime."""
    try:
        return dt.datetime.fromtimestamp(float(raw), dt.timezone.utc)
    except ValueError:
        pass
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


# --------------------------------------------------------------------------- responses


def new_request_id() -> str:
    return str(uuid.uuid4())


def serialize_response(operation, output: Optional[Mapping[str, Any]], request_id: str) -> str:
    """Output dict -> ``<{Op}Response xmlns=..><{Op}Result>..</..><ResponseMetadata>..`` XML.

    Keys not in the output shape raise ``KeyError``: a handler typo is a bug, not a silent drop.
    """
    name = operation.name
    namespace = operation.service_model.metadata.get("xmlNamespace", "")
    parts = [f"<{name}Response xmlns={quoteattr(namespace)}>"]
    shape = operation.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        parts.append(f"<{wrapper}>")
        _write_members(parts, shape, output or {})
        parts.append(f"</{wrapper}>")
    elif output:
        raise KeyError(f"{name} has no output shape but got {sorted(output)}")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
    parts.append(f"</{name}Response>")
    return "".join(parts)


def serialize_error(error: AwsError, request_id: str, namespace: str = "") -> str:
    """``AwsError`` -> the ``<ErrorResponse>`` body RDS and ElastiCache send."""
    xmlns = f" xmlns={quoteattr(namespace)}" if namespace else ""
    side = "Sender" if error.sender else "Receiver"
    return (
        f"<ErrorResponse{xmlns}><Error><Type>{side}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )


def _write_members(parts: List[str], shape, value: Mapping[str, Any]) -> None:
    members = shape.members
    for key, item in value.items():
        if key not in members:
            raise KeyError(f"{shape.name} has no member {key!r}")
        if item is None:
            continue
        member = members[key]
        if member.type_name == "list" and member.serialization.get("flattened"):
            tag = _member_name(member.member, _member_name(member, key))
            for element in item:
                _write(parts, member.member, element, tag)
        else:
            _write(parts, member, item, _member_name(member, key))


def _write(parts: List[str], shape, value: Any, tag: str) -> None:
    kind = shape.type_name
    parts.append(f"<{tag}>")
    if kind == "structure":
        _write_members(parts, shape, value)
    elif kind == "list":
        element_tag = _member_name(shape.member, "member")
        for element in value:
            _write(parts, shape.member, element, element_tag)
    elif kind == "map":
        _write_map(parts, shape, value)
    else:
        parts.append(escape(_scalar_text(shape, value)))
    parts.append(f"</{tag}>")


def _write_map(parts: List[str], shape, value: Mapping[str, Any]) -> None:
    key_tag = _member_name(shape.key, "key")
    value_tag = _member_name(shape.value, "value")
    for key, item in value.items():
        parts.append("<entry>")
        _write(parts, shape.key, key, key_tag)
        _write(parts, shape.value, item, value_tag)
        parts.append("</entry>")


def _scalar_text(shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return iso8601(value)
    if kind == "blob":
        return base64.b64encode(value).decode("ascii")
    if kind in ("integer", "long"):
        return str(int(value))
    return str(value)


def iso8601(value: Any) -> str:
    """Epoch seconds or datetime -> ``2026-11-26T06:00:00.123Z`` (the form AWS answers with)."""
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
