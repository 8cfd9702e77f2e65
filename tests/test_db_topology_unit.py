"""`--db instance|cluster` without a lab: refusals in one line that start and change nothing, and
the cluster's names and ports as the lab configures them."""
import pytest

from gameday.cli import main
from woolab.config import LabConfig
from woolab.errors import LabConfigError


def run_cli(capsys, *argv) -> tuple:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [("lab", "up", "--db", "aurora"),
                                  ("run", "rds-cluster-failover", "--db", "aurora")])
def test_an_unknown_topology_is_one_line_exit_2_and_nothing_starts(capsys, tmp_path, argv):
    state_dir = tmp_path / "lab"
    code, out, err = run_cli(capsys, *argv, "--state-dir", str(state_dir))
    assert code == 2 and out == ""
    assert err == "gameday: error: unknown DB topology 'aurora': use instance or cluster\n"
    assert not state_dir.exists()


def test_a_cluster_experiment_is_refused_on_an_instance_lab_before_anything_starts(capsys, tmp_path):
    state_dir = tmp_path / "lab"
    code, _, err = run_cli(capsys, "run", "rds-cluster-failover", "--db", "instance", "--state-dir", str(state_dir))
    assert code == 1 and len(err.splitlines()) == 1
    assert "rds-cluster-failover needs a Multi-AZ DB cluster" in err and "--db cluster" in err
    assert not state_dir.exists()


def test_db_is_a_lab_option_only(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "rds-cluster-failover", "--db", "cluster", "--target", "aws",
                           "--state-dir", str(tmp_path / "lab"))
    assert code == 1 and "--db chooses the lab's DB topology" in err and len(err.splitlines()) == 1


def test_the_cluster_topology_has_three_nodes_and_aws_shaped_endpoint_names(tmp_path):
    cfg = LabConfig(state_dir=tmp_path, base_port=24300, db_topology="cluster")
    assert cfg.db_node_count == 3 and LabConfig(state_dir=tmp_path).db_node_count == 2
    assert cfg.db_writer_name == "shop-db-cluster.cluster-lab24300.us-east-1.rds.amazonaws.com"
    assert cfg.db_reader_endpoint_name == "shop-db-cluster.cluster-ro-lab24300.us-east-1.rds.amazonaws.com"
    assert cfg.db_member_endpoint_name("x-1") == "x-1.lab24300.us-east-1.rds.amazonaws.com"
    assert ("127.0.10.3", 24306) in cfg.all_ports()
    assert ("127.0.10.3", 24306) not in LabConfig(state_dir=tmp_path, base_port=24300).all_ports()
    with pytest.raises(LabConfigError):
        LabConfig.from_env(state_dir=tmp_path, db_topology="aurora")


def test_an_instance_experiment_is_refused_for_a_cluster_lab_before_anything_starts(capsys, tmp_path):
    state_dir = tmp_path / "lab"
    code, _, err = run_cli(capsys, "run", "rds-force-failover", "--db", "cluster", "--state-dir", str(state_dir))
    assert code == 1 and len(err.splitlines()) == 1
    assert "rds-force-failover fails over a Multi-AZ DB instance (rds-force-failover)" in err
    assert "--db instance" in err and not state_dir.exists()
