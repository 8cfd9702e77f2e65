"""The lab's process table (woolab/parts.py): one process per node name. A node started again
while its old process still runs must not leave that one untracked: it would outlive the lab,
holding the node's port and socket (seen as a mariadbd answering for a deleted data directory,
and the next lab failing to bind the port)."""
import subprocess
import sys
import threading
import types

from groundfloor.supervisor import pid_alive, poll_until
from woolab.parts import LabProcesses


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_second_start_under_the_same_name_stops_the_first():
    procs = LabProcesses(types.SimpleNamespace(lock=threading.Lock(), processes={}))
    first, second = _sleeper(), _sleeper()
    try:
        procs.add("shop-db-a", first)
        procs.add("shop-db-a", second)
        assert poll_until(lambda: not pid_alive(first.pid), 5, 0.05)
        assert procs.pid("shop-db-a") == second.pid and pid_alive(second.pid)
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()
