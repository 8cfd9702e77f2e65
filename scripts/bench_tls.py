"""Benchmark section `tls`: the encrypted lab (`gameday lab up --tls`, docs/encrypted-lab.md)
starts and stops within the plain lab's targets. It runs its own lab, after the shared one is
down, on the same ports.
"""
from benchkit.core import Context, Section
from benchkit.labs import BASE_PORT, lab_running


def run(ctx: Context) -> None:
    from woolab.config import LabConfig
    config = LabConfig.from_env(state_dir=ctx.work / "lab", base_port=BASE_PORT, tls=True)
    with lab_running(config, ctx.figures, section="tls", label="encrypted lab"):
        pass


SECTION = Section("tls", run, lambda _args: 180.0, about="the encrypted lab's up and down times")
