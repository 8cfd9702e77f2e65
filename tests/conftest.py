"""Shared fixtures: one real lab per test session, stopped at the end with nothing left behind.

Set GAMEDAY_LAB_STATE_DIR / GAMEDAY_LAB_BASE_PORT to run beside another lab. A lab that is
already up at that state dir is reused and left running (fast developer loop).
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from groundfloor.supervisor import poll_until
from woolab import manage, servers
from woolab.config import LabConfig
from woolab.events import read_events
from woolab.webhook import read_received

TEST_BASE_PORT = 25300
# each pytest-xdist worker's labs use their own block of ports: 25300, 27300, 29300, 31300 for
# four workers, all below Linux's ephemeral range (32768 and up), clear of the fixed ports of
# test_lab_lifecycle (26300), test_load_workers (27150-27159) and test_live_unit (28370-28398)
WORKER_PORT_STRIDE = 2000


def _ports_of_this_worker() -> None:
    """Under pytest-xdist (`make test`: one worker per core; CI: one more) every worker starts its own
    labs: worker N's base port is N blocks above the first, set before any test module reads it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        base = int(os.environ.get("GAMEDAY_LAB_BASE_PORT", TEST_BASE_PORT))
        os.environ["GAMEDAY_LAB_BASE_PORT"] = str(base + WORKER_PORT_STRIDE * int(worker[2:]))


_ports_of_this_worker()

# A test session started with SIGINT ignored (an asynchronous command of a shell without job
# control, `nohup`, some CI runners) passes that on to every chaos, gameday and Locust process it
# starts: the Ctrl-C tests would then time out or test nothing. Python's own handler here is
# turned back into the default by exec, so the children get a working Ctrl-C again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# The files that take longest (minutes of lab time, incl. their `slow` tests), longest first.
# pytest-xdist hands whole files (`--dist loadfile --no-loadscope-reorder`) to the workers in
# collection order, each worker taking the next file when it runs low: starting the long ones
# first lets the workers end together instead of one running a long file alone at the end.
# From `--durations=0` of a full CI run on the 2-core machine; unlisted files follow in their order.
LONGEST_FILES_FIRST = (
    "test_experiments.py", "test_network_experiments.py", "test_lab_tls.py", "test_bench_smoke.py",
    "test_lab_cluster.py", "test_timing_aws_lab.py", "test_matrix_lab.py", "test_live_lab.py",
    "test_fis_network_experiments.py", "test_packaging.py", "test_signals_lab.py",
    "test_report_baseline_lab.py", "test_safeguard_lab.py", "test_lab_network.py",
    "test_shop_rwsplit_lab.py", "test_lab_cluster_lag.py", "test_fis_lab.py", "test_lab_lifecycle.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept


CHECKOUT = Path(__file__).resolve().parents[1]
# what installing and importing leave in a checkout; not written by the tests themselves
NOT_TEST_OUTPUT = ("__pycache__", ".pytest_cache", ".egg-info", ".venv/", ".ci/venvs/", "build/")


def checkout_changes() -> set:
    """What git sees in the checkout beyond its commit: changes, new files, ignored files."""
    try:
        listed = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=CHECKOUT,
                                capture_output=True, text=True, timeout=60)
    except OSError:
        return set()
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): nothing to compare
        return set()
    return {line for line in listed.stdout.splitlines()
            if not any(part in line for part in NOT_TEST_OUTPUT)}


@pytest.fixture(scope="session", autouse=True)
def _no_test_writes_into_the_checkout():
    """Tests write only into temporary directories: a run leaves the checkout as it found it."""
    before = checkout_changes()
    yield
    written = checkout_changes() - before
    assert not written, f"tests wrote into the checkout: {sorted(written)}"


