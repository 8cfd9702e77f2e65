"""Benchmark figures for the project's performance targets. Prints a table and writes reports/bench.json.

Run with `make bench` (or `--only SECTION`). Sections for parts that are not installed are
skipped; a section that fails prints one line and the others still run. One lab (base port
27300, or $GAMEDAY_LAB_BASE_PORT; a temporary state dir) serves every section that needs it and
is stopped at the end. The machine's load average is recorded with the figures: on a shared
machine they are noisy, so re-measure on an idle one (`--only capacity` for the load figures).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from woolab import manage, servers  # noqa: E402
from woolab.config import LabConfig  # noqa: E402
from woolab.events import read_events  # noqa: E402
from woolab.measure import EndpointWriter  # noqa: E402

BASE_PORT = int(os.environ.get("GAMEDAY_LAB_BASE_PORT") or 27300)
FIGURES = {}
SECTIONS = ("lab", "convergence", "crashes", "facade", "shop", "load", "capacity", "extension", "liveview", "report",
            "history", "pulse", "tls")
LAB_SECTIONS = ("lab", "convergence", "crashes", "facade", "shop", "load", "capacity", "extension", "liveview")


def figure(section: str, name: str, value, target: str = "") -> None:
    FIGURES.setdefault(section, {})[name] = value
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"  {name:<52} {shown:>12}   {target}")


def _control(config, path):
    return manage.call(config, path, method="POST", timeout=120)


def _replication_healthy(config, state_dir: Path) -> bool:
    import pymysql
    snap = manage.call(config, "/_lab/status")
    standby = snap["db_instances"]["shop-db"]["standby"]
    conn = pymysql.connect(unix_socket=str(state_dir / "run" / f"{standby}.sock"), user="root", password="")
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
    conn.close()
    return status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"


# --- lab: failovers under continuous writes (issue 2) ------------------------------------------

def bench_lab(config, args) -> None:
    rounds, state_dir = args.rounds, config.state_dir
    env = manage.env(state_dir)
    writer = EndpointWriter(env, "db", table="bench_rpo")
    writer.start()
    healthy = 0
    for _ in range(rounds):
        time.sleep(0.2)
        _control(config, "/_lab/db-failover?id=shop-db")
        _control(config, "/_lab/wait-idle")
        healthy += _replication_healthy(config, state_dir)
    time.sleep(0.2)
    writer.finish()
    outages = writer.outages()
    figure("lab", "DB failovers under continuous commits", rounds)
    figure("lab", "DB write outage max seconds", max(outages, default=0.0), "target <= 3 s")
    figure("lab", "DB write outage median seconds", statistics.median(outages) if outages else 0.0)
    figure("lab", "DB acknowledged commits", len(writer.acked))
    figure("lab", "DB acknowledged commits lost", len(writer.lost()), "target 0")
    figure("lab", "DB replication healthy after failover", f"{healthy}/{rounds}", f"target {rounds}/{rounds}")

    for wait in (1, 0):
        _cache_failovers(config, env, rounds if wait else max(3, rounds // 4), wait,
                         "with WAIT 1" if wait else "without WAIT")
    # WAIT 1 with a single replica also waits for the old primary to resync after each promotion,
    # so its acknowledged-write outage is longer than the endpoint's (measured, see the notes)


def _cache_failovers(config, env, n: int, wait: int, label: str) -> None:
    """`n` cache failovers while a writer writes (and WAITs for `wait` replicas) through the endpoint."""
    writer = EndpointWriter(env, "cache", wait_replicas=wait)
    writer.start()
    for _ in range(n):
        time.sleep(0.2)
        _control(config, "/_lab/cache-failover?id=shop-cache")
        _control(config, "/_lab/wait-idle")
    time.sleep(0.2)
    writer.finish()
    outages = writer.outages()
    figure("lab", f"cache failovers ({label})", n)
    figure("lab", f"cache write outage max seconds ({label})", max(outages, default=0.0), "target <= 3 s")
    figure("lab", f"cache write outage median seconds ({label})", statistics.median(outages) if outages else 0.0)
    figure("lab", f"cache acknowledged writes ({label})", len(writer.acked))
    figure("lab", f"cache acknowledged writes lost ({label})", len(writer.lost()),
           "target 0" if wait else "(async replication: loss possible)")


# --- facade: Describe latency (issue 3) --------------------------------------------------------

def bench_facade(config, args) -> None:
    try:
        from woolab.facade.bench import describe_latency
    except ImportError:
        print("  (facade benchmark not installed: skipped)")
        return
    result = describe_latency(manage.controller_url(config))
    figure("facade", "DescribeDBInstances median ms", result["median_ms"])
    figure("facade", "DescribeDBInstances p95 ms", result["p95_ms"], "target < 50 ms")


# --- shop: browse and checkout throughput (issue 4) --------------------------------------------

def _ticks(pid) -> int:
    """CPU time (clock ticks) a live process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0


