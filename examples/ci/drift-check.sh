#!/usr/bin/env bash
# Nightly drift check for one organisation: does the live organisation still match the YAML on
# the main branch? Writes the drift issue's body; the workflow opens, updates or closes the one
# issue (casdesired_ci.py issue decides).
#
#   drift-check.sh ORG_DIR OUT_DIR
#
# Writes into OUT_DIR:
#   status     in-sync | drift | error
#   issue.md   the issue's body, its first line a marker that finds the issue again
#   drift.log  the check's stderr
# Exits 0 when the check ran (drift or not), 1 when it failed (then no issue is touched).
#
# Environment: DRIFT_COMMAND, the check; it is given ORG_DIR and `--format markdown` and must
# exit 0 (in sync), 2 (drift) or 1 (error). Default: `casdesired drift` (CASDESIRED names the
# program), whose Markdown names who changed each object, when and how (docs/drift.md). Give it
# the apply pipeline's audit log, if you keep it as an artifact, to start the window at the
# last successful apply: DRIFT_COMMAND="casdesired drift --audit-log PATH".
# RUN_URL (optional): the CI run's address, named in the issue.
set -uo pipefail

org="${1:?usage: drift-check.sh ORG_DIR OUT_DIR}"
out="${2:?usage: drift-check.sh ORG_DIR OUT_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
read -r -a check <<< "${DRIFT_COMMAND:-${CASDESIRED:-casdesired} drift}"
mkdir -p "$out"
rm -f "$out/status" "$out/issue.md"

marker="$(python3 "$here/casdesired_ci.py" marker drift --dir "$org")" || exit 1

"${check[@]}" "$org" --format markdown > "$out/drift.md" 2> "$out/drift.log"
code=$?
cat "$out/drift.log" >&2
case "$code" in
  0) status=in-sync ;;
  2) status=drift ;;
  *) echo error > "$out/status"; exit 1 ;;
esac
echo "$status" > "$out/status"
{
  echo "$marker"
  if [ "$status" = drift ]; then
    echo "The live organisation of \`$org\` no longer matches the YAML on the main branch."
    echo "This issue is updated every night while the drift lasts and closed when it is gone."
  else
    echo "No drift: the live organisation of \`$org\` matches the YAML on the main branch."
  fi
  echo
  echo "Last checked: $(date -u +%Y-%m-%dT%H:%M:%SZ)${RUN_URL:+ ([run]($RUN_URL))}"
  echo
  cat "$out/drift.md"
} > "$out/issue.md"
exit 0
