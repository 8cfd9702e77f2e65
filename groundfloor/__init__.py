"""The ground floor of failover-gameday: what the Chaos Toolkit extension (`chaosext`) and the
local lab (`woolab`) both stand on, so neither has to import the other.

Process supervision and the one poller (`supervisor`), name resolution with TTLs (`resolve`),
AWS's event wording (`aws_events`), OAuth 1.0a signing (`oauth1`), time formats (`timefmt`),
JSON-lines files (`jsonlines`) and the run-directory contract (`run_files`). It imports nothing
from the packages above it, and nothing from Chaos Toolkit.
"""
