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
from woolab.servers import port_in_use


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


# The main thread ends (as it does first when a process exits) while another thread keeps the
# process's listening socket open for two more seconds.
MAIN_THREAD_GONE_FIRST = """
import ctypes, socket, threading, time
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0)); server.listen()
threading.Thread(target=time.sleep, args=(2,)).start()
print(server.getsockname()[1], flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_has_exited_is_alive_until_its_last_thread_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_GONE_FIRST], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        assert poll_until(lambda: _is_zombie(proc.pid), 5, 0.01)  # what psutil shows as the process's state
        assert port_in_use(port) and pid_alive(proc.pid)  # ... yet it still holds its port
        assert poll_until(lambda: not pid_alive(proc.pid), 10, 0.01)
        assert not port_in_use(port)  # dead means its port is free for the next lab
    finally:
        proc.kill()
        proc.wait()


def _is_zombie(pid: int) -> bool:
    import psutil
    return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
