"""Benchmark section `load`: the shopper journey (with its recorder) against a bare Locust
FastHttpUser on the same endpoint, and whether the Locust processes' memory grows with requests.
"""
from benchkit.core import Context, Section
from benchkit.locustruns import run_side_by_side
from benchkit.machine import LocustMemory
from woolab import manage


def run(ctx: Context) -> None:
    host = manage.env(ctx.config.state_dir)["GAMEDAY_SHOP_URL"]
    rounds = 1 if ctx.smoke else 2
    with LocustMemory() as memory:
        result = run_side_by_side(host, users=32, seconds=int(ctx.args.seconds), rounds=rounds,
                                  out_dir=str(ctx.work))
    ctx.figure(f"bare FastHttpUser req/s ({result['users']} users)", float(result["bare_rps"]))
    ctx.figure("journey (with recorder) req/s", float(result["journey_rps"]))
    ctx.figure("journey / bare ratio", float(result["ratio"]), "target >= 0.70")
    for label, locustfile, key in (("journey", "shopper.py", "journey"), ("bare", "bare.py", "bare")):
        grown = memory.growth(locustfile)
        if grown is None:
            ctx.figure(f"{label} Locust RSS: not sampled", "-")
            continue
        requests = result["runs"][key][-1]["requests"]
        ctx.figure(f"{label} Locust RSS MB after 3 s", grown[0])
        ctx.figure(f"{label} Locust RSS growth MB 3 s -> end", grown[1] - grown[0],
                   f"whole process, run of {requests} requests"
                   + ("; target: no growth with requests" if key == "journey" else ""))


SECTION = Section("load", run, lambda args: 4 * (args.seconds + 90), needs_lab=True,
                  about="journey vs bare Locust throughput, Locust memory")
