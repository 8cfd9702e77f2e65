#!/usr/bin/env bash
# A scheduled game day against staging (the systemd timer and the CodeBuild project run this):
# a dry run first — the read-only preflight (credentials, allow-lists, targets, IAM, reachability,
# the store; nothing written anywhere) — then the real run, confirmed with --yes. The real run
# writes a date-stamped run directory under $GAMEDAY_REPORTS_DIR (default: reports/ in the checkout).
# Exit code: 0 only when both passed; 1 when a run failed or deviated (see its report); 2 when
# a required setting is missing.
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
experiment="${GAMEDAY_EXPERIMENT:-gameday}"
name="$(basename "$experiment" .json)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target=(--target aws --region "$AWS_REGION" --allow-remote-load)

"$gameday" run "$experiment" "${target[@]}" --dry-run --users "${GAMEDAY_DRY_RUN_USERS:-2}" \
    --run-id "$stamp-$name-dry-run"
# --yes: nobody is at a terminal; the dry run above printed the plan and passed
"$gameday" run "$experiment" "${target[@]}" ${GAMEDAY_USERS:+--users "$GAMEDAY_USERS"} --yes \
    --run-id "$stamp-$name"
