"""The dry run, the refusals and cleanup against the real lab: nothing is written by a dry run,
every bad setting is named with its fix, a run's marked orders are cancelled and no others."""
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pymysql
import pytest
import redis

from chaosext.shop.client import StoreSession
from gameday import cli, run, safety
from gameday.cleanup import cleanup

pytestmark = pytest.mark.lab
SYSTEM_SCHEMAS = ("information_schema", "performance_schema", "mysql", "sys")
# WooCommerce's own bookkeeping of an authenticated REST read: the OAuth nonce it remembers (and,
# on a real store, the key's last access) - written by any store on every signed request
AUTH_BOOKKEEPING = {"shop.woocommerce_api_keys"}


def admin(lab):
    return pymysql.connect(host=lab.resolve(lab.env["GAMEDAY_MYSQL_HOST"]), port=lab.config.db_endpoint_port, user="admin",
                           password=lab.secrets["db_admin_password"], ssl_disabled=True, autocommit=True)


def cache(lab):
    return redis.Redis(host=lab.resolve(lab.env["GAMEDAY_REDIS_HOST"]), port=lab.config.cache_primary_port,
                       password=lab.secrets["redis_password"])


def state(lab) -> dict:
    """Every DB table (row count + checksum) of every schema but the API keys' own bookkeeping,
    and every Redis key with its value."""
    tables = {}
    with admin(lab) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN "
                    "(%s, %s, %s, %s) AND table_type = 'BASE TABLE'", SYSTEM_SCHEMAS)
        for schema, table in cur.fetchall():
            if f"{schema}.{table}" in AUTH_BOOKKEEPING:
                continue
            cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`{table}`")
            count = cur.fetchone()[0]
            cur.execute(f"CHECKSUM TABLE `{schema}`.`{table}`")
            tables[f"{schema}.{table}"] = (count, cur.fetchone()[1])
    client = cache(lab)
    keys = {key: client.dump(key) for key in client.scan_iter(count=1000)}
    return {"tables": tables, "keys": keys}


def dry_run(experiment="rds-force-failover", *extra):
    return cli.main(["run", experiment, "--dry-run", *extra])


