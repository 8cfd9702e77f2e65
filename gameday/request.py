"""One typed request for one game day: what to run, where, how long, with which consent.

The CLI builds it once (`build`), which is where every setting is validated; `game_day`,
`matrix` and the lab take it as it is. Nothing travels through `os.environ` between our own
modules: the lab gets its timing and TLS from the request, the run its reports directory.
"""
import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from chaosext import rundir
from chaosext.errors import GamedayError

from .console import Console
from .live.options import LiveOptions

__all__ = ["LoadRequest", "LabRequest", "Consent", "Gate", "RunRequest", "build"]


@dataclass(frozen=True)
class LoadRequest:
    users: Optional[int] = None  # None: the experiment's own
    spawn_rate: Optional[float] = None
    layout: Dict[str, Any] = field(default_factory=dict)  # --workers / --master-bind (run.load_layout)


@dataclass(frozen=True)
class LabRequest:
    state_dir: Path
    timing: Optional[str] = None  # profile of a lab this run starts (a running lab keeps its own)
    tls: bool = False  # a lab this run starts is encrypted
    db_topology: Optional[str] = None  # instance | cluster: the DB of a lab this run starts
    keep: bool = False  # leave a lab this run started running
    shop_settings: Dict[str, str] = field(default_factory=dict)  # restored after the run


@dataclass(frozen=True)
class Consent:
    yes: bool = False  # the AWS plan is confirmed without a prompt
    accept_any_account: bool = False  # a waiver: no account allow-list
    allow_remote_load: bool = False


@dataclass(frozen=True)
class Gate:
    baseline: Optional[str] = None
    tolerance: Optional[str] = None


@dataclass(frozen=True)
class RunRequest:
    path: Path  # the experiment file
    spec: dict  # validated, with the command line's overrides applied
    target: str  # lab | aws
    lab: LabRequest
    run_id: str
    reports_dir: Path
    region: Optional[str] = None
    dry_run: bool = False
    load: LoadRequest = LoadRequest()
    consent: Consent = Consent()
    gate: Gate = Gate()
    live: Optional[LiveOptions] = None
    console: Console = field(default_factory=Console)

    @property
    def run_dir(self) -> Path:
        return self.reports_dir / self.run_id

    def fresh_spec(self) -> dict:
        """A copy of the experiment a run may add its controls to."""
        return copy.deepcopy(self.spec)

    def variant(self, run_id: str, shop_settings: Dict[str, str]) -> "RunRequest":
        """The same request with other shop settings, as a run of its own (`gameday matrix`)."""
        return dataclasses.replace(self, run_id=run_id,
                                   lab=dataclasses.replace(self.lab, shop_settings=dict(shop_settings)))


def _check_lab(target: str, lab: LabRequest) -> None:
    """Lab-only options on AWS, and a running lab that cannot honour --timing / --tls."""
    from woolab import manage
    from woolab.config import LabConfig, check_db_topology
    if lab.shop_settings and target != "lab":
        raise GamedayError("--shop-setting configures the lab's stand-in shop; on AWS change your store")
    if lab.tls and target != "lab":
        raise GamedayError("--tls starts an encrypted lab; on AWS set GAMEDAY_REDIS_TLS / GAMEDAY_MYSQL_TLS "
                           "(docs/before-aws.md)")
    if lab.db_topology is not None:
        if target != "lab":
            raise GamedayError("--db chooses the lab's DB topology; on AWS the experiment names your DB")
        check_db_topology(lab.db_topology)
    if target != "lab" or not (lab.timing or lab.tls or lab.db_topology) or not manage.is_up(lab.state_dir):
        return
    running = LabConfig.load(lab.state_dir)
    if lab.db_topology and lab.db_topology != running.db_topology:
        raise GamedayError(f"the lab is already up with DB topology {running.db_topology!r}; stop it "
                           f"(`gameday lab down`) or drop --db {lab.db_topology}")
    if lab.timing and Path(running.timing).name != Path(lab.timing).name and running.timing != lab.timing:
        raise GamedayError(f"the lab is already up with timing {running.timing!r}; stop it "
                           f"(`gameday lab down`) or drop --timing {lab.timing}")
    if lab.tls and not running.tls:
        raise GamedayError("the lab is already up without TLS; stop it (`gameday lab down`) or drop --tls")


