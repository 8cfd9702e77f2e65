"""JUnit XML of a run: one test case per hypothesis probe and per fault verdict.

CI systems (GitHub Actions, GitLab, Jenkins) show these as tests, so a deviated game day turns
the pipeline red with the probe or the fault that caused it.
"""
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["junit_xml", "junit_cases"]

# (classname, name, outcome "passed"|"failed"|"skipped", message)
Case = Tuple[str, str, str, str]


def _probe_cases(summary: Dict[str, Any]) -> List[Case]:
    cases = []
    for phase in ("before", "after"):
        state = summary["hypothesis"][phase]
        if not state["probes"]:
            cases.append((f"hypothesis.{phase}", "steady-state hypothesis", "skipped",
                          "the hypothesis did not run in this phase"))
        for p in state["probes"]:
            if p["status"] == "failed":
                cases.append((f"hypothesis.{phase}", p["name"], "failed",
                              f"probe failed: {p['error'] or p['output']}"))
            elif p["tolerance_met"] is False:
                cases.append((f"hypothesis.{phase}", p["name"], "failed",
                              f"out of tolerance {p['tolerance']}: got {p['output']}"))
            else:
                cases.append((f"hypothesis.{phase}", p["name"], "passed", p["output"]))
    return cases


def _fault_cases(summary: Dict[str, Any]) -> List[Case]:
    cases = []
    for f in summary["faults"]:
        cls = f"fault.{f['fault']}.{f['target']}"
        if f["status"] == "failed":
            cases.append((cls, "recovered", "failed", f["error"] or "the fault action failed"))
        elif f["status"] == "interrupted":
            cases.append((cls, "recovered", "failed", f"injected at {f['injected_at']}; "
                          f"{f['error'] or 'the run stopped before it recovered'}"))
        else:
            cases.append((cls, "recovered", "passed",
                          f"control plane {f['control_plane_seconds']} s, "
                          f"data plane RTO {f['rto_seconds']} s via {f['method']}"))
        if len(f.get("services") or ()) > 1:
            cases += [_rto_case(f"{cls}.{s}", (f.get("recovery") or {}).get(s) or {})
                      for s in f["services"]]
            continue
        limit = f["rto_threshold_seconds"]
        if limit is None:
            cases.append((cls, "rto within threshold", "skipped", "no RTO threshold configured"))
        elif f["rto_seconds"] is None:
            cases.append((cls, f"rto <= {limit:g} s", "failed", "no data-plane RTO was measured"))
        else:
            cases.append((cls, f"rto <= {limit:g} s",
                          "passed" if f["rto_within_threshold"] else "failed",
                          f"RTO {f['rto_seconds']} s (threshold {limit:g} s)"))
    return cases


def _rto_case(cls: str, figure: Dict[str, Any]) -> Case:
    """One service's RTO against its own threshold."""
    limit, rto = figure.get("rto_threshold_seconds"), figure.get("rto_seconds")
    if limit is None:
        return cls, "rto within threshold", "skipped", "no RTO threshold configured"
    if rto is None:
        return cls, f"rto <= {limit:g} s", "failed", "no data-plane RTO was measured"
    return (cls, f"rto <= {limit:g} s", "passed" if figure.get("rto_within_threshold")
            else "failed", f"RTO {rto} s (threshold {limit:g} s)")


def _impairment_cases(summary: Dict[str, Any]) -> List[Case]:
    """One case per impairment threshold (gameday/report/impairment_checks.py), named after
    the step and the figure, so a red pipeline says which step suffered how."""
    cases = []
    for f in summary["faults"]:
        for c in (f.get("impairment_impact") or {}).get("checks") or []:
            cls = f"impairment.{f['fault']}.{f['target']}" + (f".{c['step']}" if c["step"] else "")
            unit = {"": "", "ms": " ms", "s": " s"}.get(c["unit"], "")
            cases.append((cls, f"{c['figure']} <= {c['limit']:g}{unit}", c["outcome"],
                          c["message"]))
    return cases


def _run_cases(summary: Dict[str, Any]) -> List[Case]:
    rpo = summary["rpo"]
    if rpo["orders_lost"] is None:
        rpo_case = ("rpo", "acknowledged orders lost == 0", "skipped",
                    "no acknowledged-orders check ran")
    else:
        rpo_case = ("rpo", "acknowledged orders lost == 0",
                    "failed" if rpo["orders_lost"] else "passed",
                    f"{rpo['orders_lost']} of {rpo['orders_checked']} checked orders missing; "
                    f"{rpo['carts_lost']} carts lost")
    guard = summary["safeguards"]
    guard_case = ("safeguards", "no safeguard tripped", "failed" if guard["tripped"] else "passed",
                  f"interrupted by {guard['tripped_by'] or 'a safeguard or the operator'}"
                  if guard["tripped"] else "")
    verdict = ("run", "verdict", "passed" if summary["verdict"] == "passed" else "failed",
               f"{summary['verdict']}: " + "; ".join(summary["verdict_reasons"]))
    return [rpo_case, guard_case, verdict]


def _baseline_cases(summary: Dict[str, Any]) -> List[Case]:
    """One case per figure compared with the baseline; named after the figure, so a red
    pipeline says which number regressed."""
    gate = summary.get("baseline")
    if not gate:
        return []
    if gate.get("error"):
        return [("baseline", "baseline available", "failed", gate["error"])]
    cases = []
    for check in gate["checks"]:
        cls = "baseline." + (check["fault"].replace(" on ", ".") if check["fault"] else "run")
        cases.append((cls, f"{check['label']} vs baseline", check["outcome"], check["message"]))
    return cases


def junit_cases(summary: Dict[str, Any]) -> List[Case]:
    return (_probe_cases(summary) + _fault_cases(summary) + _impairment_cases(summary)
            + _run_cases(summary)
            + _baseline_cases(summary))


def junit_xml(summary: Dict[str, Any]) -> bytes:
    cases = junit_cases(summary)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"gameday: {summary['experiment']['title'] or summary['run_id']}",
        "tests": str(len(cases)),
        "failures": str(sum(c[2] == "failed" for c in cases)),
        "errors": "0",
        "skipped": str(sum(c[2] == "skipped" for c in cases)),
        "timestamp": (summary["start"] or "").rstrip("Z"),
        "time": f"{summary['duration_seconds'] or 0:.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", summary["run_id"]), ("verdict", summary["verdict"]),
                        ("target", summary["target"]["kind"])):
        ET.SubElement(props, "property", {"name": name, "value": str(value)})
    for classname, name, outcome, message in cases:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": name,
                                                 "time": "0"})
        if outcome == "failed":
            ET.SubElement(case, "failure", {"message": _one_line(message), "type": "failure"}
                          ).text = message
        elif outcome == "skipped":
            ET.SubElement(case, "skipped", {"message": _one_line(message)})
        elif message:
            ET.SubElement(case, "system-out").text = message
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def _one_line(text: Optional[str]) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 300 else text[:299] + "…"
