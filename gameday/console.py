"""What `gameday run` prints while a game day runs: everything, or (quiet) the pulse and verdict.

Chaos Toolkit's console log cannot be turned down from its command line: chaoslib's
`configure_logger` (chaoslib/log.py) always adds a stderr handler at INFO (DEBUG with
`--verbose`), while the `--log-file` handler receives every record at `--log-file-level`
(debug by default). So `--quiet` sends the `chaos run` child's stdout and stderr to
`RUN_DIR/chaos-console.log` (nothing is lost: a crash before logging starts lands there too)
and leaves the terminal to the pulse (gameday/pulse.py) and the verdict.
"""
import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator
from groundfloor import run_files

__all__ = ["Console", "CHAOS_CONSOLE_LOG"]

CHAOS_CONSOLE_LOG = run_files.CHAOS_CONSOLE_LOG


@dataclass
class Console:
    """`quiet`: only the pulse and the verdict; `pulse_every`: seconds between pulse lines
    (0: no pulse)."""

    quiet: bool = False
    pulse_every: float = 10.0

    def say(self, text: str) -> None:
        """A progress message (lab started, shop settings, lab stopped): not when quiet."""
        if not self.quiet:
            print(text, flush=True)

    @staticmethod
    def pulse_line(line: str) -> None:
        print(line, flush=True)

    @contextlib.contextmanager
    def chaos_output(self, run_dir: Path) -> Iterator[Dict[str, Any]]:
        """Popen keyword arguments for `chaos run`'s output: inherited, or (quiet) a file."""
        if not self.quiet:
            yield {}
            return
        with open(Path(run_dir) / CHAOS_CONSOLE_LOG, "ab") as fh:
            yield {"stdout": fh, "stderr": subprocess.STDOUT}