def _machine_ticks():
    """(busy, total) clock ticks over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def _lab_processes(state_dir: Path) -> dict:
    """Live lab pids grouped by kind (gunicorn workers counted with the shop). From the lab's
    status, not its pid files: a failover restarts nodes under new pids."""
    found = {}
    for node in manage.status(state_dir)["nodes"]:
        if node["pid"]:
            found.setdefault(node["kind"], set()).update({node["pid"]} | servers.child_pids(node["pid"]))
    state = manage.controller_state(state_dir) or {}
    if state.get("controller_pid"):
        found["lab controller"] = {state["controller_pid"]}
    return found


class CpuShares:
    """Who used the machine's cores while a benchmark ran: says what limits its throughput."""

    def __init__(self, state_dir: Path, label: str = ""):
        self.state_dir = state_dir
        self.label = label

    def __enter__(self):
        self.groups = _lab_processes(self.state_dir)
        self.before = {g: sum(_ticks(p) for p in pids) for g, pids in self.groups.items()}
        self.machine = _machine_ticks()
        self.children = _children_cpu_seconds()
        return self

    def __exit__(self, *exc):
        busy0, total0 = self.machine
        busy1, total1 = _machine_ticks()
        total = max(1, total1 - total0)
        self.busy = 100.0 * (busy1 - busy0) / total
        hz = os.sysconf("SC_CLK_TCK")
        self.cpu_seconds = {g: (sum(_ticks(p) for p in pids) - self.before[g]) / hz
                            for g, pids in self.groups.items()}
        # Locust processes this script started and reaped (their CPU lands in RUSAGE_CHILDREN)
        self.cpu_seconds["load generator"] = _children_cpu_seconds() - self.children
        used = {g: 100.0 * seconds * hz / total for g, seconds in self.cpu_seconds.items()}
        shown = sorted(((share, g) for g, share in used.items() if share >= 1.0), reverse=True)
        rest = self.busy - sum(used.values())
        self.limit = shown[0][1] if shown else "nothing measured"
        self.text = (f"{os.cpu_count()} cores {self.busy:.0f}% busy: "
                     + ", ".join(f"{g} {share:.0f}%" for share, g in shown)
                     + f", others on the machine {max(0.0, rest):.0f}%")
        return False

    def verdict(self) -> str:
        return "CPU-bound" if self.busy >= 90 else "waits, not CPU"


def _children_cpu_seconds() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _not_ok(result: dict, step: str) -> int:
    codes = result["steps"].get(step, {}).get("status", {})
    return sum(n for code, n in codes.items() if code != "200") + result["socket_errors"]


def _limit(step: str, cpu: CpuShares) -> None:
    figure("shop", f"{step}: what limits it", cpu.verdict(), cpu.text)
    FIGURES["shop"][f"{step}: CPU shares"] = cpu.text


def bench_shop(config, args) -> None:
    from woolab.shop.bench import bench_browse, bench_checkout
    url = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    with CpuShares(config.state_dir) as cpu:
        browse = bench_browse(url, seconds=args.seconds)
    step = browse["steps"].get("browse", {})
    figure("shop", f"browse req/s ({browse['concurrency']} conns, cached list)", float(step.get("rps", 0.0)),
           "target >= 2,000")
    figure("shop", "browse p95 ms", float(step.get("p95_ms", 0.0)), "target <= 50 ms")
    figure("shop", "browse non-200 responses + socket errors", _not_ok(browse, "browse"))
    _limit("browse", cpu)
    with CpuShares(config.state_dir) as cpu:
        checkout = bench_checkout(url, seconds=args.seconds)
    step = checkout["steps"].get("checkout", {})
    figure("shop", f"checkout orders/s ({checkout['concurrency']} conns, 1 item, cod)",
           float(checkout["orders_per_second"]), "target >= 300")
    figure("shop", "checkout p95 ms", float(step.get("p95_ms", 0.0)), "target <= 100 ms")
    figure("shop", "checkout non-200 responses + socket errors", _not_ok(checkout, "checkout"))
    _limit("checkout", cpu)


