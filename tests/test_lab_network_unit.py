"""The network layer's rules without a lab: addresses, validation, contradictions, and which
flow suffers what (woolab/network)."""
import pytest

from woolab.errors import LabInvalidState
from woolab.network import addresses
from woolab.network.impairments import Impairment, contradiction, parse
from woolab.network.layer import effect_of

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_each_node_address_has_a_server_and_a_peer_twin_and_other_addresses_stay():
    assert addresses.server_address("127.0.10.2") == "127.1.10.2"
    assert addresses.peer_address("127.0.10.2") == "127.2.10.2"
    assert addresses.public_address("127.1.11.3") == "127.0.11.3"
    assert addresses.server_address("127.0.0.1") == "127.0.0.1"
    assert addresses.server_address("master.example") == "master.example"


def test_sources_name_replicas_and_sentinels_and_nothing_else():
    assert addresses.source_kind("127.1.11.2") == ("cache", 2)
    assert addresses.source_kind(addresses.sentinel_source(3)) == ("sentinel", 3)
    assert addresses.source_kind("127.0.0.1") is None
    assert addresses.source_kind("127.0.11.2") is None  # a public address is never a source


@pytest.mark.parametrize("values, why", [
    ({"az": "eu-west-9z", "delay_ms": "1"}, "unknown AZ"),
    ({"az": "us-east-1a", "delay_ms": "-1"}, "0 or more"),
    ({"az": "us-east-1a", "delay_ms": "abc"}, "must be a number"),
    ({"az": "us-east-1a", "delay_ms": "nan"}, "0 or more"),
    ({"az": "us-east-1a", "loss_percent": "100.5"}, "more than the lab allows"),
    ({"az": "us-east-1a", "delay_ms": "10", "jitter_ms": "20"}, "more than --delay-ms"),
    ({"az": "us-east-1a", "partition": "us-east-1a"}, "cut from itself"),
    ({"az": "us-east-1a", "partition": "us-east-1x"}, "unknown AZ"),
    ({"az": "us-east-1a", "blackhole": "1", "partition": "*"}, "contradict"),
    ({"az": "us-east-1a", "delay_ms": "5", "seconds": "0"}, "more than 0"),
    ({"az": "us-east-1a", "delay_ms": "5", "seconds": "86400"}, "more than the lab allows"),
    ({"az": "us-east-1a", "direction": "sideways", "delay_ms": "5"}, "--direction"),
    ({"az": "us-east-1a"}, "nothing to impair"),
])
def test_bad_impairments_are_refused_with_the_reason(values, why):
    with pytest.raises(LabInvalidState, match=why):
        parse(values, AZS)


def test_a_second_value_for_an_effect_in_force_contradicts_but_other_effects_combine():
    delay = parse({"az": "us-east-1a", "delay_ms": "200"}, AZS)
    assert "already has --delay-ms 200" in contradiction(parse({"az": "us-east-1a", "delay_ms": "100"}, AZS), [delay])
    assert contradiction(parse({"az": "us-east-1a", "loss_percent": "15"}, AZS), [delay]) is None
    assert contradiction(parse({"az": "us-east-1b", "delay_ms": "100"}, AZS), [delay]) is None
    assert contradiction(parse({"az": "us-east-1a", "delay_ms": "100", "direction": "to"}, AZS),
                         [parse({"az": "us-east-1a", "delay_ms": "200", "direction": "from"}, AZS)]) is None
    cut = parse({"az": "us-east-1a", "partition": "us-east-1b"}, AZS)
    assert "contradict" in contradiction(parse({"az": "us-east-1a", "blackhole": "1"}, AZS), [cut])
    assert "already cut" in contradiction(parse({"az": "us-east-1a", "partition": "us-east-1c"}, AZS), [cut])


def test_a_delay_on_both_directions_adds_the_delay_once_per_round_trip():
    imp = (Impairment(az="us-east-1a", delay_ms=200, jitter_ms=20),)
    there = effect_of(imp, "us-east-1a", None, False, "to")
    back = effect_of(imp, "us-east-1a", None, False, "from")
    assert there.delay_s + back.delay_s == pytest.approx(0.2)
    assert effect_of(imp, "us-east-1b", None, False, "to") is None  # another AZ's node


def test_direction_follows_the_az_whether_it_holds_the_target_or_the_source():
    imp = (Impairment(az="us-east-1b", delay_ms=100, direction="from"),)
    assert effect_of(imp, "us-east-1b", None, False, "from").delay_s == pytest.approx(0.1)
    assert effect_of(imp, "us-east-1b", None, False, "to") is None
    # a replica in us-east-1b talking to a primary in us-east-1a: its requests leave the AZ
    assert effect_of(imp, "us-east-1a", "us-east-1b", False, "to").delay_s == pytest.approx(0.1)
    assert effect_of(imp, "us-east-1a", "us-east-1b", False, "from") is None


def test_a_partition_holds_inter_node_flows_across_the_cut_only():
    imp = (Impairment(az="us-east-1a", partition="*"),)
    assert effect_of(imp, "us-east-1a", "us-east-1b", False, "to").hold
    assert effect_of(imp, "us-east-1b", "us-east-1a", False, "from").hold
    assert effect_of(imp, "us-east-1a", None, False, "to") is None  # a client reaches both sides
    assert effect_of(imp, "us-east-1b", "us-east-1c", False, "to") is None  # not across the cut
    only_b = (Impairment(az="us-east-1a", partition="us-east-1b"),)
    assert effect_of(only_b, "us-east-1a", "us-east-1c", False, "to") is None


