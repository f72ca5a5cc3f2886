#!/usr/bin/env bash
# The casdesired-validate pre-commit hook (.pre-commit-hooks.yaml): `casdesired validate` for
# every organisation directory holding one of the YAML files pre-commit passes (the nearest
# directory above the file with a `kind: organisation` file), each once. Options given as the
# hook's args (e.g. --strict) are passed on. Runs the casdesired on PATH: the one the project
# installs and its pipelines pin, so a commit is checked by the rules CI will apply.
set -uo pipefail

options=()
files=()
for arg in "$@"; do
  case "$arg" in
    -*) options+=("$arg") ;;
    *) files+=("$arg") ;;
  esac
done

organisation() {  # the organisation directory holding $1, or nothing
  local dir
  dir="$(dirname -- "$1")"
  while :; do
    if grep -qsE '^kind:[[:space:]]*["'\'']?organisation["'\'']?[[:space:]]*(#.*)?$' \
         -- "$dir"/*.yaml "$dir"/*.yml; then
      printf '%s\n' "$dir"
      return
    fi
    case "$dir" in .|/) return ;; esac
    dir="$(dirname -- "$dir")"
  done
}

status=0
while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  "${CASDESIRED:-casdesired}" validate "${options[@]}" "$dir" || status=1
done < <(for file in "${files[@]}"; do organisation "$file"; done | sort -u)
exit "$status"
