"""RTO per endpoint of a DB cluster failover in the report: the cluster (writer) endpoint's
"writable again" and the reader endpoint's "serving again", each judged against its own
threshold in summary.json, the fault table, the first screen and JUnit (recorded run dir)."""
import json

from gameday.report import summarize, write_report
from groundfloor import run_files


def cluster_fault(run_dir, reader_rto: float, thresholds: dict) -> None:
    """Turn the recorded run's first fault into a DB cluster failover measured at both endpoints."""
    path = run_dir / run_files.JOURNAL
    journal = json.loads(path.read_text())
    journal["experiment"]["configuration"]["rto_threshold_seconds"] = thresholds
    entry = next(a for a in journal["run"] if a["activity"]["name"] == "force-db-failover")
    out = entry["output"]
    writer = {"service": "rds", "writable_at": out["data_plane_writable_at"], "rto_seconds": 2.35,
              "data_plane": {"kind": "mysql", "endpoint": "shop-db-cluster.cluster-x:3306"}}
    reader = {"service": "rds-reader", "writable_at": "2026-11-26T06:00:37.050Z", "rto_seconds": reader_rto,
              "data_plane": {"kind": "mysql-reader", "endpoint": "shop-db-cluster.cluster-ro-x:3306"}}
    out.update(fault="rds-cluster-failover", target="shop-db-cluster", method="FailoverDBCluster",
               services=["rds", "rds-reader"], kind="failover", recovery={"rds": writer, "rds-reader": reader},
               before={"writer": "shop-db-cluster-instance-1"}, after={"writer": "shop-db-cluster-instance-2"})
    path.write_text(json.dumps(journal))


def test_summary_judges_the_writer_and_the_reader_endpoint_each_against_its_threshold(run_dir):
    cluster_fault(run_dir, 0.8, {"rds": 3, "rds-reader": 0.5, "elasticache": 3})
    fault = summarize(str(run_dir))["faults"][0]
    assert fault["fault"] == "rds-cluster-failover" and fault["services"] == ["rds", "rds-reader"]
    writer, reader = fault["recovery"]["rds"], fault["recovery"]["rds-reader"]
    assert (writer["rto_seconds"], writer["rto_threshold_seconds"], writer["rto_within_threshold"]) == (2.35, 3, True)
    assert (reader["rto_seconds"], reader["rto_threshold_seconds"], reader["rto_within_threshold"]) == (0.8, 0.5, False)
    assert fault["rto_within_threshold"] is False  # one endpoint missed its threshold: the fault did


def test_report_names_writable_again_for_the_writer_and_serving_again_for_the_readers(run_dir):
    cluster_fault(run_dir, 0.8, {"rds": 3, "rds-reader": 2, "elasticache": 3})
    summary = write_report(str(run_dir))["summary"]
    assert summary["faults"][0]["rto_within_threshold"] is True
    md = (run_dir / run_files.REPORT_MD).read_text()
    assert "database: writable again 06:00:38.600Z, RTO 2.35 s (threshold 3 s: met)" in md
    assert "database readers: serving again 06:00:37.050Z, RTO 0.8 s (threshold 2 s: met)" in md
    assert "database ≤ 3 s: yes; database readers ≤ 2 s: yes" in md
    junit = (run_dir / run_files.JUNIT).read_text()
    assert "rds-reader" in junit and "rds-cluster-failover" in junit
