"""Between two experiments of a suite: put back what the first changed, then check the lab.

An experiment leaves its target working but not as it found it: the DB writer and the cache
primary sit in other AZs, a replacement node may still be catching up, a shop setting or a
power cut may linger. The next experiment must start from the same place as if it ran alone,
or its figures measure the previous one. So, in order:

1. fail the resources back to the placement the run recorded before its faults
   (gameday/failback.py: one more failover each, only where something moved);
2. on the lab, wait for full redundancy (`GET /_lab/converged`), and if it does not come,
   the lab's last resort (`POST /_lab/repair`: power back, frozen nodes resumed, impairments
   cleared, healing retried);
3. on the lab, the steady state before the next run: the shop's product list answers 200.

The next experiment's own steady-state hypothesis then runs before its method, as always.
"""
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

from chaosext.errors import GamedayError
from groundfloor.supervisor import poll_until
from groundfloor import run_files

__all__ = ["restore"]

PRODUCTS = "/wp-json/wc/store/v1/products"


def _failback(run_dir: Path, state_dir: Path, yes: bool) -> str:
    """Fail back what the run moved; a run without a recorded placement has nothing to undo."""
    from ..failback import failback
    try:
        target = json.loads((run_dir / run_files.TARGET).read_text())
    except (OSError, ValueError):
        return "no target.json: nothing recorded to fail back"
    if not target.get("original"):
        return "no placement recorded before the run: nothing to fail back"
    failback(target, yes=yes, state_dir=state_dir)
    return "failed back to the placement before the run"


def _shop_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url + PRODUCTS, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def _lab_converged(state_dir: Path, timeout: float) -> Dict[str, Any]:
    from woolab import manage
    result = manage.converged(state_dir, timeout)
    if result.get("converged"):
        return {"converged": True, "repaired": False, "problems": []}
    repaired = manage.repair(state_dir, timeout)
    return {"converged": bool(repaired.get("converged")), "repaired": True,
            "problems": list(repaired.get("problems") or result.get("problems") or [])}


def restore(run_dir: Path, target: str, state_dir: Optional[Path], yes: bool = True,
            timeout: float = 120.0) -> Dict[str, Any]:
    """Restore after the run in `run_dir`; returns what was done and whether the steady state
    holds ({"ok", "failback", "converged", "repaired", "problems", "shop_status", "seconds"})."""
    started = time.monotonic()
    try:
        failed_back = _failback(run_dir, state_dir, yes)
    except GamedayError as exc:
        failed_back = f"failback failed: {exc}"
    out: Dict[str, Any] = {"failback": failed_back, "converged": None, "repaired": False,
                           "problems": [], "shop_status": None}
    if target == "lab":
        from woolab import manage
        out.update(_lab_converged(state_dir, timeout))
        shop = manage.env(state_dir).get("GAMEDAY_SHOP_URL")
        if shop:
            out["shop_status"] = poll_until(lambda: _shop_status(shop) == 200 and 200, 30.0, 0.5) \
                or _shop_status(shop)
    out["ok"] = (not failed_back.startswith("failback failed")) and out["converged"] is not False \
        and out["shop_status"] in (None, 200)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out
