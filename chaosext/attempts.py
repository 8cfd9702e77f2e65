"""One data-plane probe attempt's outcome, and what a failed attempt proves.

A failed attempt that got an answer (a refused connection, READONLY from a demoted primary,
MySQL's read-only error) proves the endpoint was not writable when the answer came: at its end.
One that ran into its timeout got no answer, so it proves only that the endpoint was not
writable when it began: under an AZ power interruption an attempt can resolve the endpoint to the
powered-off primary a moment before the record moves and hang there until its timeout, well
after the new primary took writes. `WriteWatch` (chaosext/dataplane.py) bounds the moment an
endpoint came back by `Attempt.known_not_writable_at` of the last failed attempt.
"""
import time
from typing import NamedTuple, Optional

import pymysql
import redis

__all__ = ["Attempt", "failed", "describe_failure", "unanswered"]


class Attempt(NamedTuple):
    ok: bool
    why: Optional[str]  # why it failed, None when it succeeded
    started: float  # epoch seconds
    finished: float
    timed_out: bool = False  # it failed without an answer

    @property
    def known_not_writable_at(self) -> float:
        """The last moment this failed attempt shows the endpoint was not writable."""
        return self.started if self.timed_out else self.finished


def unanswered(error: BaseException) -> bool:
    """Whether the error is a timeout (redis-py's, the socket's, or one PyMySQL wrapped)."""
    seen: Optional[BaseException] = error
    for _ in range(4):  # PyMySQL keeps the socket's error as `original_exception` or the cause
        if seen is None:
            return False
        if isinstance(seen, (redis.TimeoutError, TimeoutError)):
            return True
        seen = getattr(seen, "original_exception", None) or seen.__cause__ or seen.__context__
    return False


def describe_failure(error: BaseException) -> str:
    if isinstance(error, pymysql.err.MySQLError) and error.args and isinstance(error.args[0], int):
        return f"MySQL error {error.args[0]}: {error.args[1] if len(error.args) > 1 else ''}"
    return f"{type(error).__name__}: {error}"


def failed(error: BaseException, started: float) -> Attempt:
    """The outcome of an attempt that raised `error` just now."""
    return Attempt(False, describe_failure(error), started, time.time(), unanswered(error))
