"""Ground-truth writers for the lab: commit continuously through an endpoint, remember every
acknowledged write and the longest client-visible write outage.

Used by the lab's tests and by the benchmark script to check the RPO/outage targets.
"""
import threading
import time
from pathlib import Path
from typing import List, Optional

import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from groundfloor.resolve import Resolver, resolving_redis

from .tls import verified_context


class EndpointWriter(threading.Thread):
    """Writes id 1, 2, 3, ... through the DB or cache endpoint until stopped."""

    def __init__(self, env: dict, kind: str, wait_replicas: int = 0, table: str = "lab_rpo",
                 timeout: float = 5.0):
        """`timeout`: seconds a DB commit may go unanswered before it counts as not acknowledged."""
        super().__init__(daemon=True, name=f"writer-{kind}")
        self.env, self.kind, self.wait_replicas, self.table = env, kind, wait_replicas, table
        self.timeout = timeout
        self.acked: List[int] = []
        self.ack_times: List[float] = []
        self.failure_times: List[float] = []
        self._halt = threading.Event()
        self._redis: Optional[redis.Redis] = None
        self.resolver = Resolver(env.get("GAMEDAY_DNS_SERVER"))  # honours the TTL, like a good client
        if kind == "db":
            conn = self._mysql()
            with conn.cursor() as cur:
                cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY)")
                cur.execute(f"DELETE FROM {table}")
            conn.close()

    def _mysql(self):
        e = self.env
        return pymysql.connect(host=self.resolver.address(e["GAMEDAY_MYSQL_HOST"]), port=int(e["GAMEDAY_MYSQL_PORT"]),
                               user=e["GAMEDAY_MYSQL_USER"], password=e["GAMEDAY_MYSQL_PASSWORD"],
                               database=e["GAMEDAY_MYSQL_DATABASE"], connect_timeout=1, read_timeout=self.timeout,
                               write_timeout=self.timeout, autocommit=True, **self._mysql_tls())

    def _mysql_tls(self) -> dict:
        """TLS verified against the lab's CA when `gameday lab env` says the lab is encrypted."""
        ca = self.env.get("GAMEDAY_MYSQL_CA")
        if self.env.get("GAMEDAY_MYSQL_TLS") == "true" and ca:
            return {"ssl": verified_context(Path(ca))}
        return {"ssl_disabled": True}

    def _redis_auth(self) -> dict:
        e = self.env
        options = {"password": e["GAMEDAY_REDIS_PASSWORD"], "username": e.get("GAMEDAY_REDIS_USERNAME") or None}
        if e.get("GAMEDAY_REDIS_TLS") == "true":
            options.update(ssl=True, ssl_ca_certs=e.get("GAMEDAY_REDIS_CA"), ssl_cert_reqs="required",
                           ssl_check_hostname=True)
        return options

    def _cache(self) -> redis.Redis:
        if self._redis is None:
            e = self.env
            self._redis = resolving_redis(e["GAMEDAY_REDIS_HOST"], int(e["GAMEDAY_REDIS_PORT"]), self.resolver,
                                          socket_timeout=0.25, socket_connect_timeout=0.25,
                                          retry=Retry(NoBackoff(), 0), **self._redis_auth())
        return self._redis

    def _write(self, n: int) -> None:
        if self.kind == "db":  # a fresh connection per write, like PHP
            conn = self._mysql()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {self.table} VALUES (%s)", (n,))
            finally:
                conn.close()
            return
        client = self._cache()
        client.set(f"rpo:{n}", n)
        if self.wait_replicas and client.execute_command("WAIT", self.wait_replicas, 200) < self.wait_replicas:
            raise redis.RedisError("write not acknowledged by a replica")

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            n += 1
            try:
                self._write(n)
                self.acked.append(n)
                self.ack_times.append(time.time())
            except (pymysql.MySQLError, redis.RedisError, OSError):
                self.failure_times.append(time.time())
                if self._redis is not None:
                    self._redis.connection_pool.disconnect()
                time.sleep(0.005)

    def finish(self) -> None:
        self._halt.set()
        self.join(10)

    def outages(self) -> List[float]:
        """Client-visible write outages: gaps between acknowledged writes with failures inside."""
        gaps, failures = [], iter(sorted(self.failure_times))
        pending = next(failures, None)
        for before, after in zip(self.ack_times, self.ack_times[1:]):
            while pending is not None and pending < before:
                pending = next(failures, None)
            if pending is not None and pending < after:
                gaps.append(after - before)
        return gaps

    def lost(self) -> List[int]:
        """Acknowledged ids that are not stored any more."""
        if self.kind == "db":
            conn = self._mysql()
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {self.table}")
                stored = {row[0] for row in cur.fetchall()}
            conn.close()
            return sorted(set(self.acked) - stored)
        client = self._cache()
        lost = []
        for i in range(0, len(self.acked), 1000):
            chunk = self.acked[i:i + 1000]
            lost += [n for n, v in zip(chunk, client.mget([f"rpo:{n}" for n in chunk])) if v is None]
        return lost
