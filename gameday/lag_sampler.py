"""Samples the replica lag of the lab's DB cluster readers during a game day.

While `chaos run` runs against a lab whose DB is a Multi-AZ DB cluster (`--db cluster`), the
lab's readers' replication status (`woolab/db/lag.py`: `Seconds_Behind_Master`, the field AWS
publishes as the CloudWatch metric `ReplicaLag`, and the writer's transactions not applied yet)
is read once a second and appended to the run directory's `replica-lag.jsonl`, one line per
reader and sample; the report charts it (`gameday/report/replica_lag.py`). On AWS the same file
is filled from CloudWatch's `ReplicaLag`, a minute at a time (gameday/lag_cloudwatch.py).
"""
import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional

from woolab import manage
from woolab.config import LabConfig
from woolab.errors import LabError

from groundfloor import run_files

from . import lag_cloudwatch
from groundfloor.timefmt import iso

log = logging.getLogger("gameday")

INTERVAL_SECONDS = 1.0  # the lab's failovers last seconds

__all__ = ["sampling", "sample_once", "INTERVAL_SECONDS"]


def sample_once(state_dir: Path, out: Path) -> int:
    """Append one sample of every reader to `out`; returns how many lines were written (0 when
    the lab did not answer: a sample is missing, the run goes on)."""
    try:
        now = manage.replica_lag(state_dir)
    except LabError as exc:
        log.debug("replica lag not sampled: %s", exc)
        return 0
    lines = [json.dumps({"at": iso(now["at"]), "t": round(now["at"], 3), "writer": now["writer"], **reader})
             for reader in now["readers"]]
    with open(out, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return len(lines)


def _loop(sample: Callable[[], int], stop: threading.Event, interval: float) -> None:
    sample()
    while not stop.wait(interval):
        sample()


@contextlib.contextmanager
def _every(sample: Callable[[], int], interval: float, last: bool) -> Iterator[bool]:
    """Call `sample` now and every `interval` seconds in a thread while the block runs (and once
    more after it when `last`: CloudWatch's final minute)."""
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(sample, stop, interval), name="replica-lag", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(30)
        if last and not thread.is_alive():
            sample()


@contextlib.contextmanager
def sampling(target: str, state_dir: Optional[Path], run_dir: Path,
             interval: float = INTERVAL_SECONDS, aws=None) -> Iterator[bool]:
    """Sample the readers' lag while the block runs; yields whether anything is sampled: a lab
    with a DB cluster (its readers, each second), or on AWS the `aws` reader
    (`lag_cloudwatch.lag_reader`, None when the run has no DB cluster)."""
    if target == "aws" and aws is not None:
        with _every(aws.sample, lag_cloudwatch.PERIOD_SECONDS, last=True) as sampled:
            yield sampled
        return
    if target != "lab" or state_dir is None or LabConfig.load(state_dir).db_topology != "cluster":
        yield False
        return
    out = run_dir / run_files.REPLICA_LAG
    with _every(lambda: sample_once(state_dir, out), interval, last=False) as sampled:
        yield sampled
