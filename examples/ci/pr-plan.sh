#!/usr/bin/env bash
# Pull request check for one organisation: validate, plan against the organisation, save the
# plan, and write the review comment made from the saved file (`casdesired show`).
#
#   pr-plan.sh ORG_DIR OUT_DIR
#
# Writes into OUT_DIR:
#   plan.json    the plan to keep as the artifact the merge applies (absent if none was made)
#   comment.md   the sticky comment's body, its first line a marker that finds it again
#   status       no-changes | changes | failed
#   plan.txt     the plan as text, for the job log
# Exits 0 when a plan was made (with or without changes: `--detailed-exitcode` 0 or 2), 1 when
# validation or the plan failed (the comment then says why).
#
# Environment: CASDESIRED (default: casdesired), PLAN_LINK (the artifact's URL, for the
# comment), COMMENT_MAX_BYTES (default 60000), and the organisation file's credential variables.
set -uo pipefail

org="${1:?usage: pr-plan.sh ORG_DIR OUT_DIR}"
out="${2:?usage: pr-plan.sh ORG_DIR OUT_DIR}"
casdesired="${CASDESIRED:-casdesired}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
rm -f "$out/plan.json" "$out/comment.md" "$out/status"

marker="$(python3 "$here/casdesired_ci.py" marker plan --dir "$org")" || exit 1

failed() {  # $1: what failed, $2: its log
  echo failed > "$out/status"
  {
    echo "$marker"
    echo "### casdesired plan: \`$org\`"
    echo
    echo "**⛔ $1** — nothing can be applied from this pull request until it passes."
    echo
    echo "<details><summary>output</summary>"
    echo
    # An indented code block: nothing in the output can start markup or end the block.
    sed 's/^/    /' "$2"
    echo
    echo "</details>"
  } > "$out/comment.md"
  cat "$2" >&2
  exit 1
}

"$casdesired" validate "$org" > "$out/validate.txt" 2>&1 || failed "casdesired validate failed" "$out/validate.txt"

"$casdesired" plan "$org" --out "$out/plan.json" --detailed-exitcode > "$out/plan.txt" 2> "$out/plan.log"
code=$?
cat "$out/plan.txt"
cat "$out/plan.log" >&2
case "$code" in
  0) status=no-changes ;;
  2) status=changes ;;
  *) status=failed ;;
esac

if [ -f "$out/plan.json" ]; then
  # The comment is made from the saved file: exactly what the merge will apply.
  {
    echo "$marker"
    "$casdesired" show "$out/plan.json" --format markdown \
      --max-bytes "${COMMENT_MAX_BYTES:-60000}" \
      ${PLAN_LINK:+--full-plan-link "$PLAN_LINK"}
  } > "$out/comment.md" || failed "casdesired show failed" "$out/plan.log"
fi
if [ "$status" = failed ]; then
  [ -f "$out/plan.json" ] || failed "casdesired plan failed" "$out/plan.log"
  # A plan with blocking findings: the comment shows it (verdict ⛔), and the check fails.
  echo failed > "$out/status"
  exit 1
fi
echo "$status" > "$out/status"
exit 0
