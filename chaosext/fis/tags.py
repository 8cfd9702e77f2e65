"""Tags of the RDS and ElastiCache resources an FIS template names by ARN (for the guardrail).

Kept apart from the FIS client's module: these calls go to RDS and ElastiCache, not to FIS.
"""
from typing import Dict

from chaoslib.types import Configuration, Secrets

from chaosext.aws import aws_call, aws_client

__all__ = ["arn_tags"]


def arn_tags(arn: str, configuration: Configuration, secrets: Secrets) -> Dict[str, str]:
    """Tags of an RDS or ElastiCache resource named by ARN ({} for other services)."""
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service not in ("rds", "elasticache"):
        return {}
    client = aws_client("rds" if service == "rds" else "elasticache", configuration, secrets)
    answer = aws_call(client, "list_tags_for_resource", arn, ResourceName=arn)
    return {t["Key"]: t.get("Value", "") for t in answer.get("TagList", [])}
