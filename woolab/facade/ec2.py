"""EC2 (API 2016-11-15, the ``ec2`` protocol) over the lab: DescribeSubnets and DescribeInstances.

Why: FIS network actions target subnets and instances by tag and AZ, and users check those with
``aws ec2 describe-subnets --filters Name=tag:…`` before a game day. EC2's protocol differs from
the Query protocol of RDS and ElastiCache in three ways, all read from botocore's ``ec2`` model
and its serializer/parser: lists are always flattened (``Filter.1.Value.1``) under the member's
``queryName`` or capitalised ``locationName``; the reply has no ``…Result`` wrapper and carries
``<requestId>``; errors are ``<Response><Errors><Error>…</Errors><RequestID>``. The resources
come from ``woolab.facade.vpc``.
"""
from fnmatch import fnmatchcase
from typing import Any, Callable, Dict, List, Mapping
from xml.sax.saxutils import escape, quoteattr

from woolab.facade import vpc
from woolab.facade.protocol import AwsError, _parse_scalar, _write_members

SERVICE = "ec2"


# --------------------------------------------------------------------------- the ec2 protocol


def _key(member, name: str) -> str:
    """The request key botocore's EC2 serializer uses for a structure member."""
    if "queryName" in member.serialization:
        return member.serialization["queryName"]
    location = member.serialization.get("name")
    return location[0].upper() + location[1:] if location else name


def _parse(shape, flat: Mapping[str, str], prefix: str):
    if shape.type_name == "structure":
        found = {}
        for name, member in shape.members.items():
            value = _parse(member, flat, f"{prefix}.{_key(member, name)}" if prefix else _key(member, name))
            if value is not None:
                found[name] = value
        return found or None
    if shape.type_name == "list":
        items, index = [], 1
        while any(k == f"{prefix}.{index}" or k.startswith(f"{prefix}.{index}.") for k in flat):
            items.append(_parse(shape.member, flat, f"{prefix}.{index}"))
            index += 1
        return items or None
    return _parse_scalar(shape, flat[prefix], prefix) if prefix in flat else None


def parse_request(operation, flat: Mapping[str, str]) -> Dict[str, Any]:
    """Flat form params -> input dict per the operation's input shape."""
    return (_parse(operation.input_shape, flat, "") or {}) if operation.input_shape is not None else {}


def serialize_response(operation, output: Mapping[str, Any], request_id: str) -> str:
    name = operation.name
    namespace = operation.service_model.metadata.get("xmlNamespace", "")
    parts = [f"<{name}Response xmlns={quoteattr(namespace)}><requestId>{request_id}</requestId>"]
    _write_members(parts, operation.output_shape, output or {})
    parts.append(f"</{name}Response>")
    return "".join(parts)


def serialize_error(error: AwsError, request_id: str) -> str:
    return (f"<Response><Errors><Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}"
            f"</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")


# --------------------------------------------------------------------------- filters


def _field(path: str) -> Callable[[Mapping[str, Any]], List[str]]:
    def read(resource):
        value: Any = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return [] if value is None else [str(value)]
    return read


_SUBNET_FILTERS = {"availability-zone": _field("AvailabilityZone"),
                   "availability-zone-id": _field("AvailabilityZoneId"),
                   "subnet-id": _field("SubnetId"), "vpc-id": _field("VpcId"), "state": _field("State"),
                   "cidr-block": _field("CidrBlock"), "owner-id": _field("OwnerId")}
_INSTANCE_FILTERS = {"availability-zone": _field("Placement.AvailabilityZone"), "instance-id": _field("InstanceId"),
                     "instance-state-name": _field("State.Name"), "subnet-id": _field("SubnetId"),
                     "vpc-id": _field("VpcId"), "instance-type": _field("InstanceType")}


def _matches(resource: Mapping[str, Any], filters: List[Mapping[str, Any]], known) -> bool:
    """EC2's rule: every filter must match; within one filter any value may (``*`` and ``?``
    are wildcards); ``tag:KEY`` and ``tag-key`` read the tags."""
    tags = resource.get("_tags", {})
    for item in filters:
        name, values = item.get("Name", ""), item.get("Values") or []
        if name.startswith("tag:"):
            found = [tags[name[4:]]] if name[4:] in tags else []
        elif name == "tag-key":
            found = list(tags)
        elif name in known:
            found = known[name](resource)
        else:
            raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
        if not any(fnmatchcase(f, v) for f in found for v in values):
            return False
    return True


def _select(pool: List[Dict[str, Any]], ids: List[str], id_key: str, not_found: str, filters, known):
    by_id = {r[id_key]: r for r in pool}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise AwsError(not_found, f"The {'subnet' if id_key == 'SubnetId' else 'instance'} ID "
                                  f"'{missing[0]}' does not exist")
    chosen = [by_id[i] for i in ids] if ids else pool
    return [r for r in chosen if _matches(r, filters, known)]


# --------------------------------------------------------------------------- operations


def describe_subnets(lab, params):
    found = _select(vpc.subnets(lab.snapshot()), params.get("SubnetIds") or [], "SubnetId",
                    "InvalidSubnetID.NotFound", params.get("Filters") or [], _SUBNET_FILTERS)
    return {"Subnets": [vpc.public(s) for s in found]}


def describe_instances(lab, params):
    snapshot = lab.snapshot()
    found = _select(vpc.instances(snapshot), params.get("InstanceIds") or [], "InstanceId",
                    "InvalidInstanceID.NotFound", params.get("Filters") or [], _INSTANCE_FILTERS)
    reservations = [{"ReservationId": "r-" + i["InstanceId"][2:], "OwnerId": snapshot["account_id"],
                     "Groups": [], "Instances": [vpc.public(i)]} for i in found]
    return {"Reservations": reservations}


OPERATIONS = {"DescribeSubnets": describe_subnets, "DescribeInstances": describe_instances}
