#!/usr/bin/env bash
# The main job: a full game day against the local lab (both failovers under shopper load), ending
# in a verdict table and a report under reports/. Starts the lab if needed and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/gameday run gameday "$@"
