"""The lab's network layer: the relay on every node address, the impairments in force, their
expiry, their events, and the DB's commit guard while an impairment touches a DB node.

Impairments act per AZ (docs/lab-network.md):
- delay, jitter, loss, bandwidth and a black hole act on every flow to or from the AZ's nodes
  (clients and other nodes alike), in the direction asked;
- a partition holds only the flows between the AZ's nodes and other AZs' nodes (replication),
  never a client's.
Sentinel i lives in AZ i (us-east-1a, -1b, -1c). Its links to the nodes stand in for
ElastiCache's own health checks, which a customer's network does not reach: an impairment
leaves them alone unless asked with `sentinels` (then Sentinel may fail over by itself).
"""
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import psutil

from ..config import AZS, MAX_CACHE_NODES, LabConfig
from ..errors import LabInvalidState
from ..events import EventLog
from ..state import LabState
from . import addresses
from .impairments import Effect, Impairment, contradiction, parse
from .relay import Flow, Relay

log = logging.getLogger("woolab")
SENTINEL_AZS = AZS  # Sentinel i (1-based) runs in AZS[i - 1]
SOURCE_RETRY_SECONDS = 0.5  # how often a flow whose opener is not known yet asks again


class NetworkLayer:
    def __init__(self, config: LabConfig, state: LabState, events: EventLog,
                 guard: Optional[Callable[[bool], None]] = None):
        self.config, self.state, self.events = config, state, events
        self.guard = guard  # called with True before a DB node's AZ is impaired, False after the last ends
        self._lock = threading.Lock()
        self._in_force: Tuple[Impairment, ...] = ()
        self._timer: Optional[threading.Timer] = None
        self.relay = Relay(self._classify)

    # life cycle ------------------------------------------------------------------------------
    def routes(self) -> Dict[tuple, tuple]:
        """listener -> server, for every DB node (public and peer address) and every cache node
        the lab may ever run."""
        cfg, routes = self.config, {}
        for i in range(max(2, cfg.db_node_count)):
            public = cfg.db_node_address(i)
            server = (addresses.server_address(public), cfg.db_endpoint_port)
            routes[(public, cfg.db_endpoint_port)] = server
            routes[(addresses.peer_address(public), cfg.db_endpoint_port)] = server
        for n in range(1, MAX_CACHE_NODES + 1):
            public = cfg.cache_node_address(n)
            routes[(public, cfg.cache_primary_port)] = (addresses.server_address(public), cfg.cache_primary_port)
        return routes

    def start(self) -> "NetworkLayer":
        self.relay.start(self.routes())
        return self

    def stop(self) -> None:
        """Close the relay; impairments in force end with it (the lab is going away)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._in_force = ()
        self.relay.stop()

    # impairments -------------------------------------------------------------------------------
    def impair(self, values: dict) -> dict:
        """Validate and apply one impairment (query strings); refuses contradictions unchanged."""
        new = parse(values, list(AZS))
        with self._lock:
            why = contradiction(new, list(self._in_force))
            if why:
                raise LabInvalidState(why)
            if self.guard is not None and self._touches_db([new]) and not self._touches_db(self._in_force):
                self.guard(True)
            new.started_at = time.time()
            self._in_force = self._in_force + (new,)
            self._schedule()
        self.events.record("lab", new.az, f"network impairment started on {new.az}: {new.describe()}",
                           categories=["network"])
        self.relay.changed(quiet=not self._in_force)
        return new.to_dict()

    def clear(self, az: Optional[str] = None, why: str = "cleared") -> List[dict]:
        """End the impairments of `az` (every AZ when None); returns what ended."""
        if az is not None and az not in AZS:
            raise LabInvalidState(f"unknown AZ {az!r}: the lab's AZs are {', '.join(AZS)}")
        with self._lock:
            ended = [i for i in self._in_force if az is None or i.az == az]
            self._end(ended, why)
        return [i.to_dict() for i in ended]

    def in_force(self) -> List[dict]:
        return [i.to_dict() for i in self._in_force]

    def _end(self, ended: List[Impairment], why: str) -> None:
        """Remove `ended` (lock held), log each, release the DB guard after the last DB one."""
        if not ended:
            return
        before_db = self._touches_db(self._in_force)
        self._in_force = tuple(i for i in self._in_force if i not in ended)
        self._schedule()
        self.relay.changed(quiet=not self._in_force)
        for imp in ended:
            self.events.record("lab", imp.az, f"network impairment ended on {imp.az} ({why}): "
                                              f"{imp.describe().rsplit(' (', 1)[0]}", categories=["network"])
        if self.guard is not None and before_db and not self._touches_db(self._in_force):
            self.guard(False)

    def _schedule(self) -> None:
        """One timer for the next expiry (lock held)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_force:
            wait = max(0.0, min(i.ends_at for i in self._in_force) - time.time())
            self._timer = threading.Timer(wait, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            now = time.time()
            self._end([i for i in self._in_force if i.ends_at <= now + 0.001], "its duration ended")

    def _db_azs(self) -> set:
        with self.state.lock:
            return {n.az for n in self.state.all_db_nodes()}

    def _touches_db(self, impairments) -> bool:
        azs = self._db_azs()
        return any(i.service != "cache" and (i.az in azs or i.partition == "*"
                                             or (i.partition not in ("", "*") and i.partition in azs))
                   for i in impairments)

    # the relay's questions -------------------------------------------------------------------
    def node_az(self, public: str) -> Optional[str]:
        """The AZ of the node whose public address this is (None for no node)."""
        with self.state.lock:
            for node in self.state.all_db_nodes():
                if node.ip == public:
                    return node.az
            for node in self.state.nodes.values():
                if node.ip == public:
                    return node.az
        return None

    def source_az(self, listen: tuple, peer: tuple) -> Tuple[Optional[str], bool]:
        """(AZ of the node that opened the connection, is it a Sentinel); (None, False) for a client."""
        if listen[0].startswith(f"127.{addresses.PEER}."):  # MariaDB replication from another DB node
            return self._replica_az(listen, peer), False
        kind = addresses.source_kind(peer[0])
        if kind is None:
            return None, False
        if kind[0] == "sentinel":
            return SENTINEL_AZS[(kind[1] - 1) % len(SENTINEL_AZS)], True
        return self.node_az(addresses.public_address(peer[0])), False

    def _replica_az(self, listen: tuple, peer: tuple) -> Optional[str]:
        """The AZ of the DB node replicating through `listen` (a node's peer address). With one
        other DB node (the instance topology) it is that node's; a cluster's writer has two
        readers, and MariaDB connects from 127.0.0.1 whichever it is, so the reader is the one
        whose mariadbd holds the other end of this connection. None when no node holds it."""
        mine = self.node_az(addresses.public_address(listen[0]))
        with self.state.lock:
            others = [(node.az, node.pid) for node in self.state.all_db_nodes() if node.az != mine]
        if len({az for az, _pid in others}) <= 1:
            return others[0][0] if others else None
        return next((az for az, pid in others if holds_connection(pid, tuple(peer), tuple(listen))), None)

    def _classify(self, listen: tuple, upstream: tuple, peer: tuple) -> Flow:
        """The flow's effect is looked up per chunk; who opened it is settled once known (a
        replica may connect before the lab has recorded the nodes; asked again at most every
        `SOURCE_RETRY_SECONDS`). A replication connection's opener is first asked when an
        impairment is in force: finding a cluster's reader reads processes' sockets (about 15 ms
        each on a busy machine), which the relay's loop should not pay for every connection."""
        flow = Flow(listen, upstream, peer[0])
        target = addresses.public_address(listen[0])
        replication = listen[0].startswith(f"127.{addresses.PEER}.")
        source = [None, False] if replication else list(self.source_az(listen, peer))
        asked = [0.0]  # the first chunk under an impairment asks at once

        def effect(direction: str) -> Optional[Effect]:
            in_force = self._in_force
            if not in_force:
                return None
            if source[0] is None and (replication or addresses.source_kind(peer[0])) \
                    and time.monotonic() - asked[0] >= SOURCE_RETRY_SECONDS:
                asked[0] = time.monotonic()
                source[:] = self.source_az(listen, peer)
            return effect_of(in_force, self.node_az(target), source[0], source[1], direction,
                             addresses.node_kind(target))
        flow.effect = effect
        return flow


def holds_connection(pid: Optional[int], local: tuple, remote: tuple) -> bool:
    """Whether process `pid` holds a TCP connection from `local` to `remote` ((address, port))."""
    if not pid:  # a node being restarted holds nothing (and psutil would read this process)
        return False
    try:
        process = psutil.Process(pid)
        sockets = (getattr(process, "net_connections", None) or process.connections)(kind="tcp4")
    except (psutil.Error, TypeError, ValueError):
        return False
    return any(tuple(c.laddr) == local and c.raddr and tuple(c.raddr) == remote for c in sockets)


def _direction_matches(imp: Impairment, entering: bool) -> bool:
    return imp.direction == "both" or imp.direction == ("to" if entering else "from")


def effect_of(in_force, target_az: Optional[str], source_az: Optional[str], sentinel: bool,
              direction: str, target_kind: Optional[str] = None) -> Optional[Effect]:
    """What one direction of a flow suffers: `direction` "to" runs from the source to the node
    in `target_az` (a "db" or "cache" node: `target_kind`); `source_az` is None for a client.
    None when nothing applies."""
    effect = None
    for imp in in_force:
        if sentinel and not imp.sentinels:
            continue  # Sentinel stands in for ElastiCache's own health checks: untouched unless asked
        if imp.service and imp.service != target_kind:
            continue  # an impairment of one service's nodes only
        if imp.partition:
            others = [a for a in AZS if a != imp.az] if imp.partition == "*" else [imp.partition]
            cut = source_az is not None and (
                (target_az == imp.az and source_az in others) or (source_az == imp.az and target_az in others))
            if cut:
                effect = effect or Effect()
                effect.hold = True
        if imp.az == target_az:
            entering = direction == "to"
        elif imp.az == source_az:
            entering = direction == "from"
        else:
            continue
        if _direction_matches(imp, entering) and (imp.delay_ms or imp.jitter_ms or imp.loss_percent
                                                  or imp.bandwidth_kbps or imp.blackhole):
            effect = effect or Effect()
            effect.add(imp)
    return effect