# --- load: journey vs bare Locust, recorder memory (issue 5) -----------------------------------

def _child_pids() -> set:
    """Children of this process, whichever thread started them."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (task / "children").read_text().split()}
    return pids


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


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
        self._thread.join()
        return False


class LocustMemory(BackgroundSampler):
    """Samples the RSS of every Locust process this script starts, by locust file."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.samples = {}  # pid -> (locust file name, [(seconds since first seen, MB)], first seen)
        super().__init__()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _child_pids():
                with contextlib.suppress(OSError):
                    cmd = servers.pid_cmdline(pid)
                    if "locust" not in cmd:
                        continue
                    name = next((Path(a).name for a in cmd.split() if a.endswith(".py")), "?")
                    first = self.samples.setdefault(pid, (name, [], time.monotonic()))
                    first[1].append((time.monotonic() - first[2], _rss_mb(pid)))

    def growth(self, locustfile: str, warm: float = 3.0):
        """(MB after `warm` s, MB at the end) of the last run of `locustfile`."""
        runs = [s for name, s, _ in self.samples.values() if name == locustfile and s]
        if not runs:
            return None
        samples = runs[-1]
        warmed = next((mb for t, mb in samples if t >= warm), samples[0][1])
        return warmed, samples[-1][1]


def bench_load(config, args) -> None:
    from gameday.loadbench import run_side_by_side
    host = manage.env(config.state_dir)["GAMEDAY_SHOP_URL"]
    with LocustMemory() as memory:
        result = run_side_by_side(host, users=32, seconds=int(args.seconds), rounds=2,
                                  out_dir=str(args.work / "load"))
    figure("load", f"bare FastHttpUser req/s ({result['users']} users)", float(result["bare_rps"]))
    figure("load", "journey (with recorder) req/s", float(result["journey_rps"]))
    figure("load", "journey / bare ratio", float(result["ratio"]), "target >= 0.70")
    for label, locustfile, key in (("journey", "shopper.py", "journey"), ("bare", "bare.py", "bare")):
        grown = memory.growth(locustfile)
        if grown is None:
            figure("load", f"{label} Locust RSS: not sampled", "-")
            continue
        requests = result["runs"][key][-1]["requests"]
        figure("load", f"{label} Locust RSS MB after 3 s", grown[0])
        figure("load", f"{label} Locust RSS growth MB 3 s -> end", grown[1] - grown[0],
               f"whole process, run of {requests} requests"
               + ("; target: no growth with requests" if key == "journey" else ""))


# --- capacity: distributed load and the largest passing game day (issue 17) ---------------------

def bench_capacity(config, args) -> None:
    from bench_capacity import bench_capacity as run
    run(config, args, figure, FIGURES, CpuShares)


# --- extension: probe pacing and RTO accuracy (issue 6) ----------------------------------------

class AttemptLog:
    """Records when every data-plane connection attempt of this process starts, per endpoint."""

    def __enter__(self):
        from chaosext import dataplane
        self.dataplane = dataplane
        self.original = dict(dataplane.WRITERS)
        self.times = {}
        for kind, write in self.original.items():
            dataplane.WRITERS[kind] = self._counted(kind, write)
        return self

    def _counted(self, kind, write):
        def counted(configuration, secrets):
            point = str(self.dataplane.endpoint(kind, configuration, secrets))
            self.times.setdefault(point, []).append(time.monotonic())
            return write(configuration, secrets)
        return counted

    def __exit__(self, *exc):
        self.dataplane.WRITERS.update(self.original)
        return False

    def mark(self) -> dict:
        return {point: len(times) for point, times in self.times.items()}

    def pacing(self, since: dict = None):
        """(most attempts to one endpoint in any 1 s, smallest gap in ms) after `since`."""
        peak, gap = 0, float("inf")
        for point, times in self.times.items():
            times = times[(since or {}).get(point, 0):]
            j = 0
            for i, t in enumerate(times):
                while times[j] <= t - 1.0:
                    j += 1
                peak = max(peak, i - j + 1)
                if i:
                    gap = min(gap, (t - times[i - 1]) * 1000.0)
        return peak, gap


