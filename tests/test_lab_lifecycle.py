"""`gameday lab up | down | status | env`: idempotence, clean errors, crash recovery, no leftovers."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from groundfloor.supervisor import poll_until
from woolab import manage, servers
from woolab.config import LabConfig
from woolab.errors import LabStartError

BASE_PORT = 26300


def gameday(state_dir, *args, base_port=BASE_PORT):
    env = dict(os.environ, GAMEDAY_LAB_STATE_DIR=str(state_dir), GAMEDAY_LAB_BASE_PORT=str(base_port))
    return subprocess.run([sys.executable, "-m", "gameday.cli", "lab", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_down_and_status_when_nothing_runs_are_clear_and_harmless(tmp_path):
    down = gameday(tmp_path, "down")
    assert down.returncode == 0 and "not up" in down.stdout
    status = gameday(tmp_path, "status")
    assert status.returncode == 1
    assert status.stderr.count("\n") == 1 and "the lab is not up" in status.stderr
    assert "Traceback" not in status.stderr


def test_missing_debian_packages_are_named_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(servers, "SEARCH_PATH", str(tmp_path))
    assert servers.missing_packages() == ["mariadb-client", "mariadb-client-core", "mariadb-server",
                                          "redis-sentinel", "redis-server"]
    with pytest.raises(LabStartError, match="apt-get install"):
        manage.up(LabConfig.from_env(state_dir=tmp_path / "lab", base_port=BASE_PORT))


@pytest.mark.lab
def test_port_in_use_gives_one_line_and_leaves_nothing_running(tmp_path):
    config = LabConfig.from_env(state_dir=tmp_path, base_port=BASE_PORT)
    with socket.socket() as blocker:
        blocker.bind((config.db_node_address(0), config.db_endpoint_port))  # the DB primary's host
        blocker.listen()
        result = gameday(tmp_path, "up")
    assert result.returncode == 1
    assert f"port(s) in use: {config.db_node_address(0)}:{config.db_endpoint_port}" in result.stderr
    assert f"pid {os.getpid()}: " in result.stderr  # the holder, named (this test's process)
    assert "Traceback" not in result.stderr
    assert not manage.is_up(tmp_path)


@pytest.mark.lab
def test_lab_up_twice_status_env_crash_recovery_and_down(tmp_path):
    first = gameday(tmp_path, "up", "--no-shop")
    assert first.returncode == 0, first.stderr
    try:
        again = gameday(tmp_path, "up")
        assert again.returncode == 0 and "already up" in again.stdout

        status = json.loads(gameday(tmp_path, "status", "--json").stdout)
        nodes = {n["name"]: n for n in status["nodes"]}
        assert nodes["shop-db-a"]["role"] == "primary" and nodes["shop-db-a"]["az"] == "us-east-1a"
        assert nodes["shop-db-b"]["role"] == "standby" and nodes["shop-db-b"]["az"] == "us-east-1b"
        assert nodes["shop-cache-001"]["role"] == "primary" and nodes["shop-cache-002"]["role"] == "replica"
        assert all(n["healthy"] for n in status["nodes"])
        assert oct(os.stat(tmp_path / "secrets.json").st_mode & 0o777) == "0o600"

        exports = gameday(tmp_path, "env").stdout.splitlines()
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{BASE_PORT}" in exports
        assert all(line.startswith("export ") for line in exports)

        # the controller dies hard: the next `up` cleans up by pid and starts a working lab
        crashed_pids = manage.recorded_pids(tmp_path)
        controller = json.loads((tmp_path / "lab.json").read_text())["controller_pid"]
        os.kill(controller, signal.SIGKILL)
        assert poll_until(lambda: not servers.pid_alive(controller), 5)
        restarted = gameday(tmp_path, "up", "--no-shop")
        assert restarted.returncode == 0, restarted.stderr
        assert not any(servers.pid_alive(pid) for name, pid in crashed_pids.items())
    finally:
        pids = manage.recorded_pids(tmp_path)
        stopped = gameday(tmp_path, "down")
    assert stopped.returncode == 0 and "lab stopped" in stopped.stdout
    assert not [name for name, pid in pids.items() if servers.pid_alive(pid)]
    assert "not up" in gameday(tmp_path, "down").stdout
