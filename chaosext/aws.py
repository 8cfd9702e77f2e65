"""One boto3 client factory and one translation of AWS errors into clear sentences.

The same code talks to AWS and to the lab: the lab is reached only through botocore's standard
endpoint variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_RDS`, `AWS_ENDPOINT_URL_ELASTICACHE`),
which botocore reads itself, so nothing here knows about the lab.
"""
import logging
import os
from typing import Any, Dict, Iterator, Optional

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.parsers import ResponseParserError
from chaoslib.types import Configuration, Secrets

from chaosext.errors import ActivityError

__all__ = ["aws_client", "aws_call", "paginate", "explain_aws_error", "client_region", "TIMEOUTS",
           "DENIED_CODES"]

logger = logging.getLogger("chaostoolkit")

# ClientError codes → what they mean for the person running the game day.
ERROR_SENTENCES = {
    "DBInstanceNotFound": "no such DB instance in this account and region",
    "DBClusterNotFoundFault": "no such DB cluster in this account and region",
    "InvalidDBInstanceState": "the DB instance is not in a state that allows this (it may be "
    "rebooting, modifying or not Multi-AZ)",
    "InvalidDBClusterStateFault": "the DB cluster is not in a state that allows a failover now",
    "ReplicationGroupNotFoundFault": "no such replication group in this account and region",
    "CacheClusterNotFound": "no such cache cluster (node) in this account and region",
    "NodeGroupNotFoundFault": "no such node group (shard) in the replication group",
    "InvalidReplicationGroupState": "the replication group is not in a state that allows this "
    "(a failover or modification may be in progress)",
    "InvalidCacheClusterState": "the cache node is not in a state that allows this (AWS also "
    "refuses to delete the primary node of a replication group)",
    "TestFailoverNotAvailableFault": "TestFailover is not available now (AWS allows 15 node "
    "groups per rolling 24 hours, one at a time)",
    "APICallRateForCustomerExceeded": "AWS's API call rate limit for this operation was exceeded",
    "NoOperationFault": "there was nothing to change",
    "Throttling": "AWS throttled the request; retry later or poll less often",
    "ThrottlingException": "AWS throttled the request; retry later or poll less often",
    "RequestLimitExceeded": "AWS throttled the request; retry later or poll less often",
    "AccessDenied": "the credentials are not allowed to do this (check the IAM policy)",
    "AccessDeniedException": "the credentials are not allowed to do this (check the IAM policy)",
    "UnauthorizedOperation": "the credentials are not allowed to do this (check the IAM policy)",
    "InvalidClientTokenId": "the AWS access key is not valid",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "ExpiredToken": "the AWS session token has expired",
    "InvalidParameterValue": "a parameter value was refused",
    "InvalidParameterCombination": "these parameters cannot be combined",
    "InvalidAction": "the endpoint does not support this operation",
}


# (connect s, read s): an AWS API call answers in well under a second; an endpoint that hangs
# costs at most about AWS_MAX_ATTEMPTS (standard retry mode: 3) x the timeout, then one line
TIMEOUTS = (10.0, 30.0)


# what botocore's parsers raise on a body that is not the service's (an HTML page, a proxy's
# answer): only botocore's own code runs inside the call these are caught around
NOT_AWS_REPLY = (ResponseParserError, KeyError, AttributeError, TypeError, ValueError, IndexError)
# codes that mean "the IAM policy does not allow it" (and nothing else)
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def _setting(configuration: Configuration, key: str) -> Optional[str]:
    value = (configuration or {}).get(key)
    return str(value) if value not in (None, "") else None


def client_region(configuration: Configuration = None) -> str:
    """The region to use: configuration `aws_region`, else AWS_REGION, else what botocore finds
    itself (AWS_DEFAULT_REGION, the profile's `region` in ~/.aws/config)."""
    region = _setting(configuration, "aws_region") or os.environ.get("AWS_REGION")
    if not region:
        try:
            region = boto3.Session(profile_name=_setting(configuration, "aws_profile_name")).region_name
        except botocore.exceptions.BotoCoreError as error:
            raise ActivityError(explain_aws_error(error, "reading the AWS profile")) from None
    if not region:
        raise ActivityError(
            "no AWS region: set the configuration key `aws_region`, the environment "
            "variable AWS_REGION / AWS_DEFAULT_REGION or `region` in the AWS profile"
        )
    return region


