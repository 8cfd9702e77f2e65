"""`gameday lab up | down | status | env`, run from any process: talks to the controller.

The controller is started detached (its own session) and reports through `lab.json`;
everything it started is recorded by pid in `topology.json`, so `down` can clean up even
after a controller crash, by pid and never by process name.
"""
import importlib.util
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from groundfloor.supervisor import poll_until

from . import runlock, servers
from .config import DB_CLUSTER_ID, DB_INSTANCE_ID, REPLICATION_GROUP_ID, LabConfig, load_or_create_secrets, write_json_atomic
from .errors import LabNotRunning, LabStartError
from .network import control as network
from .network.layer import SENTINEL_AZS

# a recycled pid must not be killed: what each kind of process shows in its command line
PROCESS_MARKERS = {"shop": "gunicorn", "sentinel": "redis", "shop-db": "mariadbd",
                   "shop-cache": "redis"}


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def controller_state(state_dir: Path) -> Optional[dict]:
    """lab.json with `alive` added, or None when no lab was ever started here."""
    data = _read_json(Path(state_dir, "lab.json"))
    if data is None:
        return None
    pid = data.get("controller_pid")
    data["alive"] = servers.pid_alive(pid) and "woolab.controller" in servers.pid_cmdline(pid)
    return data


def is_up(state_dir: Path) -> bool:
    state = controller_state(state_dir)
    return bool(state and state["alive"] and state["status"] == "ready")


