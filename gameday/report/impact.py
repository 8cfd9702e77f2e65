"""What each fault did to shoppers: seconds with errors, failed checkouts, steps hit, shoppers.

The RTO says when the data plane took writes again; shoppers can be hurt before, during and
after that (reconnects, a cache warming up). So a fault is charged with every failed request
from its injection until the next fault's injection (or the end of the timeline). Refusals that
are business as usual (a product out of stock) are not outage errors and are not counted.

Shoppers affected: the load timeline counts requests, not people. When its lines carry
`failed_shoppers` (ids of shoppers with a failed request in that second) the figure is exact;
otherwise it is an upper bound, the smaller of the shopper count and the failed requests.
"""
from typing import Dict, List, Optional, Tuple

__all__ = ["NOT_OUTAGE", "outage_failures", "fault_impacts"]

NOT_OUTAGE = ("out_of_stock",)  # error-class substrings that shoppers see without any fault


def outage_failures(cell: dict) -> int:
    """Failed requests of a timeline cell, minus the business-as-usual refusals."""
    ignored = sum(n for key, n in (cell.get("errors") or {}).items()
                  if any(part in key for part in NOT_OUTAGE))
    return max(0, int(cell.get("failures", 0)) - ignored)


def _bounds(starts: List[Optional[float]], last_second: int) -> List[Tuple[float, float]]:
    """Each fault's charge window: its injection until the next injection or the timeline end."""
    known = sorted(s for s in starts if s is not None)
    out = []
    for start in starts:
        if start is None:
            out.append((None, None))
            continue
        later = [s for s in known if s > start]
        out.append((start, min(later) if later else last_second + 1))
    return out


def _impact(cells: Dict[Tuple[int, str], dict], start: float, end: float,
            users: Optional[int]) -> Dict[str, object]:
    seconds, steps, shoppers = set(), {}, set()
    failed = checkouts = 0
    exact = True
    for (t, step), cell in cells.items():
        if t + 1 <= start or t + 1 > end:  # the second of the next injection is the next fault's
            continue
        n = outage_failures(cell)
        if not n:
            continue
        seconds.add(t)
        failed += n
        steps[step] = steps.get(step, 0) + n
        if step == "checkout":
            checkouts += n
        if "failed_shoppers" in cell:
            shoppers.update(cell["failed_shoppers"])
        else:
            exact = False
    first, last = (min(seconds), max(seconds)) if seconds else (None, None)
    bound = failed if users is None else min(users, failed)
    return {"error_seconds": len(seconds),
            "affected_from_seconds": None if first is None else round(max(0.0, first - start), 1),
            "affected_for_seconds": None if first is None else last + 1 - first,
            "failed_requests": failed, "failed_checkouts": checkouts,
            "affected_steps": sorted(steps, key=lambda s: (-steps[s], s)),
            "shoppers_affected": len(shoppers) if exact else None,
            "shoppers_affected_at_most": len(shoppers) if exact else bound}


def fault_impacts(cells: Dict[Tuple[int, str], dict], starts: List[Optional[float]],
                  users: Optional[int]) -> List[Optional[Dict[str, object]]]:
    """Per fault (same order as `starts`, epoch seconds of injection): its shopper impact."""
    if not cells:
        return [None for _ in starts]
    last_second = max(t for t, _ in cells)
    return [None if start is None else _impact(cells, start, end, users)
            for start, end in _bounds(starts, last_second)]