@contextlib.contextmanager
def aws_environment(env: dict):
    """boto3 pointed at the lab facade (lab env only), restored afterwards."""
    keys = [k for k in env if k.startswith("AWS_")] + ["AWS_PROFILE", "AWS_SESSION_TOKEN"]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiment_configuration(env: dict) -> dict:
    """What tests/test_ext_lab.py builds from `gameday lab env`."""
    return {
        "aws_region": env["AWS_DEFAULT_REGION"],
        "mysql_host": env["GAMEDAY_MYSQL_HOST"], "mysql_port": env["GAMEDAY_MYSQL_PORT"],
        "mysql_user": env["GAMEDAY_MYSQL_USER"], "mysql_password": env["GAMEDAY_MYSQL_PASSWORD"],
        "mysql_database": env["GAMEDAY_MYSQL_DATABASE"],
        "redis_host": env["GAMEDAY_REDIS_HOST"], "redis_port": env["GAMEDAY_REDIS_PORT"],
        "redis_password": env["GAMEDAY_REDIS_PASSWORD"],
    }


def _ground_truth_writable(state_dir: Path, target: str, injected: float) -> float:
    """The lab's "endpoint writable on ..." event for the failover injected at `injected`."""
    times = [e["time"] for e in read_events(state_dir / "events.jsonl")
             if e["source_type"] == "lab" and e["source_id"] == target
             and e["message"].startswith("endpoint writable on") and e["time"] >= injected]
    if not times:
        raise RuntimeError(f"no 'endpoint writable' lab event for {target} after the failover")
    return min(times)


class ReferenceProbe(BackgroundSampler):
    """An independent cross-check of the lab's Redis ground truth: a fresh connection every
    20 ms, 100 ms timeouts and no client retries."""

    def __init__(self, env: dict):
        self.port, self.password = int(env["GAMEDAY_REDIS_PORT"]), env["GAMEDAY_REDIS_PASSWORD"]
        self.attempts = []  # (started, finished, ok) epoch seconds
        super().__init__()

    def _loop(self) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        while not self._stop.wait(0.02):
            client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                                 socket_timeout=0.1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
            started = time.time()
            try:
                client.set("bench:reference", started, px=10000)
                self.attempts.append((started, time.time(), True))
            except redis.RedisError:
                self.attempts.append((started, time.time(), False))
            finally:
                client.close()

    def writable_again(self, injected: float):
        """Finish time of the first acknowledged write after the first failure since `injected`."""
        failed = False
        for started, finished, ok in list(self.attempts):
            if started < injected - 0.05:
                continue
            failed = failed or not ok
            if ok and failed:
                return finished
        return None


def _rto_rounds(config, conf, label, action, target, rounds, reference=None) -> None:
    from groundfloor.timefmt import parse_time
    errors, rtos, lags, failed = [], [], [], []
    for _ in range(rounds):
        try:
            result = action(target, configuration=conf, timeout=90, poll_interval=0.2)
            writable = parse_time(result["data_plane_writable_at"]).timestamp()
            injected = parse_time(result["injected_at"]).timestamp()
            truth = _ground_truth_writable(config.state_dir, target, injected)
            errors.append(abs(writable - truth) * 1000.0)
            rtos.append(result["rto_seconds"])
            seen = reference.writable_again(injected) if reference else None
            if seen is not None:
                lags.append(((truth - seen) * 1000.0, abs(writable - seen) * 1000.0))
        except Exception as error:  # one bad round must not hide the others
            failed.append(f"{type(error).__name__}: {error}")
        _control(config, "/_lab/wait-idle")
    figure("extension", f"{label} runs measured", f"{len(errors)}/{rounds}")
    if failed:
        print(f"    first failure: {failed[0].splitlines()[0][:160]}")
    if errors:
        figure("extension", f"{label} RTO median seconds", float(statistics.median(rtos)))
        figure("extension", f"{label} |writable - ground truth| max ms", max(errors), "target <= 250 ms")
    if lags:
        figure("extension", f"{label} |writable - reference probe| ms",
               max(e for _, e in lags), "cross-check: 20 ms probe, 0.1 s timeouts")
        figure("extension", f"{label}: lab event later than reference ms", max(lag for lag, _ in lags),
               "how late the lab's own ground-truth probe is")


