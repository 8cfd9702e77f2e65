"""The lab's Sentinel commands (woolab/cache/sentinel.py) outlast a Sentinel slow to answer: a
timeout or a refused connection is tried again within a bound, then handed on as a failed
mechanic (a rehearsal's cache failover lost its completion to one 1 s read timeout)."""
import contextlib

import pytest
import redis

from woolab.cache import sentinel
from woolab.errors import LabInvalidState


class Sentinels:
    """Three Sentinels; `failures[i]` is how many of sentinel i's next answers time out."""

    def __init__(self, *failures):
        self.failures, self.done = list(failures), []

    @contextlib.contextmanager
    def sentinel(self, index):
        if self.failures[index]:
            self.failures[index] -= 1
            raise redis.TimeoutError("Timeout reading from 127.0.0.1:29391")
        yield index

    def run(self, s):
        self.done.append(s)


def test_a_sentinel_that_times_out_once_is_asked_again_and_every_one_gets_the_command():
    admin = Sentinels(0, 2, 0)
    sentinel._on_each(admin, admin.run, bound=5)
    assert admin.done == [0, 1, 2]


def test_a_sentinel_that_never_answers_fails_the_mechanic_within_the_bound():
    admin = Sentinels(10**6, 0, 0)
    with pytest.raises(LabInvalidState, match="sentinel-1 did not answer within 0.5 s: Timeout reading"):
        sentinel._on_each(admin, admin.run, bound=0.5)
    assert admin.done == []
