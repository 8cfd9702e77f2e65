"""Stubbed boto3 clients for unit tests of AWS-only paths (botocore's Stubber checks parameters
against the real service model, unlike a MagicMock)."""
import contextlib

from botocore.stub import Stubber

from chaosext.aws import aws_client


@contextlib.contextmanager
def stubbed_client(monkeypatch, service: str, configuration: dict, *modules):
    """One real client of `service`, handed to every module's `aws_client`, under a Stubber that
    must be fully consumed by the test."""
    client = aws_client(service, configuration)
    for module in modules:
        monkeypatch.setattr(module, "aws_client", lambda *a, **k: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
