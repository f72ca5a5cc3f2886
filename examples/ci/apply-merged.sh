#!/usr/bin/env bash
# On merge to the main branch: apply the plan file reviewed in the pull request, exactly, for
# one organisation. Never plans again: no reviewed plan, no apply.
#
#   apply-merged.sh PLANFILE ORG_DIR OUT_DIR
#
# PLANFILE is the pull request's artifact (fetched by the workflow: docs/gitops.md). casdesired
# refuses it (exit 1, before any change) if it is stale (the live objects it depends on moved),
# if ORG_DIR's YAML on this branch differs from the files it was made from, or if it was
# applied before. Writes into OUT_DIR:
#   apply-report.json  `casdesired apply --format json` (schemas/apply-report.schema.json)
#   summary.md         the report as Markdown (for the job summary or a comment)
#   audit.jsonl, rollback.json  the audit log and rollback plan, to keep as artifacts
# Exits with casdesired apply's exit code: 1 also when blocking findings withheld a site's
# changes (the other sites' were applied; summary.md lists the withheld sites and findings).
#
# Environment: CASDESIRED (default: casdesired), APPLY_FORCE=1 to pass --force (a reviewer
# accepted the plan's "needs --force" reasons, e.g. with a pull request label), LOCK_TIMEOUT
# (seconds to wait for another apply's organisation lock, default 600), and the organisation
# file's credential variables.
set -uo pipefail

plan="${1:?usage: apply-merged.sh PLANFILE ORG_DIR OUT_DIR}"
org="${2:?usage: apply-merged.sh PLANFILE ORG_DIR OUT_DIR}"
out="${3:?usage: apply-merged.sh PLANFILE ORG_DIR OUT_DIR}"
casdesired="${CASDESIRED:-casdesired}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"

if [ ! -f "$plan" ]; then
  echo "apply-merged: no reviewed plan file for $org ($plan): nothing is applied; a merge" \
       "applies only the plan its pull request showed (never a new one)" >&2
  exit 1
fi

echo "Applying the reviewed plan for $org:"
"$casdesired" show "$plan" || exit 1

force=()
[ "${APPLY_FORCE:-0}" = 1 ] && force=(--force)
"$casdesired" apply "$plan" --config "$org" --auto-approve --format json "${force[@]}" \
  --lock-timeout "${LOCK_TIMEOUT:-600}" \
  --audit-log "$out/audit.jsonl" --rollback-out "$out/rollback.json" \
  > "$out/apply-report.json"
code=$?
python3 "$here/casdesired_ci.py" summary "$out/apply-report.json" --dir "$org" > "$out/summary.md" \
  || echo "apply-merged: could not summarise $out/apply-report.json" >&2
exit "$code"
