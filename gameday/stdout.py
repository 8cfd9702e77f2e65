"""Standard output that behaves on pipes and when closed, for every `gameday` command at once.

`gameday lab status | head -1` closes the pipe after one line; Python ignores SIGPIPE, so the
next write raises BrokenPipeError and, unhandled, ends in a traceback (and another from the
interpreter's final flush). The Python documentation's "Note on SIGPIPE" (Python library
reference, https://docs.python.org/3/library/signal.html#note-on-sigpipe) explains the cause and
the cure: do not restore SIGPIPE's default
disposition (a program writing to a closed socket would then die silently), but catch
BrokenPipeError and point standard output at ``os.devnull`` so the final flush cannot fail again.

`guarded()` wraps a command (gameday/cli.py `main`), not each print:

- the reader closed the pipe (EPIPE): the rest of the output is dropped quietly and the command
  finishes what it was doing (a game day keeps running its rollbacks) with its own exit code,
  0 on success, as `cmd | head -1` expects;
- standard output is closed (`>&-`) or writing fails otherwise (EBADF, ENOSPC): the command
  still finishes (nothing is left half done), its output is dropped, and at the end one line
  on stderr names the problem and the fix; the exit code is non-zero (1 unless the command
  already failed), as coreutils do when they cannot write their output.

A closed descriptor 1 is filled with ``os.devnull`` first: otherwise the next file opened
(a lab log, a report) would get descriptor 1 and receive every child process's output.
"""
import contextlib
import errno
import os
import sys
from typing import Iterator, Optional

__all__ = ["GuardedStream", "guarded", "exit_code"]


class GuardedStream:
    """sys.stdout that never raises on write or flush; remembers why its output was lost."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.lost: Optional[str] = None  # "pipe" (the reader left) | an error message
        self.dropped = False  # something was to be written after the output was lost

    def write(self, text: str) -> int:
        if self.lost is None:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._lose(exc)
        self.dropped = self.dropped or bool(text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        self.lost = "pipe" if exc.errno == errno.EPIPE else f"cannot write to standard output: " \
            f"{exc.strerror or exc}"
        self.dropped = True
        _devnull_on(1)
        with contextlib.suppress(OSError):  # what is still buffered now goes to os.devnull
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _devnull_on(fd: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


@contextlib.contextmanager
def guarded() -> Iterator[GuardedStream]:
    """Install a GuardedStream as sys.stdout for the block (see the module docstring); use
    `exit_code` afterwards for the command's final exit code."""
    original = sys.stdout
    if original is None or _closed(1):
        _devnull_on(1)
        stream = GuardedStream(open(os.devnull, "w", encoding="utf-8"))
        stream.lost = "standard output is closed"
    else:
        stream = GuardedStream(original)
    sys.stdout = stream
    try:
        yield stream
    finally:
        stream.flush()  # a broken pipe found here leaves os.devnull on descriptor 1
        sys.stdout = original


def exit_code(stream: GuardedStream, code: int) -> int:
    """The command's exit code, after one line on stderr when its output could not be written."""
    if stream.lost in (None, "pipe") or not stream.dropped:
        return code
    with contextlib.suppress(OSError):
        print(f"gameday: error: {stream.lost}: the output was not written "
              "(redirect it to a file or /dev/null)", file=sys.stderr)
    return code or 1
