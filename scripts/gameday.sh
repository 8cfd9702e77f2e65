#!/usr/bin/env bash
# The main job: a game day against the local lab. Until the experiment catalogue lands this
# brings the lab up, fails the database and the cache over once each, shows the lab, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gameday
trap '$G lab down' EXIT
$G lab up
$G lab failover db
$G lab failover cache
$G lab status