def _two_probes_during_db_failover(config, conf, attempts) -> None:
    """A WriteWatch and wait_until_writable on one endpoint at once: the pacer still holds."""
    from chaosext import dataplane
    mark = attempts.mark()
    watch = dataplane.WriteWatch("mysql", conf).start()
    outcome = {}
    waiter = threading.Thread(target=lambda: outcome.update(dataplane.wait_until_writable(
        "mysql", timeout=60, expect_outage=True, configuration=conf)), daemon=True)
    waiter.start()
    try:
        time.sleep(0.3)
        _control(config, "/_lab/db-failover?id=shop-db")
        _control(config, "/_lab/wait-idle")
        waiter.join(60)
    finally:
        watch.stop()
    peak, gap = attempts.pacing(since=mark)
    figure("extension", "two probes, one endpoint: attempts in any 1 s", peak, "target <= 10")
    figure("extension", "two probes, one endpoint: min gap ms", round(gap, 1), "target >= 100 ms")
    figure("extension", "two probes: both saw the outage end",
           "yes" if watch.recovered and outcome.get("writable_again_at") else "no")


def bench_extension(config, args) -> None:
    from chaosext.elasticache import actions as ec_actions
    from chaosext.rds import actions as rds_actions
    env = manage.env(config.state_dir)
    conf = _experiment_configuration(env)
    _control(config, "/_lab/wait-idle")
    with aws_environment(env), AttemptLog() as attempts:
        _rto_rounds(config, conf, "RDS force_failover", rds_actions.force_failover, "shop-db",
                    args.rto_rounds)
        with ReferenceProbe(env) as reference:
            _rto_rounds(config, conf, "cache TestFailover", ec_actions.test_failover, "shop-cache",
                        args.rto_rounds, reference)
        peak, gap = attempts.pacing()
        figure("extension", "probe attempts to one endpoint in any 1 s", peak,
               "target <= 10 (one per 100 ms)")
        figure("extension", "probe min gap between attempts ms", round(gap, 1),
               "target >= 100 ms (timed at the write call, +-0.1 ms)")
        _two_probes_during_db_failover(config, conf, attempts)


# --- report: render time of a large run (issue 8) ----------------------------------------------

def bench_report(_config, args) -> None:
    from gameday.report.bench import bench
    result = bench(seconds=600, users=200, run_dir=str(args.work / "report-run"))
    figure("report", "write_report seconds (10 min, 200 users)", float(result["write_report_seconds"]),
           "target <= 5 s")
    figure("report", "report.html bytes", result["html_bytes"], "target < 2 MB")
    figure("report", "timeline lines / orders in the run", f"{result['timeline_lines']}/{result['orders']}")


def bench_crashes(config, args) -> None:
    from bench_crashes import bench_crashes as run
    run(config, args, figure)


# --- history: `gameday history` over 200 runs (issue 18) ------------------------------------------

def bench_convergence(config, args) -> None:
    from bench_convergence import bench_convergence as run
    run(config, args, figure)


def bench_history(_config, args) -> None:
    from gameday.report.history_bench import bench_history as run_history
    result = run_history(runs=200, reports=str(args.work / "history"))
    figure("history", "gameday history seconds (200 runs)", float(result["history_seconds"]),
           "target <= 3 s")
    figure("history", "gameday history CPU seconds (200 runs)", float(result["history_cpu_seconds"]))
    figure("history", "index.html bytes", result["page_bytes"], "target <= 3 MB")
    figure("history", "runs listed / unreadable", f"{result['runs']}/{result['unreadable']}")


# --- liveview: `gameday run --web` (docs/live-view.md) --------------------------------------------

def bench_liveview(config, args) -> None:
    from bench_liveview import bench_liveview as run
    run(config, args, figure)


# --- pulse: what the facilitator's pulse costs a game day (gameday/pulse.py) -------------------

def bench_pulse(_config, args) -> None:
    from gameday.pulse_bench import bench_pulse as run_pulse
    result = run_pulse(seconds=3600, users=200, run_dir=str(args.work / "pulse-run"))
    figure("pulse", "pulse line ms (1 h run, 200 users)", float(result["line_ms"]))
    figure("pulse", "first line ms (reads the whole order ledger)", float(result["first_line_ms"]))
    figure("pulse", "phase/fault check ms (every second)", float(result["poll_ms"]))
    figure("pulse", "CPU share of one core at the defaults (%)", float(result["cpu_percent"]),
           "target < 1 %")


# --- tls: the encrypted lab (docs/encrypted-lab.md) ---------------------------------------------

