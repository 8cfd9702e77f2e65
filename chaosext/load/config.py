"""Where a run's load files live and which shop they measure, from configuration or environment.

One lookup shared by the control and the probes, so they always agree on the run directory:
``run_dir`` argument > configuration ``gameday_run_dir`` > ``$GAMEDAY_RUN_DIR``.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping, Optional

from chaosext.errors import ActivityError
from chaosext.settings import flag
from groundfloor import run_files

__all__ = ["run_dir_of", "new_run_dir", "shop_url_of", "flag"]

RUN_DIR_KEY = run_files.RUN_DIR_KEY
RUN_DIR_ENV = run_files.RUN_DIR_ENV
SHOP_URL_KEYS = ("shop_url", "gameday_shop_url")
SHOP_URL_ENV = "GAMEDAY_SHOP_URL"


def run_dir_of(configuration: Optional[Mapping[str, Any]] = None,
               run_dir: Optional[str] = None) -> str:
    """The run directory the load writes to; ActivityError when none is configured."""
    found = run_dir or (configuration or {}).get(RUN_DIR_KEY) or os.environ.get(RUN_DIR_ENV)
    if not found:
        raise ActivityError("no run directory: set configuration gameday_run_dir or "
                            "$GAMEDAY_RUN_DIR (the load control sets it when it starts)")
    return os.path.abspath(str(found))


def new_run_dir(base: str = "reports") -> str:
    """A fresh ``reports/load-<UTC time>`` directory name for a run that configured none."""
    return os.path.abspath(os.path.join(base, time.strftime("load-%Y%m%dT%H%M%SZ", time.gmtime())))


def shop_url_of(configuration: Optional[Mapping[str, Any]] = None,
                url: Optional[str] = None) -> Optional[str]:
    """The shop's base URL: argument > configuration shop_url > $GAMEDAY_SHOP_URL."""
    configuration = configuration or {}
    for candidate in (url, *(configuration.get(k) for k in SHOP_URL_KEYS),
                      os.environ.get(SHOP_URL_ENV)):
        if candidate:
            return str(candidate).rstrip("/")
    return None

