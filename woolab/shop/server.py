"""How the lab starts the shop: the gunicorn command line, chosen for throughput on 2 cores.

Measured on the 2-core lab machine with the load generator beside it (see docs/shop.md):
WORKER_CLASS/WORKERS/THREADS below were the best of the tried combinations.
"""
from __future__ import annotations

import os
import sys
from typing import List

from .config import ACCESS_LOG_ENV, CONFIG_ENV

WORKER_CLASS = "gthread"
WORKERS = 2
THREADS = 8
# must exceed the worst Redis retry budget: (max_retries+1) * read_write_timeout + retries * wait
TIMEOUT = 60


def gunicorn_argv(config_path: str, port: int, access_log: str, workers: int = WORKERS,
                  threads: int = THREADS, worker_class: str = WORKER_CLASS) -> List[str]:
    """argv for ``subprocess.Popen`` starting the shop on 127.0.0.1:port with the given config."""
    return [
        sys.executable, "-m", "gunicorn", "woolab.shop.wsgi:app",
        "--bind", f"127.0.0.1:{int(port)}",
        "--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads),
        "--timeout", str(TIMEOUT), "--graceful-timeout", "10", "--keep-alive", "30",
        "--backlog", "2048",
        "--env", f"{CONFIG_ENV}={os.path.abspath(config_path)}",
        "--env", f"{ACCESS_LOG_ENV}={os.path.abspath(access_log)}",
        "--log-level", "warning", "--error-logfile", "-",
    ]
