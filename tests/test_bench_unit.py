"""The benchmark's own machinery (scripts/bench.py, scripts/benchkit/): every registered section
loads, rounds end within their bound and the next one runs, an outer bound is not mistaken for a
failed round, and `--smoke` shortens every section."""
import signal
import time

import pytest

import bench
from benchkit.core import BoundExceeded, Context, Figures, bounded

pytestmark = pytest.mark.timeout(60, method="thread")  # the bounds use SIGALRM themselves


def _ctx(tmp_path, name="unit"):
    return Context(name, None, bench.parse_args([]), tmp_path, Figures())


def test_every_registered_section_loads_with_its_own_name_and_a_bound():
    args = bench.parse_args([])
    for name in bench.SECTIONS:
        section = bench.load_section(name)
        assert section.name == name
        assert section.bound(args) > 0


def test_a_stuck_round_ends_within_its_bound_and_the_next_round_runs(tmp_path):
    ctx = _ctx(tmp_path)
    ran = []

    def round_fn(i):
        ran.append(i)
        if i == 0:
            time.sleep(30)  # stuck: only the bound ends it
        return i

    began = time.monotonic()
    outcome = ctx.rounds(2, 0.5, round_fn)
    assert time.monotonic() - began < 5
    assert ran == [0, 1]
    assert outcome.results == [1]
    assert len(outcome.failures) == 1 and "did not finish within" in outcome.failures[0]


def test_a_failing_round_is_recorded_and_the_settle_step_still_runs(tmp_path):
    ctx = _ctx(tmp_path)
    settled = []

    def round_fn(i):
        raise RuntimeError(f"round {i} broke")

    outcome = ctx.rounds(2, 5, round_fn, after_round=lambda: settled.append(True))
    assert outcome.results == [] and settled == [True, True]
    assert "round 0 broke" in outcome.failures[0]


def test_an_outer_bound_ends_all_rounds_instead_of_counting_as_one_failed_round(tmp_path):
    ctx = _ctx(tmp_path)
    ran = []
    began = time.monotonic()
    with pytest.raises(BoundExceeded) as caught:
        with bounded("section", 0.5) as outer:
            ctx.rounds(5, 10, lambda i: (ran.append(i), time.sleep(30)))
    assert caught.value.bound is outer
    assert ran == [0]
    assert time.monotonic() - began < 5


def test_a_bound_that_was_not_reached_leaves_no_alarm_behind():
    with bounded("outer", 30):
        with bounded("inner", 0.3):
            pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 20  # the outer bound is armed again
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_smoke_mode_gives_every_section_one_round_and_the_shortest_durations():
    args = bench.parse_args(["--smoke"])
    assert (args.rounds, args.rto_rounds, args.capacity_rounds, args.liveview_rounds) == (1, 1, 1, 1)
    assert args.seconds <= 2 and args.capacity_ladder == [8]
    full = bench.parse_args([])
    for name in bench.SECTIONS:
        section = bench.load_section(name)
        assert section.bound(args) <= section.bound(full)