def up(config: LabConfig, timeout: float = 60.0) -> str:
    """Start the lab; returns a one-line message. Idempotent when the lab is already up."""
    state_dir = config.state_dir
    state = controller_state(state_dir)
    if state and state["alive"]:
        if state["status"] == "ready":
            if config.tls and not LabConfig.load(state_dir).tls:
                raise LabStartError(f"the lab is already up without TLS (state dir {state_dir}); "
                                    "stop it with `gameday lab down` and start it with --tls")
            return f"lab already up (state dir {state_dir}{', TLS' if LabConfig.load(state_dir).tls else ''})"
        _wait_ready(state_dir, timeout)
        return f"lab up (state dir {state_dir})"
    missing = servers.missing_packages()
    if missing:
        raise LabStartError("missing Debian packages: " + " ".join(missing)
                            + " (run `sudo make bootstrap`, or apt-get install them)")
    if config.with_shop and importlib.util.find_spec("gunicorn") is None:
        raise LabStartError("the lab's shop needs gunicorn: pip install 'failover-gameday[lab]'")
    if state is not None:
        _kill_leftovers(state_dir)
    from .timing import profile_for
    profile_for(config)  # a bad --timing fails here, before anything starts
    _fresh_state_dir(state_dir)
    servers.check_ports_free(config.all_ports())
    config.save()
    load_or_create_secrets(state_dir)
    log = open(state_dir / "controller.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "woolab.controller", "--state-dir", str(state_dir)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent))
    log.close()
    try:
        _wait_ready(state_dir, timeout, proc)
    except KeyboardInterrupt:  # Ctrl-C or a signal during start-up: no half-started lab stays
        _stop_when_recorded(state_dir, timeout, proc)
        raise
    return f"lab up (state dir {state_dir})"


def _stop_when_recorded(state_dir: Path, timeout: float, proc: subprocess.Popen) -> None:
    """Stop a lab whose start was interrupted. A controller stopped mid-start can leave servers
    it has not recorded yet (seen in tests: five of them), so let it finish first (a second
    signal cuts the wait short), then stop everything by pid."""
    try:
        _wait_ready(state_dir, timeout, proc)
    except (KeyboardInterrupt, LabStartError):
        pass
    finally:
        down(state_dir)


def _fresh_state_dir(state_dir: Path) -> None:
    """Every `up` starts a fresh topology; secrets survive so exported env stays valid."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("db", "run"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    for name in ("events.jsonl", "topology.json", "lab.json"):
        (state_dir / name).unlink(missing_ok=True)


def _wait_ready(state_dir: Path, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    def ready() -> bool:
        state = _read_json(state_dir / "lab.json") or {}
        if state.get("status") == "failed":
            _kill_leftovers(state_dir)
            raise LabStartError(f"lab failed to start: {state.get('error')}")
        if state.get("status") != "ready" and proc is not None and proc.poll() is not None:
            _kill_leftovers(state_dir)
            raise LabStartError(f"lab controller exited (code {proc.returncode}); see {state_dir / 'controller.log'}")
        return state.get("status") == "ready"
    if not poll_until(ready, timeout):
        down(state_dir)
        raise LabStartError(f"lab did not become ready within {timeout:.0f} s; see {state_dir / 'controller.log'}")


def recorded_pids(state_dir: Path) -> dict:
    """Every process the lab recorded (name -> pid), newest record winning; for cleanup after a crash."""
    pids = {}
    for source in ("lab.json", "topology.json"):  # topology.json is newer: restarted nodes' pids win
        data = _read_json(Path(state_dir, source)) or {}
        for name, value in (data.get("processes") or {}).items():
            pids[name] = value["pid"] if isinstance(value, dict) else value
    return pids


def _marker(process_name: str) -> str:
    """The longest matching prefix decides (`shop-db-a` is MariaDB, `shop` is gunicorn)."""
    prefixes = sorted((p for p in PROCESS_MARKERS if process_name.startswith(p)), key=len, reverse=True)
    return PROCESS_MARKERS[prefixes[0]] if prefixes else "\0never"


def _live_leftovers(state_dir: Path) -> dict:
    """Recorded servers that still run (name -> pid), checked against recycled pids."""
    return {name: pid for name, pid in recorded_pids(state_dir).items()
            if servers.pid_alive(pid) and _marker(name) in servers.pid_cmdline(pid)}


def _kill_leftovers(state_dir: Path) -> list:
    stopped = []
    for name, pid in _live_leftovers(state_dir).items():
        servers.stop_pid(pid, expect_in_cmdline=_marker(name), timeout=3.0)
        stopped.append(name)
    return stopped


def _wait_ports_released(state_dir: Path, bound: float = 10.0) -> None:
    """`down` returns once the lab's listeners are closed, so an `up` straight after it (the next
    test's lab, a script's restart) never finds its ports still taken by a process on its way out."""
    try:
        listeners = LabConfig.load(state_dir).all_ports()
    except (OSError, ValueError, TypeError):
        return  # no readable config: nothing known to wait for
    poll_until(lambda: not servers.busy_ports(listeners), bound, 0.05)


def down(state_dir: Path, timeout: float = 10.0) -> str:
    state = controller_state(state_dir)
    if state is None:
        return "lab is not up (nothing to stop)"
    if state["alive"]:
        servers.stop_pid(state["controller_pid"], expect_in_cmdline="woolab.controller", timeout=timeout)
    leftovers = _kill_leftovers(state_dir)
    if state["alive"] or leftovers:
        _wait_ports_released(state_dir)
    data = _read_json(Path(state_dir, "lab.json")) or {}
    data.update(status="stopped", updated_at=time.time())
    write_json_atomic(Path(state_dir, "lab.json"), data)
    if not state["alive"] and not leftovers:
        return "lab is not up (nothing to stop)"
    return "lab stopped" + (f" (cleaned up after a crash: {', '.join(leftovers)})" if leftovers else "")


def controller_url(config: LabConfig) -> str:
    return f"http://127.0.0.1:{config.facade_port}"


def call(config: LabConfig, path: str, method: str = "GET", timeout: float = 60.0) -> dict:
    """A lab control route (`/_lab/...`); raises LabNotRunning when the controller is gone."""
    request = urllib.request.Request(controller_url(config) + path, method=method,
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise LabStartError(f"lab refused {path.split('?')[0]}: {detail}") from None
    except OSError as exc:
        raise LabNotRunning(f"lab controller not reachable at {controller_url(config)} ({exc})") from None


def require_up(state_dir: Path) -> LabConfig:
    if not is_up(state_dir):
        raise LabNotRunning(f"the lab is not up (state dir {state_dir}); start it with `gameday lab up`")
    return LabConfig.load(state_dir)


def shop_settings(state_dir: Path, settings: dict) -> dict:
    """Apply stand-in shop settings (empty: back to defaults); returns what is now in force."""
    from urllib.parse import urlencode
    config = require_up(state_dir)
    return call(config, "/_lab/shop-settings?" + urlencode(settings), method="POST")


def replica_lag(state_dir: Path) -> dict:
    """The DB cluster's readers' lag now (woolab/db/lag.py)."""
    return call(require_up(state_dir), "/_lab/replica-lag", timeout=10.0)


def set_replica_delay(state_dir: Path, member: str, seconds: str) -> dict:
    """Make reader `member` apply commits `seconds` late (0: on time again)."""
    from urllib.parse import urlencode
    query = urlencode({"id": member, "seconds": seconds})
    return call(require_up(state_dir), f"/_lab/replica-lag?{query}", method="POST", timeout=30.0)


def converged(state_dir: Path, timeout: float = 0.0) -> dict:
    """Wait up to `timeout` s for full redundancy: {"converged", "problems", "events"}."""
    config = require_up(state_dir)
    return call(config, f"/_lab/converged?timeout={timeout}", timeout=timeout + 30)


def repair(state_dir: Path, timeout: float = 120.0) -> dict:
    """The last resort when the lab has not healed by itself (it should never be needed)."""
    config = require_up(state_dir)
    return call(config, f"/_lab/repair?timeout={timeout}", method="POST", timeout=timeout + 30)


def recover_command(state_dir: Path) -> str:
    """The command that cleans up after a dead controller and starts a fresh lab."""
    where = "" if Path(state_dir).resolve() == default_state_dir() else f" --state-dir {state_dir}"
    return f"gameday lab up{where}"


def dead_controller(state_dir: Path) -> Optional[dict]:
    """A lab whose controller died while its servers run on (orphans), or None.

    Nobody answers the AWS API or fails anything over any more, yet the servers hold their
    ports; `gameday lab up` (or `down`) stops them by their recorded pids.
    """
    state = controller_state(state_dir)
    if state is None or state["alive"] or state.get("status") == "stopped":
        return None
    orphans = _live_leftovers(state_dir)
    if not orphans:
        return None
    return {"state_dir": str(state_dir), "controller": "dead", "controller_pid": state.get("controller_pid"),
            "orphans": [{"name": name, "pid": pid} for name, pid in sorted(orphans.items())],
            "recover": recover_command(state_dir)}


def status(state_dir: Path) -> dict:
    """Every node with role, AZ, port, pid and health, plus the endpoints (or, for a dead
    controller, its orphaned servers and the command that recovers)."""
    dead = dead_controller(state_dir)
    if dead:
        return dead
    config = require_up(state_dir)
    snap = call(config, "/_lab/status")
    nodes = []
    for db in list(snap["db_instances"].values()) + list(snap.get("db_clusters", {}).values()):
        for name, node in db["nodes"].items():
            nodes.append({"name": name, "kind": "mariadb", "resource": db["id"], "role": node["role"],
                          "az": node["az"], "address": node["ip"], "port": node["port"], "pid": node["pid"],
                          "status": node["status"], "healthy": node["status"] == "available"
                          and servers.pid_alive(node["pid"]) and servers.port_in_use(node["port"], node["ip"])})
    for node in snap["cache_clusters"].values():
        nodes.append({"name": node["id"], "kind": "redis", "resource": node["replication_group_id"],
                      "role": node["role"], "az": node["az"], "address": node["ip"], "port": node["port"],
                      "pid": node["pid"], "status": node["status"], "healthy": node["status"] == "available"
                      and servers.pid_alive(node["pid"]) and servers.port_in_use(node["port"], node["ip"])})
    pids = recorded_pids(state_dir)
    for i in range(3):
        name = f"sentinel-{i + 1}"
        nodes.append({"name": name, "kind": "sentinel", "resource": REPLICATION_GROUP_ID, "role": "sentinel",
                      "az": SENTINEL_AZS[i], "address": "127.0.0.1", "port": config.sentinel_port(i), "pid": pids.get(name),
                      "healthy": servers.pid_alive(pids.get(name))})
    for name, port in (("shop", config.shop_port),):
        if name in pids:
            nodes.append({"name": name, "kind": name, "resource": "-", "role": "-", "az": "-",
                          "address": "127.0.0.1", "port": port,
                          "pid": pids[name], "healthy": servers.pid_alive(pids[name]) and servers.port_in_use(port)})
    db = snap["db_instances"].get(DB_INSTANCE_ID) or snap["db_clusters"][DB_CLUSTER_ID]
    group = snap["replication_groups"][REPLICATION_GROUP_ID]
    endpoints = {
        "aws_api": controller_url(config),
        "dns server (the endpoints' names)": f"127.0.0.1:{config.dns_port}/udp",
        **_db_endpoints(db),
        f"{REPLICATION_GROUP_ID} primary endpoint":
            f"{group['primary_endpoint']['address']}:{group['primary_endpoint']['port']}",
        f"{REPLICATION_GROUP_ID} reader endpoint":
            f"{group['reader_endpoint']['address']}:{group['reader_endpoint']['port']}",
    }
    if "shop" in pids:
        endpoints["shop"] = f"http://127.0.0.1:{config.shop_port}"
    impaired = network.by_az(network.in_force(config))
    for node in nodes:
        node["impaired"] = impaired.get(node["az"], "")
    names = [db["endpoint"]["address"], group["primary_endpoint"]["address"], group["reader_endpoint"]["address"]]
    return {"state_dir": str(state_dir), "controller": "running", "timing": config.timing, "tls": config.tls,
            "db_id": db["id"], "db_status": db["status"], "cache_status": group["status"], "nodes": nodes,
            "endpoints": endpoints, "addresses": network.endpoint_addresses(config, names),
            "in_use_by": runlock.lock_holder(state_dir),
            "redundancy": call(config, "/_lab/converged?timeout=0")["problems"]}


def _db_endpoints(db: dict) -> dict:
    """The DB's endpoints for `lab status`: the instance endpoint, or a cluster's endpoints."""
    if "reader_endpoint" not in db:
        return {f"{db['id']} (instance endpoint)": f"{db['endpoint']['address']}:{db['endpoint']['port']}"}
    port = db["endpoint"]["port"]
    return {f"{db['id']} (cluster endpoint)": f"{db['endpoint']['address']}:{port}",
            f"{db['id']} (reader endpoint)": f"{db['reader_endpoint']['address']}:{port}",
            **{f"{member} (instance endpoint)": f"{name}:{port}" for member, name in db["member_endpoints"].items()}}


def env(state_dir: Path) -> dict:
    """What a user, a test or an experiment needs to reach the lab, as environment variables."""
    config = require_up(state_dir)
    s = load_or_create_secrets(state_dir)
    values = {
        "GAMEDAY_TARGET": "lab", "GAMEDAY_LAB_STATE_DIR": str(state_dir),
        "AWS_ENDPOINT_URL": controller_url(config), "GAMEDAY_LAB_CONTROL_URL": controller_url(config),
        "AWS_DEFAULT_REGION": config.region,
        "AWS_REGION": config.region, "AWS_ACCESS_KEY_ID": "lab", "AWS_SECRET_ACCESS_KEY": "lab",
        # a cluster lab has no DB instance outside its cluster: experiments then skip what needs one
        "GAMEDAY_DB_INSTANCE_ID": "" if config.db_topology == "cluster" else DB_INSTANCE_ID,
        "GAMEDAY_REPLICATION_GROUP_ID": REPLICATION_GROUP_ID,
        "GAMEDAY_DNS_SERVER": f"127.0.0.1:{config.dns_port}",
        "GAMEDAY_MYSQL_HOST": config.db_writer_name, "GAMEDAY_MYSQL_PORT": str(config.db_endpoint_port),
        "GAMEDAY_MYSQL_USER": "shop", "GAMEDAY_MYSQL_PASSWORD": s["db_app_password"],
        "GAMEDAY_MYSQL_DATABASE": "shop",
        "GAMEDAY_REDIS_HOST": config.cache_primary_name, "GAMEDAY_REDIS_PORT": str(config.cache_primary_port),
        "GAMEDAY_REDIS_READER_HOST": config.cache_reader_name,
        "GAMEDAY_REDIS_READER_PORT": str(config.cache_reader_port), "GAMEDAY_REDIS_PASSWORD": s["redis_password"],
        "GAMEDAY_WEBHOOK_URL": f"http://127.0.0.1:{config.webhook_port}/hook",
        "GAMEDAY_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{config.webhook_port}/slack",
    }
    values.update(tls_env(config))
    if config.db_topology == "cluster":
        values.update({"GAMEDAY_DB_CLUSTER_ID": DB_CLUSTER_ID, "GAMEDAY_DB_TOPOLOGY": "cluster",
                       "GAMEDAY_MYSQL_READER_HOST": config.db_reader_endpoint_name})
    if config.with_shop:
        values.update({"GAMEDAY_SHOP_URL": f"http://127.0.0.1:{config.shop_port}",
                       "GAMEDAY_SHOP_CONSUMER_KEY": s["shop_consumer_key"],
                       "GAMEDAY_SHOP_CONSUMER_SECRET": s["shop_consumer_secret"],
                       # the lab's key is read/write; cleanup asks for write keys by these names
                       "GAMEDAY_SHOP_WRITE_CONSUMER_KEY": s["shop_consumer_key"],
                       "GAMEDAY_SHOP_WRITE_CONSUMER_SECRET": s["shop_consumer_secret"]})
    return values


def tls_env(config: LabConfig) -> dict:
    """The data-plane settings an encrypted lab needs (chaosext.settings): TLS on, verified
    against the lab's CA, Redis as the ACL user. A plain lab adds none (an exported "TLS off"
    would outlive the lab in a shell and turn TLS off against AWS)."""
    from .tls import REDIS_USERNAME, lab_tls
    tls = lab_tls(config)
    if tls is None:
        return {}
    return {"GAMEDAY_MYSQL_TLS": "true", "GAMEDAY_MYSQL_CA": str(tls.ca), "GAMEDAY_MYSQL_TLS_VERIFY": "true",
            "GAMEDAY_REDIS_TLS": "true", "GAMEDAY_REDIS_CA": str(tls.ca), "GAMEDAY_REDIS_TLS_VERIFY": "true",
            "GAMEDAY_REDIS_USERNAME": REDIS_USERNAME}


def default_state_dir() -> Path:
    return LabConfig.from_env().state_dir