# activities that fail over or reboot a Multi-AZ DB *instance*: nothing to act on in a DB cluster
INSTANCE_FAULTS = {"chaosext.rds.actions.force_failover", "chaosext.rds.actions.reboot_db_instance",
                   "chaosext.shop.actions.checkout_through_db_failover", "chaosext.fis.actions.reboot_db_instances"}


def _instance_faults(spec: dict) -> list:
    found = []
    for activity in list(spec.get("method") or []) + list(spec.get("rollbacks") or []):
        provider = activity.get("provider") or {} if isinstance(activity, dict) else {}
        if f"{provider.get('module')}.{provider.get('func')}" in INSTANCE_FAULTS:
            found.append(activity.get("name"))
    return found


def _check_topology(target: str, lab: LabRequest, name: str, spec: dict) -> None:
    """An experiment tagged `db-cluster` needs a lab whose DB is a cluster, and one that fails
    over a DB instance needs a lab whose DB is an instance (nothing is started)."""
    from woolab import manage
    from woolab.config import LabConfig
    if target != "lab":
        return
    topology = lab.db_topology
    if topology is None and manage.is_up(lab.state_dir):
        topology = LabConfig.load(lab.state_dir).db_topology
    if "db-cluster" in spec.get("tags", []) and topology != "cluster":
        raise GamedayError(f"{name} needs a Multi-AZ DB cluster, but the lab's DB is a DB instance: "
                           f"run it with --db cluster (after `gameday lab down` if a lab is up)")
    faults = _instance_faults(spec)
    if topology == "cluster" and faults:
        raise GamedayError(f"{name} fails over a Multi-AZ DB instance ({', '.join(faults)}), but the lab's DB "
                           "is a Multi-AZ DB cluster: run it with --db instance (after `gameday lab down` if a "
                           "lab is up), or run rds-cluster-failover")


def build(experiment: str, target: str = "lab", *, lab: Optional[LabRequest] = None,
          run_id: Optional[str] = None, region: Optional[str] = None, dry_run: bool = False,
          load: LoadRequest = LoadRequest(), consent: Consent = Consent(), gate: Gate = Gate(),
          live: Optional[LiveOptions] = None, console: Optional[Console] = None) -> RunRequest:
    """Validate every setting once and resolve the experiment; nothing is started or changed."""
    from woolab import manage

    from . import run
    from .live.options import apply as live_apply
    if target not in ("lab", "aws"):
        raise GamedayError(f"unknown target {target!r}: use lab or aws (check $GAMEDAY_TARGET)")
    lab = lab or LabRequest(state_dir=manage.default_state_dir())
    if consent.allow_remote_load and target != "aws":
        raise GamedayError("--allow-remote-load is for --target aws (the lab's shop is on loopback)")
    _check_lab(target, lab)
    if gate.baseline is not None or gate.tolerance is not None:
        run.check_gate(gate.baseline, gate.tolerance)
    path = run.resolve(experiment)
    spec = run.apply_overrides(run.load_and_validate(path), load.users, load.spawn_rate, False,
                               consent.allow_remote_load, load.layout)
    spec = live_apply(spec, live) if live else spec
    _check_topology(target, lab, path.stem, spec)
    if target == "aws" and "lab-only" in spec.get("tags", []):
        raise GamedayError(f"{path.stem} runs only on the lab (AWS offers no way to inject this fault); "
                           "see `gameday list` for the experiments that run on AWS")
    return RunRequest(path=path, spec=spec, target=target, lab=lab, run_id=run_id or rundir.run_id(path.stem),
                      reports_dir=rundir.reports_dir(), region=region, dry_run=dry_run, load=load,
                      consent=consent, gate=gate, live=live, console=console or Console())
