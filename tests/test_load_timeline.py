"""The recorder's aggregation: percentiles within the bucket error, bounded memory, file formats."""
import json
import math
import random
import tracemalloc

import pytest

from chaosext.load.timeline import (MAX_BUCKET, StepSecond, TimelineAggregator, bucket_of,
                                    bucket_value, percentile, read_recent, totals, window_stats)


def exact_percentile(values, pct):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("pct", [50, 95, 99])
def test_histogram_percentiles_stay_within_the_bucket_error(pct):
    rng = random.Random(7)
    values = [rng.lognormvariate(2.5, 0.8) for _ in range(20000)]  # ~12 ms median, long tail
    cell = StepSecond()
    for v in values:
        cell.add(v)
    line = cell.to_line(0, "browse")
    assert line[f"p{pct}"] == pytest.approx(exact_percentile(values, pct), rel=0.03)


def test_every_latency_lands_in_a_bucket_whose_value_is_close():
    for ms in (0.001, 0.05, 1, 9.99, 250, 30000, 10 ** 9):
        b = bucket_of(ms)
        assert 0 <= b <= MAX_BUCKET
        if 0.02 < ms < 1e6:
            assert bucket_value(b) == pytest.approx(ms, rel=0.03)


def test_a_second_holds_the_same_memory_after_a_million_requests():
    rng = random.Random(1)
    cell = StepSecond()
    for _ in range(1000):
        cell.add(rng.uniform(1, 500))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(1_000_000):
        cell.add(rng.uniform(1, 500))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cell.requests == 1_001_000
    assert len(cell.hist) <= 130  # 1..500 ms spans ~128 buckets of 5 %
    assert grown < 20_000


def test_drained_seconds_leave_the_aggregator():
    agg = TimelineAggregator()
    for t in range(1000):
        for step in ("browse", "checkout"):
            agg.add(t + 0.5, step, 10.0)
    assert len(agg) == 2000
    rows = agg.drain(before=990)
    assert [r[0] for r in rows[:4]] == [0, 0, 1, 1]
    assert len(rows) == 1980 and len(agg) == 20
    agg.drain()
    assert len(agg) == 0


def test_failures_are_counted_by_error_class_and_carts_lost():
    cell = StepSecond()
    cell.add(5.0)
    cell.add(7.0, "503 gameday_db_unavailable")
    cell.add(9.0, "503 gameday_db_unavailable")
    cell.add(4.0, "cart_lost", cart_lost=True)
    line = cell.to_line(1700000000, "checkout")
    assert line["requests"] == 4 and line["failures"] == 3 and line["carts_lost"] == 1
    assert line["errors"] == {"503 gameday_db_unavailable": 2, "cart_lost": 1}
    assert line["max"] == 9.0 and line["p99"] <= 9.0
    json.dumps(line)


def test_worker_wire_format_merges_into_the_same_line():
    a, b, both = StepSecond(), StepSecond(), StepSecond()
    for i in range(50):
        a.add(i + 1.0)
        both.add(i + 1.0)
    for i in range(50):
        b.add(100 + i, "503")
        both.add(100 + i, "503")
    merged = StepSecond.from_wire(json.loads(json.dumps(a.to_wire())))
    merged.merge(StepSecond.from_wire(json.loads(json.dumps(b.to_wire()))))
    assert merged.to_line(5, "s") == both.to_line(5, "s")


def test_percentile_of_nothing_is_zero():
    assert percentile([], 95) == 0.0


def write_timeline(path, seconds, start=1_700_000_000):
    with open(path, "w") as fh:
        for t in range(start, start + seconds):
            for step in ("browse", "checkout"):
                cell = StepSecond()
                cell.add(10.0, "503" if step == "checkout" and t % 2 else None)
                fh.write(json.dumps(cell.to_line(t, step)) + "\n")
    return start


def test_recent_lines_are_read_from_the_end_of_a_long_timeline(tmp_path):
    path = tmp_path / "timeline.jsonl"
    start = write_timeline(path, 20000)
    recent = read_recent(str(path), start + 20000 - 10, block=4096)
    assert len(recent) == 20 and min(ln["t"] for ln in recent) == start + 19990
    stats = window_stats(recent, "checkout")
    assert stats["requests"] == 10 and stats["failures"] == 5


def test_totals_sum_every_step_over_the_run(tmp_path):
    path = tmp_path / "timeline.jsonl"
    write_timeline(path, 100)
    t = totals(str(path))
    assert t["requests"] == 200 and t["failures"] == 50
    assert t["steps"]["checkout"]["errors"] == {"503": 50}
    assert t["last_second"] - t["first_second"] == 99


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "timeline.jsonl"
    start = write_timeline(path, 5)
    with open(path, "a") as fh:
        fh.write('{"t": 17000')
    assert len(read_recent(str(path), start)) == 10
    assert totals(str(path))["requests"] == 10
