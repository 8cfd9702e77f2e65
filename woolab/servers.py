"""Start, talk to and stop the real servers of the lab (MariaDB, Redis, Sentinel).

Every process is started in its own session with its data, log and socket under the state dir,
bound to 127.0.0.1, and is later stopped by pid (never by name).
"""
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import List, Optional

import psutil
import pymysql

from groundfloor.supervisor import child_pids, pid_alive, pid_cmdline, poll_until, spawn, stop_pid  # noqa: F401  (re-exported for the lab)

from .errors import LabStartError
from .network.addresses import sentinel_source, server_address
from .tls import REDIS_USERNAME, LabTls

DEBIAN_PACKAGES = {
    "mariadbd": "mariadb-server", "mariadb-install-db": "mariadb-server",
    "mariadb-dump": "mariadb-client", "mariadb": "mariadb-client-core",
    "redis-server": "redis-server", "redis-sentinel": "redis-sentinel",
}
SEARCH_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin"


def binary(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if not path:
        raise LabStartError(f"{name} not found: install the Debian package {DEBIAN_PACKAGES[name]}")
    return path


def missing_packages() -> List[str]:
    """Debian packages the lab needs that are not installed."""
    return sorted({pkg for name, pkg in DEBIAN_PACKAGES.items() if not shutil.which(name, path=SEARCH_PATH)})


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_ports_free(listeners: List) -> None:
    """Each listener is a port on 127.0.0.1 or a (loopback address, port) pair."""
    pairs = [x if isinstance(x, tuple) else ("127.0.0.1", x) for x in listeners]
    outside = sorted({port for _, port in pairs if not 1 <= int(port) <= 65535})
    if outside:
        raise LabStartError(f"port(s) {', '.join(map(str, outside))} outside 1-65535: the lab uses "
                            "ports from --base-port to 93 above it; choose a lower --base-port")
    busy = busy_ports(pairs)
    if busy:
        holders = listening_processes(busy)
        raise LabStartError(f"port(s) in use: {', '.join(busy)} "
                            f"({holders or 'another lab or service?'}; choose another --base-port)")


def listening_processes(addresses: List[str]) -> str:
    """Who listens on `host:port` addresses, as far as this user may see ("pid 12: cmd"), so a port
    in use names its holder (a lab left running, a process still exiting); "" when unknown."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return ""
    pids = {c.pid for c in connections if c.pid and c.status == psutil.CONN_LISTEN and c.laddr
            and f"{c.laddr.ip}:{c.laddr.port}" in addresses}
    return ", ".join(f"pid {pid}: {pid_cmdline(pid)[:120]}" for pid in sorted(pids))


def busy_ports(listeners: List) -> List[str]:
    """`host:port` of each listener (a port on 127.0.0.1 or a (host, port) pair) something holds."""
    pairs = [x if isinstance(x, tuple) else ("127.0.0.1", x) for x in listeners]
    return [f"{host}:{port}" for host, port in pairs if port_in_use(port, host)]


def check_udp_port_free(port: int, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise LabStartError(f"port(s) in use: {host}:{port}/udp (the lab's DNS server; another lab? "
                                "choose another --base-port)") from None


def wait_for_port(port: int, timeout: float, proc: Optional[subprocess.Popen] = None, what: str = "",
                  host: str = "127.0.0.1") -> None:
    """Wait until something listens on host:port; a child that exits meanwhile fails at once."""
    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise LabStartError(f"{what or 'server'} exited with code {proc.returncode} during start")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False
    if not poll_until(listening, timeout, interval=0.02):
        raise LabStartError(f"{what or 'server'} did not listen on {host}:{port} within {timeout:.0f} s")


# --- MariaDB -------------------------------------------------------------------------------

def mariadb_install(datadir: Path, log_path: Path) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    tmpdir = datadir.parent / "tmp"  # a private tmpdir: concurrent installs in /tmp can collide
    tmpdir.mkdir(exist_ok=True)
    argv = [binary("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}", f"--tmpdir={tmpdir}",
            "--auth-root-authentication-method=normal", "--skip-test-db"]
    if os.geteuid() == 0:
        argv.append("--user=root")
    with open(log_path, "ab") as log:
        rc = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        raise LabStartError(f"mariadb-install-db failed (exit {rc}); see {log_path}")


def mariadb_start(datadir: Path, port: int, server_id: int, run_dir: Path, read_only: bool,
                  address: str = "127.0.0.1", tls: Optional[LabTls] = None) -> subprocess.Popen:
    """mariadbd for one DB node, listening on the private twin of the node's address (its "host"),
    behind the lab's relay on the address itself; with `tls`, TCP clients must use TLS (the
    admin's unix socket counts as secure)."""
    name = datadir.name
    argv = [binary("mariadbd"), "--no-defaults", f"--datadir={datadir}", f"--port={port}",
            f"--bind-address={server_address(address)}", f"--socket={run_dir / (name + '.sock')}", f"--tmpdir={run_dir}",
            f"--pid-file={run_dir / (name + '.pid')}", f"--log-error={run_dir / (name + '.err')}",
            f"--server-id={server_id}", "--log-bin=binlog", "--log-slave-updates", "--binlog-format=ROW",
            "--gtid-strict-mode=1", "--skip-name-resolve", "--skip-slave-start",
            "--rpl-semi-sync-master-enabled=1", "--rpl-semi-sync-slave-enabled=1",
            "--rpl-semi-sync-master-timeout=2000", "--rpl-semi-sync-master-wait-no-slave=0",
            "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
            "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--max-connections=600",
            "--slave-net-timeout=5", "--performance-schema=0", f"--read-only={1 if read_only else 0}"]
    if read_only:  # a former primary rejoining as standby drops its unacknowledged binlog tail on recovery
        argv.append("--init-rpl-role=SLAVE")
    if tls:
        argv += [f"--ssl-ca={tls.ca}", f"--ssl-cert={tls.cert('db')}", f"--ssl-key={tls.key('db')}",
                 "--require-secure-transport=ON"]
    if os.geteuid() == 0:
        argv.append("--user=root")
    return spawn(argv, run_dir / (name + ".out"))


# the accounts and every grant: users (global_priv), database grants (db: the shop user's
# `GRANT ALL ON shop.*`), table, column and routine grants, proxies and roles
PRIVILEGE_TABLES = ("global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv",
                    "roles_mapping")


def mariadb_dump(run_dir: Path, name: str, databases, timeout: float = 120.0) -> bytes:
    """A copy of node `name`: its accounts and grants (`PRIVILEGE_TABLES`; `global_priv` is the
    table behind MariaDB's user view), then `databases` in one transaction with the GTID position they correspond to
    (`SET GLOBAL gtid_slave_pos=...`)."""
    socket_args = [binary("mariadb-dump"), "--no-defaults", f"--socket={run_dir / (name + '.sock')}", "--user=root"]
    accounts = _run_dump(socket_args + ["mysql", *PRIVILEGE_TABLES], name, timeout)
    data = _run_dump(socket_args + ["--single-transaction", "--gtid", "--master-data=1", "--databases", *databases],
                     name, timeout)
    return b"USE mysql;\n" + accounts + b"\nFLUSH PRIVILEGES;\n" + data


def _run_dump(argv: List[str], name: str, timeout: float) -> bytes:
    done = subprocess.run(argv, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise LabStartError(f"copying {name} failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


def mariadb_load(run_dir: Path, name: str, dump: bytes, timeout: float = 120.0) -> None:
    """Load a copy into node `name` without logging it to the node's own binlog (the statements
    are the primary's transactions, not new ones of this node)."""
    argv = [binary("mariadb"), "--no-defaults", f"--socket={run_dir / (name + '.sock')}", "--user=root"]
    done = subprocess.run(argv, input=b"SET SESSION sql_log_bin=0;\n" + dump, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise LabStartError(f"loading the copy into {name} failed: {done.stderr.decode(errors='replace').strip()[:300]}")


def mysql_root(run_dir: Path, name: str, timeout: float = 5.0,
               read_timeout: float = 30.0) -> pymysql.connections.Connection:
    """Root connection over the node's unix socket (the admin path; apps use TCP endpoints).
    TLS is off on a unix socket: otherwise PyMySQL (2.x "preferred" mode) builds a new TLS context
    for every connection, tens of milliseconds of CPU holding the interpreter lock."""
    return pymysql.connect(unix_socket=str(run_dir / (name + ".sock")), user="root", password="",
                           connect_timeout=timeout, read_timeout=read_timeout, autocommit=True,
                           ssl_disabled=True)


def mysql_ready(run_dir: Path, name: str, proc: Optional[subprocess.Popen] = None) -> bool:
    """Whether the node answers a query on its admin socket. A listening TCP port is not enough:
    mariadbd listens on TCP before its unix socket, and a killed server leaves its socket file
    behind, which refuses connections until the new server replaces it. A child that exited
    while starting fails at once."""
    if proc is not None and proc.poll() is not None:
        raise LabStartError(f"mariadbd {name} exited with code {proc.returncode} during start")
    try:
        with mysql_root(run_dir, name, timeout=1.0, read_timeout=2.0) as conn:
            sql(conn, "SELECT 1")
        return True
    except (pymysql.MySQLError, OSError):
        return False


def wait_mysql_ready(run_dir: Path, name: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    if not poll_until(lambda: mysql_ready(run_dir, name, proc), timeout, interval=0.05):
        raise LabStartError(f"mariadbd {name} did not answer on its admin socket within {timeout:.0f} s")


def sql(conn, statement: str, args=None):
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall()


def sql_dict(conn, statement: str) -> List[dict]:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(statement)
        return cur.fetchall()


# --- Redis / Sentinel ----------------------------------------------------------------------

def _redis_tls_lines(port: int, tls: LabTls) -> List[str]:
    """TLS only (no plain port), replication and Sentinel links over TLS too; clients need no
    certificate of their own, as on ElastiCache (docs/encrypted-lab.md)."""
    return ["port 0", f"tls-port {port}", f"tls-cert-file {tls.cert('cache')}",
            f"tls-key-file {tls.key('cache')}", f"tls-ca-cert-file {tls.ca}", "tls-auth-clients no",
            "tls-replication yes"]


def _write_private(path: Path, lines: List[str]) -> Path:
    """A config file holding a password: 0600 even when it existed (Sentinel's CONFIG REWRITE
    may have replaced a node's file with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def redis_start(name: str, address: str, port: int, password: str, run_dir: Path,
                replica_of: Optional[tuple] = None, tls: Optional[LabTls] = None) -> subprocess.Popen:
    """redis-server for one cache node on the private twin of its address (the relay listens on
    the address itself, which the node announces); `replica_of` is (address, port). Its own
    connections (replication) leave from the private address, so the relay knows them.

    Plain: the default user with a password (an AUTH token). With `tls`: TLS only, the default
    user off and one ACL user (`REDIS_USERNAME`) that replicas and Sentinels authenticate as; the
    password then lives in a 0600 config file, not on the command line."""
    data = run_dir / name
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary("redis-server")]
    if tls:
        argv.append(str(_write_private(run_dir / f"{name}.conf", _redis_tls_lines(port, tls) + [
            "user default off", f"user {REDIS_USERNAME} on >{password} ~* &* +@all",
            f"masteruser {REDIS_USERNAME}", f"masterauth {password}"])))
    else:
        argv += ["--port", str(port), "--requirepass", password, "--masterauth", password]
    argv += ["--bind", server_address(address), "--bind-source-addr", server_address(address), "--dir", str(data),
             "--save", "", "--appendonly", "no",
             "--replica-announce-ip", address, "--repl-diskless-sync", "yes",
             "--repl-diskless-sync-delay", "0", "--logfile", "", "--daemonize", "no",
             "--protected-mode", "no", "--min-replicas-to-write", "0"]
    if replica_of:
        argv += ["--replicaof", replica_of[0], str(replica_of[1])]
    return spawn(argv, run_dir / (name + ".log"))


def sentinel_start(index: int, port: int, primary: tuple, password: str, group: str,
                   down_after_ms: int, run_dir: Path, tls: Optional[LabTls] = None) -> subprocess.Popen:
    """One Sentinel, its connections to the nodes leaving from `sentinel_source(index)` (the
    relay places it in an AZ); with `tls` it listens on TLS only and talks TLS to the nodes and to the other
    Sentinels (`tls-replication yes`), authenticating as the ACL user."""
    conf = run_dir / f"sentinel-{index}.conf"
    listen = _redis_tls_lines(port, tls) if tls else [f"port {port}"]
    auth = [f"sentinel auth-user {group} {REDIS_USERNAME}"] if tls else []
    _write_private(conf, listen + [
        "bind 127.0.0.1", f"dir {run_dir}", "daemonize no",
        "sentinel announce-ip 127.0.0.1", f"bind-source-addr {sentinel_source(index)}",
        f"sentinel monitor {group} {primary[0]} {primary[1]} 2", *auth,
        f"sentinel auth-pass {group} {password}",
        f"sentinel down-after-milliseconds {group} {down_after_ms}",
        f"sentinel failover-timeout {group} 2000",
        f"sentinel parallel-syncs {group} 1"])
    return spawn([binary("redis-sentinel"), str(conf)], run_dir / f"sentinel-{index}.log")