@pytest.fixture
def reports(lab_env, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("GAMEDAY_LAB_STATE_DIR", str(lab_env["GAMEDAY_LAB_STATE_DIR"]))
    return tmp_path / "reports"


# (replaces the chaos-run dry run of tests/test_experiments.py: a dry run no longer runs chaos)
@pytest.mark.parametrize("experiment", ["rds-force-failover", "gameday"])
def test_dry_run_on_the_lab_changes_nothing_and_is_fast(lab, reports, capsys, experiment):
    client = cache(lab)
    # Test set-up, not the dry run: keys that expire on their own (the probe key, the shop's
    # product cache, which any visitor's GET refills) would change between the snapshots anyway.
    for key in [*client.scan_iter("wc:*"), *client.scan_iter("gameday:*")]:
        client.delete(key)
    assert dry_run(experiment) == 0  # a visitor's first GET fills the shop's read-through cache
    capsys.readouterr()
    before = state(lab)
    started = time.monotonic()
    code = dry_run(experiment)
    seconds = time.monotonic() - started
    after = state(lab)
    table = capsys.readouterr().out
    assert code == 0, table
    assert after["tables"] == before["tables"]  # orders, order lines, stock, gameday_probe: untouched
    assert after["keys"] == before["keys"]  # carts, sessions, probe key: untouched
    assert seconds <= 15, seconds
    assert not reports.exists() or list(reports.iterdir()) == []  # no run directory either
    assert "preflight: READY" in table and "plan         method 1" in table


@pytest.fixture
def tls_listener(tmp_path):
    """A loopback TLS server with a self-signed certificate, and a CA file that did not sign it."""
    paths = {}
    for name in ("server", "other"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-keyout", str(tmp_path / f"{name}.key"), "-out",
                        str(tmp_path / f"{name}.pem")], check=True, capture_output=True)
        paths[name] = tmp_path / f"{name}.pem"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server"], tmp_path / "server.key")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], paths["other"]
    stop.set()
    thread.join()
    sock.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD = {
    "unreachable DB": ({"GAMEDAY_MYSQL_PORT": "closed"}, "DB endpoint", "GAMEDAY_MYSQL_HOST/_PORT"),
    "TLS against a non-TLS cache": ({"GAMEDAY_REDIS_TLS": "true"}, "cache endpoint", "unset GAMEDAY_REDIS_TLS"),
    "TLS against a non-TLS DB": ({"GAMEDAY_MYSQL_TLS": "true"}, "DB endpoint", "unset GAMEDAY_MYSQL_TLS"),
    "wrong CA": ({"GAMEDAY_REDIS_TLS": "true", "GAMEDAY_REDIS_HOST": "127.0.0.1", "GAMEDAY_REDIS_PORT": "tls",
                  "GAMEDAY_REDIS_CA": "other"},
                 "cache endpoint", "set GAMEDAY_REDIS_CA"),
    "unreachable shop": ({"GAMEDAY_SHOP_URL": "closed-url"}, "shop", "check GAMEDAY_SHOP_URL"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_setting_is_one_fail_row_naming_the_fix_and_nothing_is_touched(
        lab, reports, lab_env, capsys, tls_listener, case):
    settings, item, fix = BAD[case]
    tls_port, other_ca = tls_listener
    values = {"closed": str(closed_port()), "tls": str(tls_port), "other": str(other_ca),
              "closed-url": f"http://127.0.0.1:{closed_port()}"}
    # the lab's own variables win in `gameday run --target lab`, so the bad value goes in here
    env = {**os.environ, **lab_env, **{k: values.get(v, v) for k, v in settings.items()}}
    spec = run.load_and_validate(run.resolve("rds-force-failover"))
    before = state(lab)["tables"]
    code = safety.dry_run(spec, "lab", env, "bad-setting")
    table = capsys.readouterr().out
    failed = [line for line in table.splitlines() if " FAIL " in line]
    assert code == 2 and "preflight: NOT READY" in table
    assert len(failed) == 1 and item in failed[0], table
    fix_line = table.splitlines()[table.splitlines().index(failed[0]) + 1]
    assert fix_line.strip().startswith("fix:") and fix in fix_line, fix_line
    assert state(lab)["tables"] == before


def access_log_lines(lab) -> int:
    path = Path(lab.state_dir) / "run" / "shop-access.jsonl"
    assert path.exists(), "the shop's access log moved: this test must find it"
    return len(path.read_text().splitlines())


def test_aws_target_in_a_lab_shell_is_refused_before_any_request(lab, reports, capsys):
    requests, events = access_log_lines(lab), len(lab.events())
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--region", "us-east-1"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and "--target aws refused" in err
    assert f"GAMEDAY_MYSQL_HOST={lab.config.db_endpoint_name} (the lab's own endpoint name)" in err
    assert "GAMEDAY_SHOP_URL=http://127.0.0.1:" in err and "clear them with: unset GAMEDAY_TARGET" in err
    assert access_log_lines(lab) == requests and len(lab.events()) == events


def place_orders(monkeypatch, run_id: str, count: int) -> list:
    monkeypatch.setenv("GAMEDAY_RUN_ID", run_id)
    ids = []
    for _ in range(count):
        session = StoreSession.for_configuration({})
        ok, why, _ = session.fill_cart(1)
        assert ok, why
        reply = session.checkout()
        assert reply.status == 200, reply.body
        ids.append(reply.body["order_id"])
    return ids


def orders_and_stock(lab, ids):
    with admin(lab) as conn, conn.cursor() as cur:
        marks = ",".join(["%s"] * len(ids))
        cur.execute(f"SELECT id, status FROM shop.orders WHERE id IN ({marks})", ids)
        statuses = dict(cur.fetchall())
        cur.execute(f"SELECT p.id, p.stock FROM shop.products p JOIN shop.order_items i ON i.product_id = p.id "
                    f"WHERE i.order_id IN ({marks})", ids)
        return statuses, dict(cur.fetchall())


def test_cleanup_cancels_the_runs_marked_orders_only(lab, reports, monkeypatch, tmp_path, capsys, lab_env):
    mine = place_orders(monkeypatch, "run-a", 2)
    other = place_orders(monkeypatch, "run-a-2", 1)  # another run whose id starts the same
    _, stock_ordered = orders_and_stock(lab, mine)
    run_dir = tmp_path / "run-a"
    run_dir.mkdir()
    (run_dir / "target.json").write_text(json.dumps(safety.target_info("lab", dict(lab_env))))
    (run_dir / "orders.jsonl").write_text(json.dumps({"order_id": mine[0], "t": time.time()}) + "\n")
    monkeypatch.delenv("GAMEDAY_SHOP_WRITE_CONSUMER_KEY")
    assert cli.main(["cleanup", str(run_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert "GAMEDAY_SHOP_WRITE_CONSUMER_KEY" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("GAMEDAY_SHOP_WRITE_CONSUMER_KEY", lab_env["GAMEDAY_SHOP_WRITE_CONSUMER_KEY"])
    assert cleanup(str(run_dir)) == 0
    statuses, stock_after = orders_and_stock(lab, mine + other)
    assert [statuses[i] for i in mine] == ["cancelled", "cancelled"]  # found by ledger and by mark
    assert statuses[other[0]] == "processing"
    _, stock_mine = orders_and_stock(lab, mine)
    assert all(stock_mine[p] == stock_ordered[p] + 1 for p in stock_ordered
               if p not in orders_and_stock(lab, other)[1])  # cancelling gave the stock back
    assert "2 of 2 orders of run run-a cancelled" in capsys.readouterr().out
    assert cleanup(str(run_dir), trash=True) == 0
    statuses, _ = orders_and_stock(lab, mine + other)
    assert [statuses[i] for i in mine] == ["trash", "trash"] and statuses[other[0]] == "processing"


def test_failback_moves_the_writer_back_to_its_original_az(lab, reports, lab_env, tmp_path, capsys):
    spec = run.load_and_validate(run.resolve("rds-force-failover"))
    facts = safety.placement(spec, {**os.environ, **lab_env}, "failback-run")  # what target.json records
    original = facts["original"]["shop-db"]["az"]
    lab.failover_db()
    moved = safety.placement(spec, {**os.environ, **lab_env}, "moved")["original"]["shop-db"]["az"]
    assert moved != original
    run_dir = tmp_path / "failback-run"
    run_dir.mkdir()
    (run_dir / "target.json").write_text(json.dumps(safety.target_info("lab", dict(lab_env), facts)))
    assert cli.main(["cleanup", str(run_dir), "--failback"]) == 0
    out = capsys.readouterr().out
    assert f"failed back from {moved} to {original}" in out
    lab.wait_idle()
    again = safety.placement(spec, {**os.environ, **lab_env}, "after")
    assert again["original"]["shop-db"]["az"] == original
