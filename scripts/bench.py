"""Benchmark figures for the targets in the issues. Prints a table and writes reports/bench.json.

Run with `make bench`. Sections for parts that are not installed are skipped. Each section
starts what it needs on its own ports (base 27300) and stops it again.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from woolab import manage, servers  # noqa: E402
from woolab.config import LabConfig  # noqa: E402
from woolab.measure import EndpointWriter  # noqa: E402

BASE_PORT = 27300
FIGURES = {}


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


def bench_lab(state_dir: Path, rounds: int) -> None:
    print(f"lab (state dir {state_dir}, base port {BASE_PORT})")
    config = LabConfig.from_env(state_dir=state_dir, base_port=BASE_PORT)
    t0 = time.monotonic()
    manage.up(config)
    figure("lab", "lab up seconds", time.monotonic() - t0, "target <= 8 s")
    try:
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
        figure("lab", f"DB failovers under continuous commits", rounds)
        figure("lab", "DB write outage max seconds", max(outages, default=0.0), "target <= 3 s")
        figure("lab", "DB write outage median seconds", statistics.median(outages) if outages else 0.0)
        figure("lab", "DB acknowledged commits", len(writer.acked))
        figure("lab", "DB acknowledged commits lost", len(writer.lost()), "target 0")
        figure("lab", "DB replication healthy after failover", f"{healthy}/{rounds}", f"target {rounds}/{rounds}")

        for wait in (1, 0):
            writer = EndpointWriter(env, "cache", wait_replicas=wait)
            writer.start()
            n = rounds if wait else max(3, rounds // 4)
            for _ in range(n):
                time.sleep(0.2)
                _control(config, "/_lab/cache-failover?id=shop-cache")
                _control(config, "/_lab/wait-idle")
            time.sleep(0.2)
            writer.finish()
            label = "with WAIT 1" if wait else "without WAIT"
            outages = writer.outages()
            figure("lab", f"cache failovers ({label})", n)
            figure("lab", f"cache write outage max seconds ({label})", max(outages, default=0.0), "target <= 3 s")
            figure("lab", f"cache write outage median seconds ({label})",
                   statistics.median(outages) if outages else 0.0)
            figure("lab", f"cache acknowledged writes ({label})", len(writer.acked))
            figure("lab", f"cache acknowledged writes lost ({label})", len(writer.lost()),
                   "target 0" if wait else "(async replication: loss possible)")
        bench_facade(config)
    finally:
        t0 = time.monotonic()
        manage.down(state_dir)
        figure("lab", "lab down seconds", time.monotonic() - t0, "target <= 5 s")


def bench_facade(config) -> None:
    try:
        from woolab.facade.bench import describe_latency
    except ImportError:
        print("  (facade benchmark not installed: skipped)")
        return
    result = describe_latency(manage.controller_url(config))
    figure("facade", "DescribeDBInstances median ms", result["median_ms"])
    figure("facade", "DescribeDBInstances p95 ms", result["p95_ms"], "target < 50 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="failovers per kind (default 20)")
    parser.add_argument("--only", choices=["lab"], help="run one section")
    args = parser.parse_args()
    missing = servers.missing_packages()
    if missing:
        print("bench: missing Debian packages: " + " ".join(missing), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
        bench_lab(Path(tmp) / "lab", args.rounds)
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "figures": FIGURES}, indent=2))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
