"""Bring up the DB instance: data dirs, mariadbd per node, users, and replication to the standby.

Replication is GTID-based with semi-synchronous acknowledgement (configured in
`servers.mariadb_start`), so a commit the shop saw acknowledged is on the standby before a failover.
"""
import shutil

from groundfloor.supervisor import poll_until

from .. import servers
from ..config import AZS, DB_INSTANCE_ID
from ..errors import LabStartError
from ..network.addresses import peer_address
from ..parts import LabParts
from ..tls import ca_details, lab_tls
from ..state import DbInstance, DbNode, Endpoint

NODE_NAMES = ("shop-db-a", "shop-db-b")
DATABASES = ("shop", "woolab")  # what a replacement standby copies besides the users
START_TIMEOUT = 20.0  # seconds for a mariadbd to answer after its start (a busy 2-core machine)
# Replication I/O errors that a restart or a slow peer causes and that clear by themselves:
# 2003 cannot connect, 2005 unknown host, 2006 gone away, 2013 lost connection
# (client error codes, https://mariadb.com/kb/en/mariadb-error-codes/).
TRANSIENT_IO_ERRNOS = {2003, 2005, 2006, 2013}
DIVERGED_ERRNO = 1236  # the primary's binlog lacks the replica's position: the replica diverged


class Diverged(LabStartError):
    """The node holds transactions the primary never had (an old primary that wrote to its binlog
    a commit nobody acknowledged before it died): it cannot replicate; it must be built afresh."""


def start_db(parts: LabParts) -> None:
    """Start every node, create the users and schemas, start replication; record the instance."""
    cfg = parts.config
    names = list(NODE_NAMES if cfg.db_multi_az else NODE_NAMES[:1])
    nodes, version = start_replicated(parts, names, ("primary", "standby"))
    with parts.state.lock:
        parts.state.db[DB_INSTANCE_ID] = DbInstance(
            id=DB_INSTANCE_ID, engine="mariadb", engine_version=version,
            multi_az=cfg.db_multi_az, endpoint=Endpoint(cfg.db_endpoint_name, cfg.db_endpoint_port),
            primary=names[0], standby=names[1] if len(names) > 1 else None, nodes=nodes,
            endpoint_node=names[0], ca_certificate=ca_details(lab_tls(cfg)))


def start_replicated(parts: LabParts, names: list, roles: tuple) -> tuple:
    """Start the nodes, create the users on the first, make every other one its replica; the
    nodes and the server's version (a Multi-AZ instance and a DB cluster start alike)."""
    nodes = start_nodes(parts, names, roles)
    create_users(parts, names[0])
    for name in names[1:]:
        replicate(parts, name, names[0], nodes[names[0]], gtid_mode="slave_pos")
    return nodes, server_version(parts, names[0])


def start_nodes(parts: LabParts, names: list, roles: tuple) -> dict:
    """Start one mariadbd per name, node i in AZ i on address i: the first writable with role
    `roles[0]`, the others read-only with `roles[1]`; returns the nodes once each answers."""
    cfg = parts.config
    datadirs = [cfg.path("db", n) for n in names]
    if not (datadirs[0] / "mysql").exists():
        servers.mariadb_install(datadirs[0], cfg.path("mariadb-install.log"))
    for d in datadirs[1:]:
        if not (d / "mysql").exists():
            shutil.copytree(datadirs[0], d)
    nodes = {}
    for i, name in enumerate(names):
        ip = cfg.db_node_address(i)
        proc = parts.procs.add(name, servers.mariadb_start(datadirs[i], cfg.db_node_port(i), i + 1,
                                                           parts.config.path("run"), read_only=i > 0, address=ip,
                                                           tls=lab_tls(cfg)))
        nodes[name] = DbNode(az=AZS[i], port=cfg.db_node_port(i), role=roles[0] if i == 0 else roles[1],
                             pid=proc.pid, server_id=i + 1, ip=ip)
    for name in nodes:
        servers.wait_mysql_ready(cfg.path("run"), name, START_TIMEOUT, parts.procs.get(name))
    return nodes


def server_version(parts: LabParts, name: str) -> str:
    with parts.admin.mysql(name) as conn:
        return servers.sql(conn, "SELECT VERSION()")[0][0].split("-")[0]


def create_users(parts: LabParts, primary: str) -> None:
    """The admin, replication and shop users, the shop's schema and the lab's probe table."""
    s = parts.secrets
    with parts.admin.mysql(primary) as conn:
        for stmt, args in (
                ("CREATE USER IF NOT EXISTS 'admin'@'127.%%' IDENTIFIED BY %s", s["db_admin_password"]),
                ("GRANT ALL ON *.* TO 'admin'@'127.%' WITH GRANT OPTION", None),
                ("CREATE USER IF NOT EXISTS 'repl'@'127.%%' IDENTIFIED BY %s", s["db_repl_password"]),
                ("GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO 'repl'@'127.%'", None),
                ("CREATE DATABASE IF NOT EXISTS shop", None),
                ("CREATE DATABASE IF NOT EXISTS woolab", None),
                ("CREATE TABLE IF NOT EXISTS woolab.probe (id INT PRIMARY KEY, t DOUBLE)", None),
                ("CREATE USER IF NOT EXISTS 'shop'@'127.%%' IDENTIFIED BY %s", s["db_app_password"]),
                ("GRANT ALL ON shop.* TO 'shop'@'127.%'", None)):
            servers.sql(conn, stmt, args)


