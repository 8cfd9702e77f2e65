"""Keep this machine's absolute paths out of reports, so a report can be shared as it is.

Probe outputs and tracebacks name files by absolute path (the RPO check's order ledger, the
load control's files, the checkout's locustfile). A path inside the run directory becomes
relative to it (`orders.jsonl`), a path inside the checkout relative to the checkout
(`loadtests/shopper.py`), the home directory `~`, and any other absolute path under a
well-known root (/tmp, /home, /var, CI workspaces…) keeps only its last component.
"""
import os
import re
from typing import Any, List, Tuple

__all__ = ["strip_paths", "strip_text"]

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# an absolute path under a root that only ever holds machine-specific places; not preceded by a
# word character, ':' or '/', so URL paths (http://host:port/wp-json/...) are left alone
_OTHER = re.compile(r"(?<![\w:/.~-])/(?:tmp|home|root|work|var|opt|srv|mnt|private|Users|builds|"
                    r"codebuild|github|runner|__w|usr|data)(?:/[\w.@+-]+)*/([\w.@+-]+)")


def _prefixes(run_dir: str) -> List[Tuple[str, str]]:
    """(absolute prefix, replacement), longest first so the most specific one wins."""
    pairs = []
    if run_dir:
        for form in {os.path.abspath(run_dir), os.path.realpath(run_dir)}:
            pairs += [(form + os.sep, ""), (form, ".")]
    for form in {_PROJECT_ROOT, os.path.realpath(_PROJECT_ROOT)}:
        pairs.append((form + os.sep, ""))
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        pairs.append((home + os.sep, "~/"))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def strip_text(text: str, run_dir: str = "") -> str:
    """`text` with absolute machine paths made relative (see the module docstring)."""
    if "/" not in text:
        return text
    for prefix, replacement in _prefixes(run_dir):
        text = text.replace(prefix, replacement)
    return _OTHER.sub(r"\1", text)


def strip_paths(obj: Any, run_dir: str = "") -> Any:
    """A copy of a JSON-like object with every string passed through `strip_text`."""
    if isinstance(obj, dict):
        return {k: strip_paths(v, run_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [strip_paths(v, run_dir) for v in obj]
    if isinstance(obj, str):
        return strip_text(obj, run_dir)
    return obj
