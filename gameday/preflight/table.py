"""The preflight's rows and the one table they print as.

Each row says what was checked, what was found and, when something is missing, how to fix it.
FAIL rows make the run "not ready"; WARN rows are printed but do not block.
"""
from dataclasses import dataclass
from typing import Iterable, List, Optional

__all__ = ["Row", "OK", "WARN", "FAIL", "INFO", "render", "ready"]

OK, WARN, FAIL, INFO = "ok", "WARN", "FAIL", "info"


@dataclass
class Row:
    section: str  # credentials | allow-lists | target | iam | reach | store | plan
    item: str
    status: str
    detail: str
    fix: Optional[str] = None

    def as_dict(self) -> dict:
        return {"section": self.section, "item": self.item, "status": self.status,
                "detail": self.detail, "fix": self.fix}


def ready(rows: Iterable[Row]) -> bool:
    return not any(r.status == FAIL for r in rows)


def render(rows: List[Row]) -> str:
    """One plain-text table; a fix goes on its own indented line under its row."""
    widths = [max([len(h)] + [len(getattr(r, f)) for r in rows])
              for h, f in (("SECTION", "section"), ("CHECK", "item"), ("STATUS", "status"))]
    head = f"{'SECTION':<{widths[0]}}  {'CHECK':<{widths[1]}}  {'STATUS':<{widths[2]}}  DETAIL"
    lines = [head]
    for r in rows:
        lines.append(f"{r.section:<{widths[0]}}  {r.item:<{widths[1]}}  {r.status:<{widths[2]}}  "
                     f"{r.detail}")
        if r.fix and r.status in (FAIL, WARN):
            lines.append(f"{'':<{widths[0] + widths[1] + widths[2] + 6}}fix: {r.fix}")
    return "\n".join(lines)