def replicate(parts: LabParts, name: str, primary_name: str, primary: DbNode, gtid_mode: str,
              timeout: float = 10.0) -> None:
    """Make `name` a read-only replica of `primary` and wait until it replicates: both threads
    run and it holds every transaction the primary had when it started. (A running I/O thread
    alone proves nothing: through the relay it runs until the primary refuses the position.)

    It replicates through the primary's peer address, where the relay knows the traffic as the
    other DB node's (a partition cuts it, clients are never cut). Connection errors while the
    primary or the network is slow are waited out; a fatal error raises at once (`Diverged`
    when the node holds transactions the primary lacks)."""
    with parts.admin.mysql(primary_name) as conn:
        target, primary_state = servers.sql(conn, "SELECT @@gtid_binlog_pos, @@gtid_binlog_state")[0]
    with parts.admin.mysql(name) as conn:
        own_state = servers.sql(conn, "SELECT @@gtid_binlog_state")[0][0]
        errant = errant_gtids(own_state, primary_state)
        if errant:
            raise Diverged(f"{name} holds transactions {primary_name} never had ({', '.join(errant)})")
        servers.sql(conn, "STOP SLAVE")
        ssl_clause, ssl_args = _master_ssl(parts)
        servers.sql(conn, "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER='repl', "
                          "MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=" + gtid_mode + ssl_clause,
                    (peer_address(primary.ip), primary.port, parts.secrets["db_repl_password"], *ssl_args))
        servers.sql(conn, "SET GLOBAL read_only=1")
        servers.sql(conn, "START SLAVE")

        def caught_up() -> bool:
            return replication_running(conn, name) and \
                holds_position(servers.sql(conn, "SELECT @@gtid_current_pos")[0][0], target)
        if not poll_until(caught_up, timeout):
            raise LabStartError(f"replication on {name} did not catch up with {primary_name} within {timeout:.0f} s")


def errant_gtids(own_state: str, primary_state: str) -> list:
    """The GTIDs of `own_state` the primary never had. A binlog state holds the last sequence
    number per (domain, server); in strict mode a server writes its numbers in order, so the
    primary had (d, s, n) exactly when its state for (d, s) reaches n."""
    def per_server(state: str) -> dict:
        out = {}
        for gtid in filter(None, (x.strip() for x in (state or "").split(","))):
            domain, server, seq = map(int, gtid.split("-"))
            out[(domain, server)] = max(seq, out.get((domain, server), -1))
        return out
    primary = per_server(primary_state)
    return [f"{d}-{s}-{n}" for (d, s), n in sorted(per_server(own_state).items()) if primary.get((d, s), -1) < n]


def gtid_seqs(position: str) -> dict:
    """'0-1-12,1-2-5' -> {0: 12, 1: 5} (GTID domain -> sequence number)."""
    seqs = {}
    for gtid in filter(None, (x.strip() for x in position.split(","))):
        domain, _server, seq = gtid.split("-")
        seqs[int(domain)] = int(seq)
    return seqs


def holds_position(have: str, wanted: str) -> bool:
    """Whether GTID position `have` contains every transaction of `wanted`, per domain."""
    got = gtid_seqs(have)
    return all(got.get(domain, -1) >= seq for domain, seq in gtid_seqs(wanted).items())


def replication_running(conn, name: str) -> bool:
    """Whether both replication threads of `name` run; raises on an error that will not clear."""
    status = servers.sql_dict(conn, "SHOW SLAVE STATUS")[0]
    if status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes":
        return True
    io_errno, sql_errno = int(status["Last_IO_Errno"] or 0), int(status["Last_SQL_Errno"] or 0)
    if io_errno == DIVERGED_ERRNO:
        raise Diverged(f"{name} diverged from its primary: {status['Last_IO_Error']}")
    if sql_errno:
        raise Diverged(f"replication on {name} stopped applying: {status['Last_SQL_Error']}")
    if io_errno and io_errno not in TRANSIENT_IO_ERRNOS:
        raise LabStartError(f"replication on {name} failed: {status['Last_IO_Error']}")
    return False


def _master_ssl(parts: LabParts) -> tuple:
    """The CHANGE MASTER clause (and its argument) for replication over TLS on an encrypted lab,
    the primary's certificate verified against the lab's CA and its address."""
    tls = lab_tls(parts.config)
    if tls is None:
        return "", ()
    return ", MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1", (str(tls.ca),)


def restart_node(parts: LabParts, name: str, read_only: bool) -> None:
    """Start a stopped DB node again (after a failover or a reboot), of an instance or a cluster.
    A process of the node still running is stopped first: a second mariadbd on the same data
    directory cannot bind the node's port, and the first would be left untracked."""
    node = parts.state.db_node(name)
    if parts.procs.alive(name):
        parts.procs.stop(name, hard=True)
    proc = parts.procs.add(name, servers.mariadb_start(parts.config.path("db", name), node.port, node.server_id,
                                                       parts.config.path("run"), read_only=read_only,
                                                       address=node.ip, tls=lab_tls(parts.config)))
    node.pid = proc.pid
    servers.wait_mysql_ready(parts.config.path("run"), name, START_TIMEOUT, proc)


def reseed(parts: LabParts, name: str, primary_name: str) -> None:
    """Build `name` afresh from a consistent copy of the primary, as RDS builds a replacement
    standby from the primary: a new data directory, the primary's users and shop data loaded
    without writing to the node's own binlog, and the primary's GTID position as its start."""
    parts.procs.stop(name, hard=True)
    datadir = parts.config.path("db", name)
    shutil.rmtree(datadir, ignore_errors=True)
    servers.mariadb_install(datadir, parts.config.path("mariadb-install.log"))
    restart_node(parts, name, read_only=True)
    dump = servers.mariadb_dump(parts.config.path("run"), primary_name, DATABASES)
    servers.mariadb_load(parts.config.path("run"), name, dump)
