"""Earlier suites: the trend `gameday history` prints and the `--baseline last:N` gate.

A suite directory is marked by its `suite.json` (the suite as it ran); its `summary.json` is
the suite's, its experiments' run directories lie beside it. The baseline of a suite is the
median score of the last N passing suites of the same name, target and timing profile; the
suite regresses when its score falls more than `SCORE_TOLERANCE` points below that, or when
any experiment's key figure regressed against that experiment's own earlier passing runs
(gameday/report/baseline.py, with its default tolerances).
"""
import json
import os
import statistics
from typing import Any, Dict, List

from chaosext.errors import GamedayError
from groundfloor import run_files

__all__ = ["SUITE_MARK", "SUITE_SCHEMA", "SCORE_TOLERANCE", "parse_baseline", "find_suites",
           "suite_baseline", "trend_lines", "trends_html"]

SUITE_MARK = "suite.json"
SUITE_SCHEMA = "failover-gameday/suite-summary/1"
SCORE_TOLERANCE = 5.0  # score points a suite may lose against its baseline


def parse_baseline(spec: str) -> int:
    """`last:N` → N; anything else is one clear error (a suite has no single baseline run)."""
    count = spec[5:] if spec.startswith("last:") else ""
    if not count.isdigit() or int(count) < 1:
        raise GamedayError(f"--baseline {spec!r}: a suite compares with earlier suites, give last:N "
                           "(N ≥ 1)")
    return int(count)


def find_suites(reports: str, max_depth: int = 4) -> List[Dict[str, Any]]:
    """Every suite summary under `reports`, oldest first (unreadable ones are left out)."""
    found = []
    base = os.path.abspath(reports)
    for root, dirs, files in os.walk(base):
        if SUITE_MARK in files and run_files.SUMMARY in files:
            try:
                with open(os.path.join(root, run_files.SUMMARY), encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("schema") == SUITE_SCHEMA:
                data["_path"] = os.path.relpath(root, base)
                found.append(data)
        if root[len(base):].count(os.sep) >= max_depth:
            dirs[:] = []
        dirs.sort()
    return sorted(found, key=lambda s: (s.get("start") or "", s.get("suite_id") or ""))


def _group(summary: Dict[str, Any]) -> tuple:
    return ((summary.get("suite") or {}).get("name"), summary.get("target"),
            summary.get("timing_profile"))


def _passing(summary: Dict[str, Any]) -> bool:
    return summary.get("verdict") == "passed" and not (summary.get("baseline") or {}).get("regressed")


def _experiment_gates(summary: Dict[str, Any], run_summaries: Dict[str, dict], count: int,
                      reports: str) -> List[Dict[str, Any]]:
    from gameday.report.baseline import compare_with_baseline
    from gameday.report.sources import ReportError
    gates = []
    for name, run in run_summaries.items():
        # a run's id is its directory's name, the entry's name in every suite: make it unique so
        # the same entry of earlier suites counts as an earlier run, not as this one
        run = {**run, "run_id": f"{summary.get('suite_id')}/{name}"}
        try:
            gate = compare_with_baseline(run, f"last:{count}", None, reports)
            failed = [c["message"] for c in gate["checks"] if c["outcome"] == "failed"]
            gates.append({"experiment": name, "regressed": gate["regressed"], "messages": failed})
        except ReportError as exc:
            gates.append({"experiment": name, "regressed": None, "messages": [str(exc)]})
    return gates


def suite_baseline(summary: Dict[str, Any], run_summaries: Dict[str, dict], spec: str,
                   reports: str) -> Dict[str, Any]:
    """The gate's result: {"spec", "suites", "baseline_score", "regressed", "messages", ...};
    `regressed` None means the gate could not decide (no earlier passing suite)."""
    count = parse_baseline(spec)
    earlier = [s for s in find_suites(reports) if _passing(s) and _group(s) == _group(summary)
               and s.get("suite_id") != summary.get("suite_id")
               and (s.get("start") or "") < (summary.get("start") or "~")][-count:]
    score = (summary.get("score") or {}).get("resilience")
    out = {"spec": spec, "suites": [s.get("suite_id") for s in earlier], "tolerance": SCORE_TOLERANCE,
           "baseline_score": None, "messages": [],
           "experiments": _experiment_gates(summary, run_summaries, count, reports)}
    scores = [(s.get("score") or {}).get("resilience") for s in earlier]
    scores = [s for s in scores if isinstance(s, (int, float))]
    if not scores:
        out.update(regressed=None, messages=[f"no earlier passing suite {_group(summary)[0]!r} on the "
                                             f"{summary.get('target')} to compare with"])
        return out
    out["baseline_score"] = round(statistics.median(scores), 1)
    score_regressed = score is None or score < out["baseline_score"] - SCORE_TOLERANCE
    if score_regressed:
        out["messages"].append(f"score {score} regressed: baseline {out['baseline_score']} "
                               f"(median of {len(scores)}), allowed down to "
                               f"{out['baseline_score'] - SCORE_TOLERANCE:g}")
    for gate in out["experiments"]:
        out["messages"] += [f"{gate['experiment']}: {m}" for m in gate["messages"]]
    undecided = any(g["regressed"] is None for g in out["experiments"])
    out["regressed"] = True if score_regressed or any(g["regressed"] for g in out["experiments"]) \
        else (None if undecided else False)
    return out


def trend_lines(reports: str) -> List[str]:
    """Per suite (name, target, timing): its scores oldest to newest, for `gameday history`."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for suite in find_suites(reports):
        groups.setdefault(_group(suite), []).append(suite)
    lines = []
    for (name, target, profile), suites in groups.items():
        marks = []
        for s in suites[-12:]:
            score = (s.get("score") or {}).get("resilience")
            mark = "" if s.get("verdict") == "passed" else "!"
            marks.append(f"{'-' if score is None else f'{score:g}'}{mark}")
        lines.append(f"suite {name} ({target}, {profile or 'unrecorded'}): score "
                     + " → ".join(marks) + f"  [{len(suites)} suite(s); ! = did not pass]")
    return lines


def trends_html(reports: str) -> str:
    """The suites' score trends as a section of the history page ("" when there is no suite)."""
    import html
    lines = trend_lines(reports)
    if not lines:
        return ""
    return "<h2>Suite scores</h2><pre>" + html.escape("\n".join(lines)) + "</pre>"
