"""Benchmark figures for the project's performance targets. Prints a table and writes reports/bench.json.

Run with `make bench` (or `--only SECTION`, `--smoke` for one short round of every section).
Each section is a module `scripts/bench_<name>.py` defining `SECTION`; it is listed once in
SECTIONS below. A section that fails or runs past its bound prints one line and the others still
run; the exit code is 1 when any section failed or printed no figure. One lab (base port 27300,
or $GAMEDAY_LAB_BASE_PORT; a temporary state dir) serves every section that needs it and is
stopped at the end, also on SIGTERM or Ctrl-C. The machine's load average is recorded with the
figures: on a shared machine they are noisy.
"""
import argparse
import contextlib
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchkit.core import BoundExceeded, Context, Figures, bounded, load_average  # noqa: E402
from benchkit.labs import BASE_PORT, install_signal_handlers, lab_running  # noqa: E402

# The sections, in running order: each name is the module scripts/bench_<name>.py.
SECTIONS = ("lab", "convergence", "crashes", "facade", "shop", "load", "capacity", "extension", "liveview",
            "report", "history", "pulse", "tls", "network")
SMOKE = {"rounds": 1, "stress_failovers": 1, "rto_rounds": 1, "seconds": 2.0, "capacity_users": 8, "capacity_rounds": 1,
         "capacity_ladder": [8], "liveview_rounds": 1}


def load_section(name: str):
    """The SECTION of scripts/bench_<name>.py."""
    return importlib.import_module(f"bench_{name}").SECTION


def run_section(section, config, args, figures: Figures) -> None:
    """One section under its overall bound; a failure is one line and does not stop the others."""
    print(section.name, flush=True)
    work = args.work / section.name
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(section.name, config, args, work, figures)
    began = time.monotonic()
    try:
        if section.needs_lab and config is None:
            raise RuntimeError("the bench's lab is not running")
        with bounded(f"section {section.name}", section.bound(args)):
            section.run(ctx)
    except BoundExceeded as error:
        figures.error(section.name, str(error))
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        figures.error(section.name, f"{type(error).__name__}: {message}")
    if not figures.by_section.get(section.name):
        figures.error(section.name, "printed no figure")
    print(f"  ({section.name}: {time.monotonic() - began:.0f} s)", flush=True)


def run_all(sections, args, figures: Figures) -> None:
    """The lab sections on one shared lab (always stopped), then the others."""
    from woolab.config import LabConfig
    lab_sections = [s for s in sections if s.needs_lab]
    if lab_sections:
        config = LabConfig.from_env(state_dir=args.work / "lab", base_port=BASE_PORT, timing=args.timing)
        with lab_running(config, figures) as lab:
            for section in lab_sections:
                run_section(section, lab, args, figures)
    for section in sections:
        if not section.needs_lab:
            run_section(section, None, args, figures)


def write_figures(figures: Figures, out: Path, merge: bool) -> None:
    """reports/bench.json; with `merge` (one section run) the other sections' figures are kept."""
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = {}
    if merge and out.exists():
        with contextlib.suppress(ValueError):
            previous = json.loads(out.read_text()).get("figures", {})
    current = figures.by_section
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "figures": {s: {**previous.get(s, {}), **current.get(s, {})}
                                           for s in {**previous, **current}}}, indent=2))
    print(f"figures written to {out}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run this section (repeatable; default: all)")
    parser.add_argument("--smoke", action="store_true",
                        help="one round of every section at its shortest durations (checks no target)")
    parser.add_argument("--timing", default="fast", help="the lab's timing profile: fast (default) or aws")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json",
                        help="where the figures go (default reports/bench.json)")
    parser.add_argument("--rounds", type=int, default=20, help="lab failovers per kind (default 20)")
    parser.add_argument("--stress-failovers", type=int, default=30,
                        help="failovers per kind of the convergence section, on a busy machine (default 30)")
    parser.add_argument("--rto-rounds", type=int, default=5,
                        help="extension failovers per action compared with ground truth (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each shop and Locust run (default 10)")
    parser.add_argument("--capacity-users", type=int, default=64,
                        help="Locust users of the capacity runs (default 64; 0 skips them)")
    parser.add_argument("--capacity-rounds", type=int, default=2,
                        help="alternating rounds of each capacity run (default 2)")
    parser.add_argument("--capacity-ladder", type=int, nargs="+", default=[60, 120, 240, 480, 960, 1920],
                        help="game-day user counts tried in turn until one does not pass")
    parser.add_argument("--liveview-rounds", type=int, default=2,
                        help="alternating rounds of the web UI vs headless load runs (default 2)")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    names = args.only or list(SECTIONS)
    sections = [load_section(name) for name in names]
    if any(s.needs_lab for s in sections):
        from woolab import servers
        missing = servers.missing_packages()
        if missing:
            print("bench: missing Debian packages: " + " ".join(missing), file=sys.stderr)
            return 1
    figures = Figures()
    began = time.monotonic()
    print(f"load average at start: {load_average()}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
            args.work = Path(tmp)
            run_all(sections, args, figures)
    except (KeyboardInterrupt, SystemExit) as stop:
        code = 130 if isinstance(stop, KeyboardInterrupt) else stop.code
        print(f"bench: stopped ({'Ctrl-C' if code == 130 else f'exit {code}'}); its labs are down",
              file=sys.stderr)
        return code
    print(f"total {time.monotonic() - began:.0f} s; load average at the end: {load_average()}")
    write_figures(figures, args.out, merge=bool(args.only))
    failed = [n for n in names if "error" in figures.by_section.get(n, {"error": "no figure"})]
    if failed:
        print(f"bench: sections that failed: {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
