"""Who used the machine while a benchmark ran: CPU shares of the lab's processes, the load
generator and everyone else (what limits a throughput figure), and the memory of the Locust
processes the bench starts. Read from /proc (Linux)."""
import contextlib
import os
import resource
import time
from pathlib import Path

from woolab import manage, servers

from .probes import BackgroundSampler

__all__ = ["CpuShares", "LocustMemory"]


def _ticks(pid) -> int:
    """CPU time (clock ticks) a live process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0


def _machine_ticks():
    """(busy, total) clock ticks over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def _lab_processes(state_dir: Path) -> dict:
    """Live lab pids grouped by kind (gunicorn workers counted with the shop). From the lab's
    status, not its pid files: a failover restarts nodes under new pids."""
    found = {}
    for node in manage.status(state_dir)["nodes"]:
        if node["pid"]:
            found.setdefault(node["kind"], set()).update({node["pid"]} | servers.child_pids(node["pid"]))
    state = manage.controller_state(state_dir) or {}
    if state.get("controller_pid"):
        found["lab controller"] = {state["controller_pid"]}
    return found


class CpuShares:
    """Who used the machine's cores while a benchmark ran: says what limits its throughput."""

    def __init__(self, state_dir: Path, label: str = ""):
        self.state_dir = state_dir
        self.label = label

    def __enter__(self):
        self.groups = _lab_processes(self.state_dir)
        self.before = {g: sum(_ticks(p) for p in pids) for g, pids in self.groups.items()}
        self.machine = _machine_ticks()
        self.children = _children_cpu_seconds()
        return self

    def __exit__(self, *exc):
        busy0, total0 = self.machine
        busy1, total1 = _machine_ticks()
        total = max(1, total1 - total0)
        self.busy = 100.0 * (busy1 - busy0) / total
        hz = os.sysconf("SC_CLK_TCK")
        self.cpu_seconds = {g: (sum(_ticks(p) for p in pids) - self.before[g]) / hz
                            for g, pids in self.groups.items()}
        # Locust processes this script started and reaped (their CPU lands in RUSAGE_CHILDREN)
        self.cpu_seconds["load generator"] = _children_cpu_seconds() - self.children
        used = {g: 100.0 * seconds * hz / total for g, seconds in self.cpu_seconds.items()}
        shown = sorted(((share, g) for g, share in used.items() if share >= 1.0), reverse=True)
        rest = self.busy - sum(used.values())
        self.limit = shown[0][1] if shown else "nothing measured"
        self.text = (f"{os.cpu_count()} cores {self.busy:.0f}% busy: "
                     + ", ".join(f"{g} {share:.0f}%" for share, g in shown)
                     + f", others on the machine {max(0.0, rest):.0f}%")
        return False

    def verdict(self) -> str:
        return "CPU-bound" if self.busy >= 90 else "waits, not CPU"


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _child_pids() -> set:
    """Children of this process, whichever thread started them."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (task / "children").read_text().split()}
    return pids


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


class LocustMemory(BackgroundSampler):
    """Samples the RSS of every Locust process this script starts, by locust file."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.samples = {}  # pid -> (locust file name, [(seconds since first seen, MB)], first seen)
        super().__init__()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _child_pids():
                with contextlib.suppress(OSError):
                    cmd = servers.pid_cmdline(pid)
                    if "locust" not in cmd:
                        continue
                    name = next((Path(a).name for a in cmd.split() if a.endswith(".py")), "?")
                    first = self.samples.setdefault(pid, (name, [], time.monotonic()))
                    first[1].append((time.monotonic() - first[2], _rss_mb(pid)))

    def growth(self, locustfile: str, warm: float = 3.0):
        """(MB after `warm` s, MB at the end) of the last run of `locustfile`."""
        runs = [s for name, s, _ in self.samples.values() if name == locustfile and s]
        if not runs:
            return None
        samples = runs[-1]
        warmed = next((mb for t, mb in samples if t >= warm), samples[0][1])
        return warmed, samples[-1][1]
