"""Independent observers for the extension section: a log of every data-plane connection attempt
the extension makes (its pacing), and a reference probe that checks the lab's ground truth from
outside both the lab and the extension.

The reference probe follows the endpoint's name as a client does: it asks the lab's DNS server
for the name at every attempt (no address cache, like the extension's own probes) and writes
through a fresh connection every 20 ms with 0.1 s timeouts and no retries, so it sees the first
write that succeeds on the new primary within about 20 ms.
"""
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ["AttemptLog", "ReferenceProbe", "BackgroundSampler"]


class BackgroundSampler:
    """A daemon thread running `_loop` for the length of a `with` block."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5.0)
        return False


class AttemptLog:
    """Every data-plane write attempt of this process, per endpoint: (started, finished, ok) in
    epoch seconds (the extension's writers are wrapped for the length of the `with` block)."""

    def __enter__(self):
        from chaosext import dataplane
        self.dataplane = dataplane
        self.original = dict(dataplane.WRITERS)
        self.attempts: Dict[str, List[Tuple[float, float, bool]]] = {}
        for kind, write in self.original.items():
            dataplane.WRITERS[kind] = self._counted(kind, write)
        return self

    def _counted(self, kind, write):
        def counted(configuration, secrets):
            point = str(self.dataplane.endpoint(kind, configuration, secrets))
            started, ok = time.time(), False
            try:
                write(configuration, secrets)
                ok = True
            finally:
                self.attempts.setdefault(point, []).append((started, time.time(), ok))
        return counted

    def __exit__(self, *exc):
        self.dataplane.WRITERS.update(self.original)
        return False

    def mark(self) -> Dict[str, int]:
        return {point: len(attempts) for point, attempts in self.attempts.items()}

    def pacing(self, since: Optional[Dict[str, int]] = None) -> Tuple[int, float]:
        """(most attempts to one endpoint in any 1 s, smallest gap between starts in ms) after `since`."""
        peak, gap = 0, float("inf")
        for point, attempts in self.attempts.items():
            times = [a[0] for a in attempts[(since or {}).get(point, 0):]]
            j = 0
            for i, t in enumerate(times):
                while times[j] <= t - 1.0:
                    j += 1
                peak = max(peak, i - j + 1)
                if i:
                    gap = min(gap, (t - times[i - 1]) * 1000.0)
        return peak, gap

    def around(self, kind: str, moment: float) -> Dict[str, float]:
        """Where the `kind` endpoint's attempts fell around `moment` (the lab's "writable" event):
        how long after it the first successful attempt started and how long that attempt took,
        in ms. This splits the measured error into probe spacing and attempt duration."""
        attempts = [a for point, found in self.attempts.items() if point.startswith(kind) for a in found]
        before = [a for a in attempts if a[0] <= moment]
        after_failures = [a for a in attempts if a[2] and a[1] >= moment
                          and any(not b[2] for b in before)]
        if not after_failures:
            return {}
        first = min(after_failures, key=lambda a: a[1])
        return {"first_ok_started_after_ms": (first[0] - moment) * 1000.0,
                "first_ok_took_ms": (first[1] - first[0]) * 1000.0}


def _resolver(dns_server: str) -> Callable[[str], str]:
    """name -> the first A record the lab's DNS server gives now (dnspython, 0.1 s timeout)."""
    import dns.message
    import dns.query
    import dns.rdatatype
    host, _, port = dns_server.rpartition(":")

    def resolve(name: str) -> str:
        reply = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), host, port=int(port),
                              timeout=0.1)
        return sorted(item.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A
                      for item in rrset)[0]
    return resolve


def _redis_writer(env: dict) -> Callable[[str], None]:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    port, password = int(env["GAMEDAY_REDIS_PORT"]), env["GAMEDAY_REDIS_PASSWORD"]

    def write(address: str) -> None:
        client = redis.Redis(host=address, port=port, password=password, socket_timeout=0.1,
                             socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
        try:
            client.set("bench:reference", time.time(), px=10000)
        finally:
            client.close()
    return write


def _mysql_writer(env: dict) -> Callable[[str], None]:
    import pymysql
    options = {"port": int(env["GAMEDAY_MYSQL_PORT"]), "user": env["GAMEDAY_MYSQL_USER"],
               "password": env["GAMEDAY_MYSQL_PASSWORD"], "database": env["GAMEDAY_MYSQL_DATABASE"],
               "connect_timeout": 0.1, "read_timeout": 0.1, "write_timeout": 0.1, "autocommit": True,
               "ssl_disabled": True}  # loopback: no TLS context (CPU) per connection

    created = []

    def write(address: str) -> None:
        connection = pymysql.connect(host=address, **options)
        try:
            with connection.cursor() as cursor:
                if not created:  # once: replication carries the table to every node
                    cursor.execute("CREATE TABLE IF NOT EXISTS bench_reference (id INT PRIMARY KEY, at DOUBLE)")
                    created.append(True)
                cursor.execute("REPLACE INTO bench_reference VALUES (1, %s)", (time.time(),))
        finally:
            connection.close()
    return write


WRITERS = {"mysql": (_mysql_writer, "GAMEDAY_MYSQL_HOST"), "redis": (_redis_writer, "GAMEDAY_REDIS_HOST")}


class ReferenceProbe(BackgroundSampler):
    """Writes to the `kind` ("mysql" or "redis") endpoint named in `env` (`gameday lab env`) every
    20 ms through a fresh connection to the address its name resolves to at that moment."""

    def __init__(self, env: dict, kind: str):
        make_writer, host_key = WRITERS[kind]
        self.name, self.write = env[host_key], make_writer(env)
        self.resolve = _resolver(env["GAMEDAY_DNS_SERVER"])
        self.attempts: List[Tuple[float, float, bool]] = []  # (started, finished, ok) epoch seconds
        super().__init__()

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            started = time.time()
            try:
                self.write(self.resolve(self.name))
                self.attempts.append((started, time.time(), True))
            except Exception:  # any failure (DNS, connect, refused, read-only) is "not writable"
                self.attempts.append((started, time.time(), False))

    def writable_again(self, injected: float) -> Optional[float]:
        """Finish time of the first acknowledged write after the first failure since `injected`."""
        failed = False
        for started, finished, ok in list(self.attempts):
            if started < injected - 0.05:
                continue
            failed = failed or not ok
            if ok and failed:
                return finished
        return None
