"""The FIS read calls the AWS CLI and the console make before anything else: which actions and
target resource types exist (`ListActions`, `GetAction`, `ListTargetResourceTypes`,
`GetTargetResourceType`), answered from the lab's own catalogue (`fis_catalog.ACTIONS`), so
what they list is exactly what a lab template may use.

Shapes from botocore's `fis` model; fields as in the FIS API reference (docs/fis.md and
docs/aws-gray-failures.md §1). Descriptions are the lab's own short wording of the FIS actions
reference and the FIS targets page.
"""
from typing import Any, Dict

from woolab.facade import restjson
from woolab.facade.fis_catalog import ACTIONS
from woolab.facade.protocol import model_error

DESCRIPTIONS = {
    "aws:rds:reboot-db-instances": "Reboot the target DB instances; with forceFailover, a Multi-AZ instance "
                                   "fails over to its standby.",
    "aws:rds:failover-db-cluster": "Fail over the target Aurora or Multi-AZ DB clusters.",
    "aws:elasticache:replicationgroup-interrupt-az-power":
        "Interrupt the power of the nodes of the target replication groups in one Availability Zone; "
        "a replica in another zone is promoted where the old primary was lost.",
    "aws:fis:wait": "Wait for the given duration.",
    "aws:network:disrupt-connectivity": "Deny the specified traffic (scope) to and from the target subnets "
                                        "for the duration.",
    "aws:ssm:send-command": "Run an SSM document on the target EC2 instances (the lab runs "
                            "AWSFIS-Run-Network-Latency-Sources and AWSFIS-Run-Network-Packet-Loss-Sources).",
}
PARAMETER_DESCRIPTIONS = {
    "forceFailover": "If true, and the DB instances are Multi-AZ, fail over to the standby's Availability Zone.",
    "duration": "How long the action lasts, as an ISO 8601 duration (e.g. PT1M).",
    "scope": "The traffic to deny: all or availability-zone in the lab (AWS also documents dynamodb, s3, "
             "s3express, prefix-list and vpc).",
    "prefixListIdentifier": "The prefix list of scope prefix-list.",
    "documentArn": "The ARN of the SSM document to run.",
    "documentParameters": "The document's parameters, as a JSON object in a string.",
    "documentVersion": "The version of the SSM document.",
}
RESOURCE_TYPES = {
    "aws:rds:db": "Amazon RDS DB instances.",
    "aws:rds:cluster": "Amazon Aurora and Multi-AZ DB clusters.",
    "aws:elasticache:replicationgroup": "Amazon ElastiCache (Redis OSS, Valkey) replication groups.",
    "aws:ec2:subnet": "Amazon VPC subnets.",
    "aws:ec2:instance": "Amazon EC2 instances.",
}


def _action(lab, action_id: str, with_parameters: bool) -> Dict[str, Any]:
    spec = ACTIONS[action_id]
    snapshot = lab.snapshot()
    action = {"id": action_id, "arn": f"arn:aws:fis:{snapshot['region']}::action/{action_id}",
              "description": DESCRIPTIONS.get(action_id, action_id), "tags": {},
              "targets": {spec.target_key: {"resourceType": spec.resource_type}} if spec.target_key else {}}
    if with_parameters:
        action["parameters"] = {name: {"description": PARAMETER_DESCRIPTIONS.get(name, name), "required": required}
                                for names, required in ((spec.required, True), (spec.optional, False))
                                for name in names}
    return action


def list_actions(lab, params):
    page, token = restjson.page([_action(lab, action_id, False) for action_id in sorted(ACTIONS)], params)
    return {"actions": page, "nextToken": token}


def get_action(lab, params):
    if params["id"] not in ACTIONS:
        raise model_error("fis", "ResourceNotFoundException", f"Action {params['id']} not found.")
    return {"action": _action(lab, params["id"], True)}


def list_target_resource_types(lab, params):
    items = [{"resourceType": name, "description": text} for name, text in sorted(RESOURCE_TYPES.items())]
    page, token = restjson.page(items, params)
    return {"targetResourceTypes": page, "nextToken": token}


def get_target_resource_type(lab, params):
    name = params["resourceType"]
    if name not in RESOURCE_TYPES:
        raise model_error("fis", "ResourceNotFoundException", f"Target resource type {name} not found.")
    return {"targetResourceType": {"resourceType": name, "description": RESOURCE_TYPES[name], "parameters": {}}}


OPERATIONS = {
    "ListActions": list_actions,
    "GetAction": get_action,
    "ListTargetResourceTypes": list_target_resource_types,
    "GetTargetResourceType": get_target_resource_type,
}