class LabHandle:
    """What a test needs of the running lab: its env, its control routes, its ground truth."""

    def __init__(self, config: LabConfig):
        self.config = config
        self.state_dir = config.state_dir
        self.env = manage.env(config.state_dir)
        self.secrets = json.loads(Path(config.state_dir, "secrets.json").read_text())

    def resolve(self, name: str) -> str:
        """The address an endpoint name has right now (the lab's DNS server, no caching)."""
        from groundfloor.resolve import Resolver
        return Resolver(self.env["GAMEDAY_DNS_SERVER"], cache_seconds=0).address(name)

    def call(self, path: str, method: str = "POST") -> dict:
        return manage.call(self.config, path, method=method)

    def snapshot(self) -> dict:
        return self.call("/_lab/status", method="GET")

    def wait_idle(self, timeout: float = 60) -> None:
        errors = self.call(f"/_lab/wait-idle?timeout={timeout}")["errors"]
        assert not errors, errors

    def failover_db(self, wait: bool = True) -> None:
        self.call("/_lab/db-failover?id=shop-db")
        if wait:
            self.wait_idle()

    def failover_cache(self, wait: bool = True) -> None:
        self.call("/_lab/cache-failover?id=shop-cache")
        if wait:
            self.wait_idle()

    def events(self, since: float = 0.0) -> list:
        return [e for e in read_events(self.state_dir / "events.jsonl") if e["time"] >= since]

    def webhooks(self, path: str = None) -> list:
        """Notifications the lab's webhook receiver got (path "/hook" or "/slack")."""
        return read_received(self.state_dir / "webhook", path)

    def aws_env(self, monkeypatch) -> None:
        """Point boto3 at the lab facade with fake credentials, for this test only."""
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    state_dir = Path(os.environ.get("GAMEDAY_LAB_STATE_DIR") or tmp_path_factory.mktemp("lab"))
    base_port = int(os.environ.get("GAMEDAY_LAB_BASE_PORT", TEST_BASE_PORT))
    reuse = manage.is_up(state_dir)
    config = LabConfig.from_env(state_dir=state_dir, base_port=base_port)
    if reuse:
        config = LabConfig.load(state_dir)
    else:
        manage.up(config)
    pids = dict(manage.recorded_pids(state_dir))
    yield LabHandle(LabConfig.load(state_dir))
    if reuse:
        return
    stop_lab(state_dir, pids)


def stop_lab(state_dir: Path, pids: dict) -> None:
    """Stop the lab and check that none of its processes (`pids` and recorded ones) is left."""
    manage.down(state_dir)
    pids = {**pids, **dict(manage.recorded_pids(state_dir))}
    poll_until(lambda: not any(servers.pid_alive(p) for p in pids.values()), 5)
    left = {name: pid for name, pid in pids.items() if servers.pid_alive(pid)}
    assert not left, f"lab processes left behind: {left}"
    busy = servers.busy_ports(LabConfig.load(state_dir).all_ports())
    assert not busy, f"ports still taken after the lab stopped: {servers.listening_processes(busy) or busy}"


CONVERGENCE_BOUND = 90.0  # seconds the fast lab may take to be whole again after a test


@pytest.fixture(autouse=True)
def _lab_whole_after_each_test(request):
    """A test that uses the shared lab leaves it with full redundancy (the lab heals on its own
    within the bound). One that does not fails itself, with what is missing and the lab's last
    events; the lab is then repaired, or restarted, so the next test starts on a whole lab."""
    yield
    handle = request.node.funcargs.get("lab")
    if not isinstance(handle, LabHandle):  # no shared lab here (or a module's own fake named `lab`)
        return
    if not manage.is_up(handle.state_dir):
        return  # the test stopped the lab on purpose (lifecycle tests); the next `lab` use fails loudly
    result = manage.converged(handle.state_dir, CONVERGENCE_BOUND)
    if result["converged"]:
        return
    if not manage.repair(handle.state_dir, CONVERGENCE_BOUND)["converged"]:
        manage.down(handle.state_dir)
        manage.up(handle.config)
    events = "\n".join(f"  {e['time']:.3f} {e['source_id']}: {e['message']}" for e in result["events"])
    pytest.fail(f"the lab was not whole {CONVERGENCE_BOUND:.0f} s after this test: "
                f"{'; '.join(result['problems'])}\nits last events:\n{events}", pytrace=False)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A copy of the recorded game-day run directory (reports write into the run dir they read)."""
    target = tmp_path / "run-1"
    shutil.copytree(Path(__file__).parent / "fixtures" / "report" / "gameday-run", target)
    return target


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """Tests that run the program in-process install its signal handlers; whatever one leaves
    behind is undone, since an ignored SIGINT would be inherited by every process started later."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
    saved = {number: signal.getsignal(number) for number in signals}
    yield
    for number, handler in saved.items():
        if handler is not None and signal.getsignal(number) is not handler:
            signal.signal(number, handler)


