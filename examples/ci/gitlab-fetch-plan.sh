#!/usr/bin/env bash
# GitLab, on the default branch: fetch the plan file the merged merge request's last pipeline
# saved for one organisation. The only GitLab API calls of the apply; every choice among the
# answers is casdesired_ci.py's (tested), so a wrong pick refuses instead of applying.
#
#   gitlab-fetch-plan.sh ORG_DIR DEST_DIR      writes DEST_DIR/plan.json and DEST_DIR/force
#
# Environment (GitLab's own): CI_API_V4_URL, CI_PROJECT_ID, CI_COMMIT_SHA; and
# CASDESIRED_GITLAB_TOKEN, a project access token with read_api (masked CI/CD variable).
set -euo pipefail

org="${1:?usage: gitlab-fetch-plan.sh ORG_DIR DEST_DIR}"
dest="${2:?usage: gitlab-fetch-plan.sh ORG_DIR DEST_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
decide() { python3 "$here/casdesired_ci.py" "$@"; }
api() {
  curl --fail --silent --show-error --header "PRIVATE-TOKEN: $CASDESIRED_GITLAB_TOKEN" \
    "$CI_API_V4_URL/projects/$CI_PROJECT_ID/$1"
}
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

api "repository/commits/$CI_COMMIT_SHA/merge_requests" > "$work/mrs.json"
read -r iid head_sha force < <(decide merge-request --mrs "$work/mrs.json")
api "merge_requests/$iid/pipelines?per_page=100" > "$work/pipelines.json"
pipeline="$(decide pick-pipeline --pipelines "$work/pipelines.json" --head-sha "$head_sha")"
api "pipelines/$pipeline/bridges" > "$work/bridges.json"
child="$(decide downstream --bridges "$work/bridges.json")"
api "pipelines/$child/jobs?per_page=100" > "$work/jobs.json"
job="$(decide pick-job --jobs "$work/jobs.json" --dir "$org")"
slug="${org//\//__}"
api "jobs/$job/artifacts/out/$slug/plan.json" > "$dest/plan.json"
echo "$force" > "$dest/force"
echo "reviewed plan of $org: merge request !$iid, pipeline $pipeline, job $job"
