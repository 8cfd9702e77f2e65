"""The suite's report: summary.json, junit.xml, report.md and report.html in the suite directory.

The first screen (printed, and the top of both documents) shows the score against its gate,
the verdict of each experiment with its key figures, and the worst figure of the suite with
the limit it came closest to breaking. Below: the Gremlin- and Litmus-style scores of the same
runs, what did not run and why, the restore between experiments, links to every run's report.
"""
import html
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional
from xml.etree import ElementTree as ET

from groundfloor.timefmt import iso

from .score import suite_scores
from .trend import SUITE_MARK, SUITE_SCHEMA, suite_baseline
from groundfloor import run_files

__all__ = ["build_summary", "first_screen", "write_suite_report"]


def _profile(rows: List[Dict[str, Any]]) -> Optional[str]:
    for row in rows:
        profile = ((row.get("summary") or {}).get("target") or {}).get("timing_profile")
        if profile:
            return profile
    return None


def _verdict(rows: List[Dict[str, Any]], gate_held: bool, interrupted: bool) -> tuple:
    reasons = []
    for row in rows:
        if row["status"] == "ran" and row["verdict"] != "passed":
            reasons.append(f"{row['name']}: {row['verdict']}")
        elif row["status"] == "ran" and row["binding"] and row["binding"]["score"] == 0:
            reasons.append(f"{row['name']}: {row['binding']['label']} broke its limit "
                           f"({row['binding']['value']} against {row['binding']['limit']})")
        elif row["status"] == "not_run":
            reasons.append(f"{row['name']}: not run ({row['reason']})")
    if not gate_held:
        reasons.append("the score is below its gate")
    verdict = "interrupted" if interrupted else ("passed" if not reasons else "failed")
    return verdict, reasons


def build_summary(suite, target: str, suite_id: str, rows: List[Dict[str, Any]],
                  began: float, interrupted: bool = False) -> Dict[str, Any]:
    """The suite's summary.json (runs' own figures stay in their summary.json files)."""
    scores = suite_scores(rows)
    held = scores["resilience"] is not None and scores["resilience"] >= suite.min_score
    verdict, reasons = _verdict(rows, held, interrupted)
    keep = ("name", "experiment", "weight", "category", "impact_budget", "status", "reason",
            "verdict", "exit_code", "run_dir", "score", "binding", "components", "probe_success",
            "restore_before", "seconds")
    return {"schema": SUITE_SCHEMA, "suite_id": suite_id, "suite": suite.as_dict(),
            "target": target, "timing_profile": _profile(rows), "start": iso(began),
            "end": iso(time.time()), "duration_seconds": round(time.time() - began, 1),
            "verdict": verdict, "verdict_reasons": reasons,
            "score": {**scores, "gate": {"min_score": suite.min_score, "held": held}},
            "experiments": [{k: row.get(k) for k in keep} for row in rows]}


def _figures(row: Dict[str, Any]) -> str:
    """Key figures: each scored input as value/limit, the weakest first."""
    comps = [c for c in row.get("components") or [] if c["score"] is not None
             and c["input"] != "steady_state"]
    parts = []
    for c in sorted(comps, key=lambda c: c["score"])[:3]:
        unit = f" {c['unit']}" if c["unit"] else ""
        limit = "" if not c["limit"] else f"/{c['limit']:g}{unit}"
        head, _, tail = c["label"].rpartition(": ")
        name = f"{head.split(' on ')[-1]} {tail}" if head else tail  # "shop-db RTO", "carts lost"
        parts.append(f"{name} {c['value']:g}{unit if not limit else ''}{limit}")
    return "; ".join(parts) or "-"


def _worst_line(worst: Optional[Dict[str, Any]]) -> str:
    if not worst:
        return "worst figure: none measured"
    unit = f" {worst['unit']}" if worst["unit"] else ""
    value = "not measured" if worst["value"] is None else (
        json.dumps(worst["value"]) if isinstance(worst["value"], dict) else f"{worst['value']:g}{unit}")
    limit = "" if worst["limit"] is None else f" against a limit of {worst['limit']:g}{unit}"
    return (f"worst figure: {worst['experiment']}: {worst['label']} = {value}{limit} "
            f"(scored {worst['score']:g}/100; closest to breaking)")


def _steady_line(rows: List[Dict[str, Any]]) -> str:
    """Whether each experiment started from a steady state: the restore before it and its own
    hypothesis before its method."""
    ran = [r for r in rows if r["status"] == "ran"]
    held = sum(1 for r in ran for c in r.get("components") or []
               if c["input"] == "steady_state" and (c["value"] or {}).get("before") is True)
    restores = [r["restore_before"] for r in ran if r.get("restore_before")]
    ok = sum(1 for r in restores if r.get("ok"))
    return (f"steady state before each experiment: held {held}/{len(ran)}; "
            f"restored between experiments: {ok}/{len(restores)}")


