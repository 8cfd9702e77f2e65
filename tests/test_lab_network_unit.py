"""The network layer's rules without a lab: addresses, validation, contradictions, and which
flow suffers what (woolab/network)."""
import pytest

from woolab.errors import LabInvalidState
from woolab.network import addresses
from woolab.network.impairments import Impairment, contradiction, parse
from woolab.network.layer import effect_of
from woolab.network.relay import listening

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


def test_listening_finds_a_listener_by_address_and_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert listening({("127.0.0.1", port), ("127.0.0.1", 1)}) == {("127.0.0.1", port)}