def aws_client(service: str, configuration: Configuration = None, secrets: Secrets = None):
    """Build a boto3 client for `service` from the experiment's configuration and secrets.

    Honours `aws_region`, `aws_profile_name`, `aws_assume_role_arn` (+
    `aws_assume_role_session_name`) and the secrets `aws_access_key_id`,
    `aws_secret_access_key`, `aws_session_token`; everything else (endpoint variables, the
    credential chain) is botocore's standard behaviour.
    """
    region = client_region(configuration)
    secrets = secrets or {}
    credentials = {
        key: secrets[key]
        for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        if secrets.get(key)
    }
    try:
        session = boto3.Session(
            profile_name=_setting(configuration, "aws_profile_name"),
            region_name=region,
            **credentials,
        )
    except botocore.exceptions.BotoCoreError as error:
        raise ActivityError(explain_aws_error(error, "creating the AWS session")) from None
    connect, read = TIMEOUTS
    config = Config(retries={"mode": "standard"}, connect_timeout=connect, read_timeout=read,
                    user_agent_extra="failover-gameday")
    role_arn = _setting(configuration, "aws_assume_role_arn")
    if role_arn:
        session = _assumed_role_session(session, role_arn, configuration, region, config)
    logger.debug("AWS %s client in %s", service, region)
    return session.client(service, config=config)


def _assumed_role_session(session, role_arn, configuration, region, config):
    session_name = _setting(configuration, "aws_assume_role_session_name") or "failover-gameday"
    sts = session.client("sts", config=config)
    answer = aws_call(sts, "assume_role", role_arn, RoleArn=role_arn, RoleSessionName=session_name)
    creds = answer["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def explain_aws_error(error: Exception, what: str, endpoint: Optional[str] = None) -> str:
    """One sentence saying which call on which resource failed and why."""
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        detail = info.get("Message") or ""
        if code.isdigit():  # no AWS error body: botocore names the error by the HTTP status
            return (f"{what} failed: the endpoint {endpoint or '?'} answered HTTP {code} without an "
                    "AWS error body, not an AWS reply; check AWS_ENDPOINT_URL* or the profile's "
                    "endpoint_url")
        reason = ERROR_SENTENCES.get(code, "AWS refused it")
        suffix = f" ({code}: {detail})" if detail else f" ({code})"
        return f"{what} refused: {reason}{suffix}"
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return (
            f"{what} failed: no AWS credentials found (set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, a profile via `aws_profile_name`, or the secrets "
            "aws_access_key_id/aws_secret_access_key)"
        )
    if isinstance(error, botocore.exceptions.ProfileNotFound):
        return f"{what} failed: {error} (check `aws_profile_name`)"
    return _transport_sentence(error, what, endpoint)


def _transport_sentence(error: Exception, what: str, endpoint: Optional[str] = None) -> str:
    """Unreachable, silent or not-AWS endpoints: one sentence naming the endpoint."""
    endpoint = getattr(error, "kwargs", {}).get("endpoint_url") or endpoint or "?"
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return (f"{what} failed: cannot reach the endpoint {endpoint} (check the network path "
                "from this machine, and AWS_ENDPOINT_URL* or the profile's endpoint_url if set)")
    if isinstance(error, (botocore.exceptions.ConnectTimeoutError,
                          botocore.exceptions.ReadTimeoutError)):
        return f"{what} failed: the endpoint {endpoint} did not answer in time"
    if isinstance(error, ResponseParserError):
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        return (f"{what} failed: the endpoint {endpoint} answered with something that is not an "
                f"AWS reply ({first}); check AWS_ENDPOINT_URL* or the profile's endpoint_url")
    return f"{what} failed: {error}"


AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, *NOT_AWS_REPLY)


def _failed(client, operation: str, target: str, error: Exception) -> ActivityError:
    """The one-line `ActivityError` for a failed call, keeping AWS's error code and naming the
    endpoint when the reply was not AWS's or never came."""
    what = f"{client.meta.method_to_api_mapping.get(operation, operation)} on {target}"
    if isinstance(error, NOT_AWS_REPLY):  # raised inside botocore's parser by a body it cannot read
        return ActivityError(_transport_sentence(ResponseParserError(f"{type(error).__name__}: {error}"),
                                                 what, client.meta.endpoint_url), code=None)
    code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
    return ActivityError(explain_aws_error(error, what, client.meta.endpoint_url), code=code)


def aws_call(client, operation: str, target: str, **params: Any) -> Dict[str, Any]:
    """Call `client.<operation>(**params)`; failures become one-line `ActivityError`s."""
    try:
        return getattr(client, operation)(**params)
    except AWS_ERRORS as error:
        raise _failed(client, operation, target, error) from None


def paginate(client, operation: str, target: str, key: str, **params: Any) -> Iterator[dict]:
    """Yield the `key` items of every page of a paginated call, through boto3's paginator (it
    follows Marker, NextToken or nextToken as the service model says); failures as in
    `aws_call`."""
    try:
        for page in client.get_paginator(operation).paginate(**params):
            yield from page.get(key, [])
    except AWS_ERRORS as error:
        raise _failed(client, operation, target, error) from None

