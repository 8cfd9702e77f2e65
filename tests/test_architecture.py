"""The floors hold (docs/architecture.md): each package imports only downward, the lab's shop runs
without Chaos Toolkit, and modules and functions stay small enough to read in one sitting."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the packages of this project it must never import
FORBIDDEN = {
    "groundfloor": {"chaosext", "woolab", "gameday", "loadtests", "chaoslib", "chaostoolkit"},
    "chaosext": {"woolab", "gameday"},
    "woolab": {"chaosext", "gameday", "loadtests"},
}
PACKAGES = ("groundfloor", "chaosext", "woolab", "gameday")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules(package: str):
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported_roots(path: Path) -> set:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_the_floors_below_it(package):
    crossings = {f"{path.relative_to(ROOT)} imports {', '.join(sorted(imported_roots(path) & FORBIDDEN[package]))}"
                 for path in modules(package) if imported_roots(path) & FORBIDDEN[package]}
    assert not crossings, sorted(crossings)


def test_importing_the_lab_and_its_shop_does_not_import_chaos_toolkit_or_the_extension():
    code = ("import sys, woolab.lab, woolab.shop.app, woolab.controller; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('chaoslib', 'chaosext', 'gameday')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_longer_than_it_can_be_read(package):
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in modules(package)
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, long


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_longer_than_a_screen(package):
    long = []
    for path in modules(package):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not long, long
