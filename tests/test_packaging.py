"""The pack as pip installs it: the wheel and the sdist carry the experiment catalogue and the
Locust files, declare what the code imports, pass `twine check`, and an installed `gameday`
works from any directory without writing into site-packages."""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from gameday.run import EXPERIMENTS_DIR
from woolab import config

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = sorted(p.name for p in EXPERIMENTS_DIR.glob("*.json"))
LOCUST_FILES = ("shopper.py", "bare.py")
# imported by the code (not only by the tests), so a plain install must bring them
DIRECT_IMPORTS = ("chaostoolkit", "chaostoolkit-lib", "chaostoolkit-addons", "boto3", "botocore",
                  "redis", "dnspython", "PyMySQL", "locust", "gevent", "psutil", "matplotlib", "numpy", "Pillow")
# the environment may forbid .pyc files; that note is not a packaging problem
HARMLESS = re.compile(r"byte-compiling is disabled")


def copy_source(dest: Path) -> None:
    """The files git would ship (tracked and new, not ignored): building in a copy keeps the
    build's egg-info and build/ out of the checkout."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src, target = ROOT / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """(wheel, sdist, build output) built as `python -m build` does: the sdist, then the wheel
    from the sdist (so a file missing from the sdist is missing from the wheel too)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    copy_source(src)
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return wheel, sdist, result.stdout + result.stderr


def test_wheel_and_sdist_carry_the_catalogue_and_the_locust_files(dist):
    wheel, sdist, _ = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"gameday/experiments/{n}" for n in CATALOGUE} <= names
    assert {f"chaosext/loadtests/{n}" for n in LOCUST_FILES} <= names
    assert "gameday/policy/gameday-policy.json" in names  # the preflight reads it
    assert not any(n.startswith(("tests/", "experiments/", "loadtests/")) for n in names)
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {f"gameday/experiments/{n}" for n in CATALOGUE} <= members
    assert {f"chaosext/loadtests/{n}" for n in LOCUST_FILES} <= members
    assert "constraints/minimum.txt" in members


def test_wheel_declares_what_the_code_imports_and_keeps_gunicorn_in_the_lab_extra(dist):
    wheel = dist[0]
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    base = {re.split(r"[\[<>=;! ]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r}
    assert {name.lower() for name in DIRECT_IMPORTS} <= base
    assert "gunicorn" not in base
    assert any(r.startswith("gunicorn") and 'extra == "lab"' in r for r in requires)
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in meta


def test_build_and_twine_check_are_clean(dist):
    wheel, sdist, output = dist
    warnings = [line for line in output.splitlines()
                if re.search(r"warn|deprecat", line, re.I) and not HARMLESS.search(line)]
    assert warnings == []
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_minimum_constraints_pin_every_floor_of_setup_cfg():
    """constraints/minimum.txt is what CI installs to prove the lowest allowed versions work."""
    pins = dict(line.split("==") for line in (ROOT / "constraints" / "minimum.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    text = (ROOT / "setup.cfg").read_text()
    for name, version in pins.items():
        floor = re.search(rf"^\s+{re.escape(name)}(\[[^\]]*\])?>=([\d.]+)", text, re.M | re.I)
        assert floor, f"{name} has no floor in setup.cfg"
        assert version.startswith(floor.group(2)), (name, version, floor.group(2))
    assert {n.lower() for n in DIRECT_IMPORTS} | {"gunicorn"} <= {n.lower() for n in pins}


# ---------------------------------------------------------------- where an installed pack writes
def test_lab_state_goes_to_the_user_state_dir_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("GAMEDAY_LAB_STATE_DIR", raising=False)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path / "site-packages")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert config.default_state_dir() == tmp_path / "state" / "failover-gameday" / "lab"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.default_state_dir() == tmp_path / "home" / ".local" / "state" / "failover-gameday" / "lab"
    monkeypatch.setenv("GAMEDAY_LAB_STATE_DIR", str(tmp_path / "chosen"))
    assert config.LabConfig.from_env().state_dir == tmp_path / "chosen"


def test_lab_state_stays_in_the_checkout_for_developers(monkeypatch):
    monkeypatch.delenv("GAMEDAY_LAB_STATE_DIR", raising=False)
    assert config.default_state_dir() == ROOT / ".lab"


@pytest.mark.install
@pytest.mark.timeout(1200)  # pip installs the wheel with its dependencies
@pytest.mark.lab
def test_installed_wheel_lists_the_catalogue_dry_runs_and_runs_from_any_directory(dist, lab, tmp_path):
    """A fresh venv, `pip install 'failover-gameday[lab]'` from the wheel, then `gameday` in a
    directory of the user's: the catalogue, the read-only dry run, a real run against the
    (running) lab with its files under ./reports, and nothing written inside site-packages."""
    env_dir, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    venv.create(env_dir, with_pip=True)
    python, gameday = env_dir / "bin" / "python", str(env_dir / "bin" / "gameday")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", f"{dist[0]}[lab]"],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    site = Path(subprocess.run([str(python), "-c", "import gameday, pathlib; "
                                "print(pathlib.Path(gameday.__file__).parent.parent)"],
                               capture_output=True, text=True, check=True, cwd=work).stdout.strip())
    assert site != ROOT and "site-packages" in str(site)
    before = {p for p in site.rglob("*") if "__pycache__" not in p.parts}
    env = {"PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"),
           "GAMEDAY_LAB_STATE_DIR": str(lab.state_dir), "AWS_EC2_METADATA_DISABLED": "true"}
    listed = subprocess.run([gameday, "list"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [n[:-5] for n in CATALOGUE]
    dry = subprocess.run([gameday, "run", "rds-force-failover", "--dry-run"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
    assert list(work.iterdir()) == []  # the dry run writes nothing
    run = subprocess.run([gameday, "run", "rds-force-failover", "--users", "4", "--run-id", "wheel-run"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    run_dir = work / "reports" / "wheel-run"
    assert (run_dir / "report.html").is_file() and (run_dir / "timeline.jsonl").is_file()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    written = {p for p in site.rglob("*") if "__pycache__" not in p.parts} - before
    assert written == set()
