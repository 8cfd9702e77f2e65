"""Shopper load for game days: Locust around an experiment, and probes over what it measures.

- :mod:`chaosext.load.control` — the Chaos Toolkit control that starts/stops Locust
- :mod:`chaosext.load.probes` — error ratio, latency, traffic, liveness, RPO over the order ledger
- :mod:`chaosext.load.settings` — what to run: Locust's knobs, workers, the master's address
- :mod:`chaosext.load.process` — the Locust child processes (master, workers) and their safety nets
- :mod:`chaosext.load.workers` — the workers of a run: master's view, per-worker figures, losses
- :mod:`chaosext.load.diagnose` — why a load measured little, with hints for the store
- :mod:`chaosext.load.timeline` — per-second aggregation and the run-directory file formats
- :mod:`chaosext.load.recorder` — Locust event listeners (imported by locustfiles only: it pulls
  in Locust and gevent's monkey-patching, so nothing else here imports it)
"""