def test_sentinel_links_are_left_alone_unless_asked():
    quiet = (Impairment(az="us-east-1a", blackhole=True),)
    assert effect_of(quiet, "us-east-1a", "us-east-1b", True, "to") is None
    assert effect_of(quiet, "us-east-1a", "us-east-1b", False, "to").hold  # a replica is held
    loud = (Impairment(az="us-east-1a", blackhole=True, sentinels=True),)
    assert effect_of(loud, "us-east-1a", "us-east-1b", True, "to").hold


def test_losses_combine_as_independent_chances():
    imp = (Impairment(az="us-east-1a", loss_percent=50), Impairment(az="us-east-1a", loss_percent=50, direction="to"))
    assert effect_of(imp, "us-east-1a", None, False, "to").loss == pytest.approx(0.75)


# --- the relay itself, in front of a small echo server ------------------------------------------

import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from groundfloor.supervisor import poll_until  # noqa: E402
from woolab.network.impairments import Effect  # noqa: E402
from woolab.network.relay import Flow, Relay  # noqa: E402


class EchoServer:
    def __init__(self, address: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self):
        """Stop listening now (a bare close leaves a socket another thread accepts on listening)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def relayed():
    """An echo server on 127.1.99.1, the relay on 127.0.99.1 with the effect `state["effect"]`."""
    server = EchoServer("127.1.99.1")
    state = {"effect": None}
    relay = Relay(lambda listen, upstream, peer: Flow(listen, upstream, peer[0], lambda d: state["effect"]),
                  check_every=0.02)
    relay.start({("127.0.99.1", server.port): ("127.1.99.1", server.port)})
    yield server, relay, state
    relay.stop()
    server.close()


def _round_trip(port: int, payload: bytes = b"ping") -> float:
    with socket.create_connection(("127.0.99.1", port), timeout=5) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        assert got == payload
        return time.perf_counter() - start


def test_relay_forwards_unimpaired_then_delays_then_clears(relayed):
    server, relay, state = relayed
    assert _round_trip(server.port) < 0.05
    state["effect"] = Effect(delay_s=0.1)
    relay.changed(quiet=False)
    assert 0.19 <= _round_trip(server.port) <= 0.35  # 100 ms each way
    state["effect"] = None
    relay.changed(quiet=True)
    assert _round_trip(server.port) < 0.05


def test_relay_passes_megabytes_intact_and_an_end_of_stream_both_ways(relayed):
    """More than the sockets' buffers hold (the relay must wait for the reader and stop reading
    meanwhile), then a half-close: the echo server sees the end, echoes the rest, closes."""
    server, relay, state = relayed
    payload = bytes(range(256)) * 16384  # 4 MiB
    with socket.create_connection(("127.0.99.1", server.port), timeout=10) as sock:
        received = bytearray()
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        while chunk := sock.recv(65536):
            received += chunk
        sender.join(10)
    assert bytes(received) == payload


def test_relay_black_hole_hangs_without_reset_and_delivers_after_the_hold(relayed):
    server, relay, state = relayed
    sock = socket.create_connection(("127.0.99.1", server.port), timeout=5)
    state["effect"] = Effect(hold=True)
    relay.changed(quiet=False)
    sock.settimeout(0.3)
    sock.sendall(b"held")
    with pytest.raises(socket.timeout):
        sock.recv(10)
    state["effect"] = None
    relay.changed(quiet=True)
    sock.settimeout(5)
    assert sock.recv(10) == b"held"
    sock.close()


def test_relay_listener_follows_its_server(relayed):
    server, relay, state = relayed
    assert relay.open_listeners() == [("127.0.99.1", server.port)]
    server.close()
    with pytest.raises(OSError):  # the first client after the stop is reset (or already refused)
        with socket.create_connection(("127.0.99.1", server.port), timeout=1) as sock:
            sock.sendall(b"x")
            if sock.recv(10) == b"":
                raise ConnectionResetError("closed")
    assert poll_until(lambda: not relay.open_listeners(), 2, interval=0.02)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.99.1", server.port), timeout=1)


def test_a_service_impairment_touches_only_that_kind_of_node():
    cache_only = [parse({"az": "us-east-1a", "delay_ms": "100", "service": "cache"}, AZS)]
    assert effect_of(cache_only, "us-east-1a", None, False, "to", "cache").delay_s == pytest.approx(0.05)
    assert effect_of(cache_only, "us-east-1a", None, False, "to", "db") is None  # the DB node beside it
    assert "cache nodes only" in cache_only[0].describe()
    assert addresses.node_kind("127.0.11.2") == "cache" and addresses.node_kind("127.2.10.1") == "db"
    assert addresses.node_kind("127.0.0.1") is None
    # another service's delay on the same AZ combines instead of contradicting
    assert contradiction(parse({"az": "us-east-1a", "delay_ms": "300", "service": "db"}, AZS), cache_only) is None
    assert "already has" in contradiction(parse({"az": "us-east-1a", "delay_ms": "300"}, AZS), cache_only)


def test_an_unknown_service_is_refused():
    with pytest.raises(LabInvalidState, match="--service must be one of db, cache"):
        parse({"az": "us-east-1a", "delay_ms": "100", "service": "web"}, AZS)