def bench_tls(_config, args) -> None:
    """The encrypted lab (`up --tls`, docs/encrypted-lab.md) starts within the plain lab's target:
    its own lab, after the shared one is down, on the same ports."""
    state_dir = args.work / "tls-lab"
    config = LabConfig.from_env(state_dir=state_dir, base_port=BASE_PORT, tls=True)
    t0 = time.monotonic()
    try:
        manage.up(config)
        figure("tls", "encrypted lab up seconds", time.monotonic() - t0, "target <= 8 s")
    finally:
        t0 = time.monotonic()
        manage.down(state_dir)
        figure("tls", "encrypted lab down seconds", time.monotonic() - t0, "target <= 5 s")


BENCHES = {"lab": bench_lab, "facade": bench_facade, "shop": bench_shop, "load": bench_load,
           "capacity": bench_capacity, "extension": bench_extension, "report": bench_report,
           "crashes": bench_crashes, "convergence": bench_convergence, "history": bench_history, "liveview": bench_liveview,
           "pulse": bench_pulse, "tls": bench_tls}
SECTIONS, LAB_SECTIONS = __import__("bench_network").register(SECTIONS, LAB_SECTIONS, BENCHES, figure)


def run_section(name: str, config, args) -> None:
    """One section; a failure is one line and does not stop the others."""
    if name != "lab":
        print(name)
    try:
        BENCHES[name](config, args)
    except ImportError as error:
        print(f"  ({name} not installed: {error}; skipped)")
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        print(f"  {name} failed: {type(error).__name__}: {message[:200]}")
        FIGURES.setdefault(name, {})["error"] = f"{type(error).__name__}: {message}"


def run_with_lab(sections, args) -> None:
    """Start one lab, run the sections that need it, and always stop it."""
    state_dir = args.work / "lab"
    print(f"lab (state dir {state_dir}, base port {BASE_PORT})")
    config = LabConfig.from_env(state_dir=state_dir, base_port=BASE_PORT)
    try:
        t0 = time.monotonic()
        try:
            manage.up(config)
        except Exception as error:
            print(f"  lab failed to start: {type(error).__name__}: {error}")
            FIGURES.setdefault("lab", {})["error"] = str(error)
            return
        figure("lab", "lab up seconds", time.monotonic() - t0, "target <= 8 s")
        for name in sections:
            run_section(name, config, args)
    finally:
        print("lab teardown")
        t0 = time.monotonic()
        manage.down(state_dir)
        figure("lab", "lab down seconds", time.monotonic() - t0, "target <= 5 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="lab failovers per kind (default 20)")
    parser.add_argument("--stress-failovers", type=int, default=30,
                        help="failovers per kind of the convergence section, on a busy machine (default 30)")
    parser.add_argument("--rto-rounds", type=int, default=5,
                        help="extension failovers per action compared with ground truth (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each shop and Locust run (default 10)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section")
    parser.add_argument("--capacity-users", type=int, default=64,
                        help="Locust users of the capacity runs (default 64; 0 skips them)")
    parser.add_argument("--capacity-rounds", type=int, default=2,
                        help="alternating rounds of each capacity run (default 2)")
    parser.add_argument("--capacity-ladder", type=int, nargs="+",
                        default=[60, 120, 240, 480, 960, 1920],
                        help="game-day user counts tried in turn until one does not pass")
    parser.add_argument("--liveview-rounds", type=int, default=2,
                        help="alternating rounds of the web UI vs headless load runs (default 2)")
    args = parser.parse_args()
    sections = [args.only] if args.only else list(SECTIONS)
    lab_sections = [s for s in sections if s in LAB_SECTIONS]
    if lab_sections:
        missing = servers.missing_packages()
        if missing:
            print("bench: missing Debian packages: " + " ".join(missing), file=sys.stderr)
            return 1
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
        args.work = Path(tmp)
        if lab_sections:
            run_with_lab(lab_sections, args)
        for name in sections:
            if name not in LAB_SECTIONS:
                run_section(name, None, args)
    print(f"total {time.monotonic() - began:.0f} s")
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    previous = {}
    if args.only and out.exists():  # one section refreshes its figures, keeps the others
        with contextlib.suppress(ValueError):
            previous = json.loads(out.read_text()).get("figures", {})
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "figures": {s: {**previous.get(s, {}), **FIGURES.get(s, {})}
                                           for s in {**previous, **FIGURES}}}, indent=2))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
