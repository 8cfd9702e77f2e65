"""The read side of a DB cluster's data plane: does its reader endpoint serve reads, and when again?

A Multi-AZ DB cluster has a cluster (writer) endpoint and a reader endpoint that "sends each
connection request to one of the reader DB instances" (docs/db-cluster.md). A failover is
over for writers once the cluster endpoint takes writes (chaosext.dataplane), and for readers
once the reader endpoint answers reads again, which need not be at the same time. This module
measures the second the way `WriteWatch` measures the first: paced attempts, each a fresh
connection through the endpoint name (resolved afresh, as a PHP request does) and one query.

Configuration: `mysql_reader_host` ($GAMEDAY_MYSQL_READER_HOST), on the writer's port, with the
writer's user, password, database and TLS settings (chaosext.dataplane).
"""
import time
from typing import Dict, Optional

import pymysql
from chaoslib.types import Configuration, Secrets

from chaosext import dataplane, settings, unmeasured
from chaosext.attempts import Attempt, failed
from chaosext.errors import ActivityError

__all__ = ["mysql_reader_serves"]

READER = "mysql-reader"  # the data-plane kind of the reader endpoint (chaosext.fault_model)


def reader_endpoint(configuration: Configuration = None, secrets: Secrets = None
                    ) -> Optional[dataplane.Endpoint]:
    """The configured reader endpoint, or None when the configuration names none."""
    host = settings.lookup("mysql_reader_host", configuration, secrets)
    if not host:
        return None
    port = int(settings.lookup("mysql_port", configuration, secrets, 3306))
    return dataplane.Endpoint(READER, str(host), port)


def _through_reader(configuration: Configuration, secrets: Secrets) -> Dict:
    """The configuration with the reader endpoint in place of the writer's, so the one MySQL
    connection factory (chaosext.dataplane) serves both."""
    point = reader_endpoint(configuration, secrets)
    if point is None:
        raise ActivityError("no reader endpoint configured: set `mysql_reader_host` "
                            "($GAMEDAY_MYSQL_READER_HOST)")
    return {**(configuration or {}), "mysql_host": point.host, "mysql_port": point.port}


def attempt_read(kind: str = READER, configuration: Configuration = None, secrets: Secrets = None) -> Attempt:
    """One paced read through the reader endpoint; its outcome, times in epoch seconds."""
    through = _through_reader(configuration, secrets)
    dataplane.PACER.wait(str(through["mysql_host"]), int(through["mysql_port"]))
    started = time.time()
    try:
        connection = dataplane.mysql_connection(through, secrets)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
        finally:
            connection.close()
        return Attempt(True, None, started, time.time())
    except (pymysql.err.MySQLError, OSError) as error:
        return failed(error, started)


class ReadWatch(dataplane.WriteWatch):
    """A `WriteWatch` whose attempts are reads through the reader endpoint: its
    `writable_again_at` is when the endpoint served reads again."""

    def __post_init__(self) -> None:
        self.endpoint = reader_endpoint(self.configuration, self.secrets)
        if self.endpoint is None:
            _through_reader(self.configuration, self.secrets)  # raises: no reader endpoint
        self.interval = max(float(self.interval), dataplane.MIN_INTERVAL)
        self.attempt = attempt_read


def watch_for(kind: str, configuration: Configuration = None, secrets: Secrets = None
              ) -> Optional[dataplane.WriteWatch]:
    """A watch on the endpoint of `kind` ("mysql", "redis" or "mysql-reader"), or None when the
    configuration names no such endpoint (that figure is then not measured)."""
    if kind == READER:
        return ReadWatch(kind, configuration, secrets) if reader_endpoint(configuration, secrets) else None
    if dataplane.endpoint(kind, configuration, secrets) is None:
        return None
    return dataplane.WriteWatch(kind, configuration, secrets)


def mysql_reader_serves(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Read through the DB cluster's reader endpoint (a fresh connection, `SELECT 1`).

    Returns True when a reader answered; fails the activity with the MySQL error number (2003
    cannot connect, 2013 lost, ...) otherwise. Without a configured reader endpoint the check
    is skipped: True, a warning, and "not measured".
    """
    point = reader_endpoint(configuration, secrets)
    if point is None:
        unmeasured.skip("mysql reader endpoint", "no reader endpoint configured; set "
                        "GAMEDAY_MYSQL_READER_HOST to measure it", configuration)
        return True
    outcome = attempt_read(READER, configuration, secrets)
    if not outcome.ok:
        raise ActivityError(f"{point} does not serve reads: {outcome.why}")
    return True