@pytest.fixture(autouse=True)
def _never_real_aws(monkeypatch):
    """No test may reach AWS: fake credentials, no profiles, no instance metadata."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def lab_env(lab, monkeypatch) -> dict:
    """The lab's environment (AWS_ENDPOINT_URL to the facade, endpoints, credentials) for one test."""
    lab.aws_env(monkeypatch)
    return lab.env


def second_lab_port() -> int:
    """Ports of a module's own lab: $GAMEDAY_LAB_SLOW_BASE_PORT, else 100 above the session lab's,
    so both may run at once."""
    return int(os.environ.get("GAMEDAY_LAB_SLOW_BASE_PORT")
               or int(os.environ.get("GAMEDAY_LAB_BASE_PORT", TEST_BASE_PORT)) + 100)


@contextlib.contextmanager
def module_lab(tmp_path_factory, name: str, **settings):
    """A lab of one test module with its own settings, stopped with nothing left behind."""
    state_dir = tmp_path_factory.mktemp(name)
    config = LabConfig.from_env(state_dir=state_dir, base_port=second_lab_port(), **settings)
    manage.up(config)
    pids = dict(manage.recorded_pids(state_dir))
    try:
        yield LabHandle(LabConfig.load(state_dir))
    finally:
        stop_lab(state_dir, pids)


@pytest.fixture(scope="module")
def timed_lab(request, tmp_path_factory):
    """A lab of the test module's own with the failover durations of its `LAB_TIMING` (e.g.
    `{"db_failover_outage_seconds": 20}`), stopped after the module."""
    with module_lab(tmp_path_factory, "timed-lab", **request.module.LAB_TIMING) as handle:
        yield handle


@pytest.fixture(scope="module")
def cluster_lab(tmp_path_factory):
    """A lab whose DB is a Multi-AZ DB cluster (`gameday lab up --db cluster`) of the test
    module's own, stopped after the module."""
    with module_lab(tmp_path_factory, "cluster-lab", db_topology="cluster") as handle:
        yield handle


def assert_cluster_whole(handle: LabHandle, bound: float) -> None:
    """A cluster lab whole again within `bound` s: available, both readers replicating."""
    result = manage.converged(handle.state_dir, bound)
    assert result["converged"], result["problems"]


def rds_client(handle: LabHandle):
    """boto3's RDS client on a lab's AWS API."""
    import boto3
    return boto3.client("rds", endpoint_url=handle.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="lab", aws_secret_access_key="lab")


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory):
    """An encrypted lab (`gameday lab up --tls`) of the test module's own, stopped after the module."""
    with module_lab(tmp_path_factory, "tls-lab", tls=True) as handle:
        yield handle


@pytest.fixture
def aws_clean_env(monkeypatch, tmp_path):
    """No lab variables, an empty AWS config, reports in a temporary directory."""
    for key in list(os.environ):
        if key.startswith(("GAMEDAY_", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("GAMEDAY_REPORTS_DIR", str(tmp_path / "reports"))
    return monkeypatch
