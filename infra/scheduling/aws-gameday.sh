#!/usr/bin/env bash
# A scheduled game day against staging (the systemd timer and the CodeBuild project run this):
# by default the suite $GAMEDAY_SUITE (default `release`; `nightly` runs the whole catalogue that
# runs on AWS) with `gameday suite`: one report, one resilience score, one exit code
# (docs/suites.md). With GAMEDAY_EXPERIMENT set, that single experiment with `gameday run`.
# Either way a dry run first — the read-only preflight (credentials, allow-lists, targets, IAM,
# reachability, the store; nothing written anywhere) — then the real run, confirmed with --yes.
# The real run writes a date-stamped directory under $GAMEDAY_REPORTS_DIR (default: reports/).
# History: the real run is gated against the last $GAMEDAY_BASELINE passing runs (default
# last:5) of the same suite (or experiment) and target, so a failover that got slower fails the
# schedule even under the absolute RTO threshold; the first run, with no history yet, is not
# gated. With GAMEDAY_HISTORY_S3 (s3://bucket/prefix/) the earlier summaries are fetched from S3
# first and the new run goes back up; `gameday history` then rewrites index.html.
# Exit code: 0 only when both passed and nothing regressed; otherwise the first failing run's code
# (1 failed, deviated or regressed, 2 preflight not ready, 3 interrupted by itself, 128+N stopped by
# signal N: docs/exit-codes.md); 2 also when a required setting is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=""
for name in AWS_REGION GAMEDAY_DB_INSTANCE_ID GAMEDAY_REPLICATION_GROUP_ID GAMEDAY_SHOP_URL; do
    [ -n "${!name:-}" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
    echo "aws-gameday: set$missing (see infra/scheduling/gameday.env.example)" >&2
    exit 2
fi

gameday="${GAMEDAY_BIN:-.venv/bin/gameday}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target=(--target aws --region "$AWS_REGION")

# A stop (systemctl stop, CodeBuild StopBuild, Ctrl-C) reaches this script: pass it on to the
# running `gameday` once, which stops the experiment, plays the rollbacks and writes the report
# (docs/exit-codes.md); its non-zero exit then ends this script before the next run starts.
child=0
forward() { if [ "$child" -gt 0 ]; then kill -s "$1" "$child" 2>/dev/null || true; fi; }
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP
gameday_cmd() {
    "$gameday" "$@" &
    child=$!
    local status=0
    while :; do  # `wait` also returns when a trapped signal arrives: wait again until gameday exits
        status=0
        wait "$child" || status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    child=0
    return "$status"
}

reports="${GAMEDAY_REPORTS_DIR:-reports}"
if [ -n "${GAMEDAY_HISTORY_S3:-}" ]; then
    aws s3 sync "$GAMEDAY_HISTORY_S3" "$reports" --exclude "*" --include "*/summary.json" --include "*/suite.json" \
        --only-show-errors
fi
status=0
if [ -n "${GAMEDAY_EXPERIMENT:-}" ]; then
    experiment="$GAMEDAY_EXPERIMENT"
    name="$(basename "$experiment" .json)"
    gate=()  # earlier real runs of this experiment (dry runs end in -dry-run): gate against them
    if compgen -G "$reports/*-$name/summary.json" > /dev/null; then
        gate=(--baseline "${GAMEDAY_BASELINE:-last:5}" ${GAMEDAY_TOLERANCE:+--tolerance "$GAMEDAY_TOLERANCE"})
    fi
    gameday_cmd run "$experiment" "${target[@]}" --allow-remote-load --dry-run \
        --users "${GAMEDAY_DRY_RUN_USERS:-2}" --run-id "$stamp-$name-dry-run"
    # --yes: nobody is at a terminal; the dry run above printed the plan and passed
    gameday_cmd run "$experiment" "${target[@]}" --allow-remote-load \
        ${GAMEDAY_USERS:+--users "$GAMEDAY_USERS"} --yes \
        --run-id "$stamp-$name" "${gate[@]}" || status=$?
else
    suite="${GAMEDAY_SUITE:-release}"
    name="$(basename "$suite" .json)"
    gate=()  # earlier suites of this name: gate the score and every experiment against them
    if compgen -G "$reports/*-suite-$name/summary.json" > /dev/null; then
        gate=(--baseline "${GAMEDAY_BASELINE:-last:5}")
    fi
    gameday_cmd suite "$suite" "${target[@]}" --dry-run
    gameday_cmd suite "$suite" "${target[@]}" ${GAMEDAY_USERS:+--users "$GAMEDAY_USERS"} --yes \
        --suite-id "$stamp-suite-$name" "${gate[@]}" || status=$?
fi
"$gameday" history --reports "$reports" > /dev/null || true
if [ -n "${GAMEDAY_HISTORY_S3:-}" ]; then
    aws s3 sync "$reports" "$GAMEDAY_HISTORY_S3" --only-show-errors || true
fi
exit "$status"
