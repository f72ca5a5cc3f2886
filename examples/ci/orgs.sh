#!/usr/bin/env bash
# The organisation directories of the repository, one a line: every directory holding a tracked
# YAML file with `kind: organisation` (a repository may hold many organisations).
#
#   orgs.sh                      every organisation (the nightly drift check)
#   orgs.sh --changed-since REF  only those with a file changed since REF's merge base with
#                                HEAD (a pull request: the base branch; a merge: HEAD^1)
#
# Run from the repository's top. CI turns the list into one job per organisation.
set -euo pipefail

since=""
if [ "${1:-}" = "--changed-since" ]; then
  since="${2:?orgs.sh: --changed-since needs a git revision}"
  shift 2
fi
[ "$#" -eq 0 ] || { echo "usage: orgs.sh [--changed-since REF]" >&2; exit 1; }

organisations() {
  git ls-files -z -- '*.yaml' '*.yml' \
    | xargs -0 -r grep -lE '^kind:[[:space:]]*["'\'']?organisation["'\'']?[[:space:]]*(#.*)?$' -- \
    | while IFS= read -r file; do dirname -- "$file"; done \
    | sort -u
}

if [ -z "$since" ]; then
  organisations
  exit 0
fi

changed="$(git diff --name-only "$since...HEAD" --)"
organisations | while IFS= read -r dir; do
  if [ "$dir" = "." ]; then
    [ -n "$changed" ] && echo "$dir"
    continue
  fi
  if printf '%s\n' "$changed" | grep -qF -- "$dir/"; then
    # A changed file below the directory (grep -F matched somewhere; check it is a prefix).
    if printf '%s\n' "$changed" | awk -v p="$dir/" 'index($0, p) == 1 { found = 1 } END { exit !found }'; then
      echo "$dir"
    fi
  fi
done