def first_screen(summary: Dict[str, Any]) -> List[str]:
    """The lines a person reads first: score and gate, one line per experiment, the worst."""
    score, gate = summary["score"], summary["score"]["gate"]
    lines = [f"suite {summary['suite']['name']} on the {summary['target']}: "
             f"{summary['verdict'].upper()}",
             f"resilience score {score['resilience']} (gate ≥ {gate['min_score']:g}: "
             f"{'held' if gate['held'] else 'NOT held'})   gremlin-style {score['gremlin_style']}   "
             f"litmus-style {score['litmus_style']}"]
    rows = [("#", "EXPERIMENT", "WEIGHT", "VERDICT", "SCORE", "KEY FIGURES")]
    for i, row in enumerate(summary["experiments"], 1):
        verdict = row["verdict"] if row["status"] == "ran" else row["status"].replace("_", " ")
        rows.append((str(i), row["name"], f"{row['weight']:g}", verdict or "-",
                     "-" if row["status"] == "skipped" else f"{row['score']:g}",
                     _figures(row) if row["status"] == "ran" else (row["reason"] or "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    lines.append(_worst_line(score["worst"]))
    lines.append(_steady_line(summary["experiments"]))
    base = summary.get("baseline")
    if base:
        state = {True: "REGRESSED", False: "no regression", None: "cannot decide"}[base["regressed"]]
        lines.append(f"baseline {base['spec']}: {state}" + (
            f" (score baseline {base['baseline_score']})" if base["baseline_score"] is not None else ""))
        lines += [f"  {m}" for m in base["messages"]]
    return lines


def _junit(summary: Dict[str, Any]) -> bytes:
    rows = summary["experiments"]
    failed = [r for r in rows if r["status"] == "ran" and r["verdict"] != "passed"]
    skipped = [r for r in rows if r["status"] in ("skipped", "not_run")]
    suite = ET.Element("testsuite", name=f"suite {summary['suite']['name']}", tests=str(len(rows)),
                       failures=str(len(failed)), skipped=str(len(skipped)),
                       time=str(summary["duration_seconds"]), timestamp=summary["start"])
    for row in rows:
        case = ET.SubElement(suite, "testcase", classname=f"suite.{summary['suite']['name']}",
                             name=row["name"], time=str(row["seconds"] or 0))
        if row["status"] in ("skipped", "not_run"):
            ET.SubElement(case, "skipped", message=("not run: " if row["status"] == "not_run"
                                                    else "skipped: ") + str(row["reason"]))
        elif row["verdict"] != "passed":
            ET.SubElement(case, "failure", message=f"{row['verdict']} (score {row['score']:g})",
                          type=str(row["verdict"])).text = _figures(row)
        ET.SubElement(case, "system-out").text = f"score {row['score']:g}; {_figures(row)}"
    return (b'<?xml version="1.0" encoding="utf-8"?>\n'
            + ET.tostring(suite, encoding="unicode").encode("utf-8"))


def _markdown(summary: Dict[str, Any]) -> str:
    score = summary["score"]
    out = [f"# Suite {summary['suite']['name']}: {summary['suite']['title']}", "", "```",
           *first_screen(summary), "```", "",
           "## Scores of the same runs (docs/resilience-score.md)", "",
           "| score | value | what it counts |", "|---|---|---|",
           f"| resilience | {score['resilience']} | measured figures against each experiment's limits |",
           f"| Gremlin-style | {score['gremlin_style']} | passed 100, failed 50, not run 0; per category |",
           f"| Litmus-style | {score['litmus_style']} | weight × steady-state probe success % |",
           "", "## Experiments", "",
           "| experiment | status | verdict | score | binding input | restore before | report |",
           "|---|---|---|---|---|---|---|"]
    for row in summary["experiments"]:
        bind = row["binding"]["label"] if row.get("binding") else "-"
        restore = row.get("restore_before") or {}
        restored = "-" if not restore else (f"ok in {restore['seconds']} s" if restore.get("ok")
                                            else "FAILED: " + "; ".join(restore.get("problems") or []))
        link = f"[report]({row['run_dir']}/report.html)" if row["run_dir"] else "-"
        out.append(f"| {row['name']} | {row['status']}{': ' + row['reason'] if row['reason'] else ''} "
                   f"| {row['verdict'] or '-'} | {row['score']:g} | {bind} | {restored} | {link} |")
    return "\n".join(out) + "\n"


def _html(summary: Dict[str, Any], markdown: str) -> str:
    links = "".join(f'<li><a href="{html.escape(r["run_dir"])}/report.html">{html.escape(r["name"])}'
                    f"</a></li>" for r in summary["experiments"] if r["run_dir"])
    return ("<!doctype html><meta charset=utf-8><title>suite "
            f"{html.escape(summary['suite']['name'])}</title><pre>"
            f"{html.escape(chr(10).join(first_screen(summary)))}</pre><h2>Reports</h2><ul>{links}</ul>"
            f"<h2>Details</h2><pre>{html.escape(markdown)}</pre>")


def write_suite_report(suite, request, suite_dir: Path, rows: List[Dict[str, Any]],
                       began: float) -> int:
    """Write every file, print the first screen; the suite's exit code (0, 1, or 128+N)."""
    interrupted = request.interrupts is not None and request.interrupts.first is not None
    summary = build_summary(suite, request.target, suite_dir.name, rows, began, interrupted)
    if request.baseline:
        runs = {r["name"]: r["summary"] for r in rows if r["status"] == "ran" and r.get("summary")}
        summary["baseline"] = suite_baseline(summary, runs, request.baseline, str(suite_dir.parent))
        if summary["baseline"]["regressed"] is not False and summary["verdict"] == "passed":
            summary["verdict"] = "failed"
            summary["verdict_reasons"].append("baseline: " + "; ".join(summary["baseline"]["messages"]))
    (suite_dir / SUITE_MARK).write_text(json.dumps(suite.as_dict(), indent=2))
    (suite_dir / run_files.SUMMARY).write_text(json.dumps(summary, indent=2))
    (suite_dir / run_files.JUNIT).write_bytes(_junit(summary))
    markdown = _markdown(summary)
    (suite_dir / run_files.REPORT_MD).write_text(markdown)
    (suite_dir / run_files.REPORT_HTML).write_text(_html(summary, markdown))
    print("\n".join(first_screen(summary)), flush=True)
    print(f"suite report: {suite_dir / 'report.html'}", flush=True)
    return 0 if summary["verdict"] == "passed" else 1
