#!/usr/bin/env python3
"""The decisions of the example pipelines, made from files: no network, no GitHub, no GitLab.

The workflows fetch what they need with `gh` or `curl` (thin, separate steps), hand it to these
subcommands as files, and act on the one line they print. Standard library only, so it runs
wherever casdesired is installed (Python 3.10+).

  marker      the hidden first line of a plan comment, drift issue or apply summary
  comment     which comment is the plan's sticky comment: "update ID" or "create"
  issue       what to do with the drift issue: "create", "update N", "close N" or "none"
  pick-run    GitHub: the pull request's workflow run whose artifact holds the reviewed plan
  merge-request, pick-pipeline, downstream, pick-job
              GitLab: the merged merge request, its last pipeline, the child pipeline, and
              the plan job of one organisation, whose artifact holds the reviewed plan
  summary     the Markdown summary of an `apply --format json` report (texts escaped)
  orgs-json   organisation directories (one a line, from orgs.sh) as a matrix: [{dir, slug}]
  gitlab-child  a GitLab child pipeline with one job per organisation directory
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAFE_DIR = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
"""Organisation directories the examples accept: safe in a shell word, a YAML key, a job name,
an HTML comment and a Markdown heading."""


class Refused(Exception):
    """A decision that must stop the pipeline: said on stderr, exit 1."""


# --- reading the fetched JSON -------------------------------------------------------------


def values(path: Path) -> Iterator[Any]:
    """Every JSON value in a file: one document, JSON lines, or pages concatenated
    (`gh api --paginate` writes one array per page); arrays are flattened."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        value, position = decoder.raw_decode(text, position)
        if isinstance(value, list):
            yield from value
        else:
            yield value


def marker(kind: str, directory: str) -> str:
    """The hidden line that identifies a pipeline's comment or issue for one organisation."""
    if not SAFE_DIR.match(directory):
        raise Refused(f"organisation directory {directory!r}: use letters, digits, . _ - and /")
    return f"<!-- casdesired-{kind}:{directory} -->"


def _author(item: dict[str, Any]) -> str | None:
    user = item.get("user") or item.get("author") or {}
    if isinstance(user, dict):
        name = user.get("login") or user.get("username")
        return str(name) if name else None
    return str(user)


# --- decisions ----------------------------------------------------------------------------


def comment(comments: list[dict[str, Any]], mark: str, author: str | None) -> str:
    """The newest comment carrying ``mark`` (by ``author``, if given) is updated in place."""
    ours = [
        c for c in comments
        if mark in str(c.get("body") or "") and (author is None or _author(c) == author)
    ]
    if not ours:
        return "create"
    newest = max(ours, key=lambda c: (str(c.get("created_at") or ""), int(c["id"])))
    return f"update {newest['id']}"


def issue(issues: list[dict[str, Any]], mark: str, status: str) -> str:
    """Drift opens one issue, updates it while drift persists, closes it when gone; an error
    of the check itself changes nothing (the job fails instead)."""
    open_ones = [
        i for i in issues
        if mark in str(i.get("body") or i.get("description") or "")
        and str(i.get("state", "open")).lower() in ("open", "opened")
    ]
    number = None
    if open_ones:
        first = min(open_ones, key=lambda i: int(i.get("number") or i.get("iid") or 0))
        number = first.get("number") or first.get("iid")
    if status == "drift":
        return f"update {number}" if number is not None else "create"
    if status == "in-sync":
        return f"close {number}" if number is not None else "none"
    return "none"


def pick_run(runs: list[dict[str, Any]], head_sha: str) -> str:
    """The newest run of the plan workflow for the pull request's last commit, if it
    succeeded: its artifacts are what was reviewed. Anything else refuses: never re-plan."""
    mine = [r for r in runs if r.get("headSha") == head_sha]
    if not mine:
        raise Refused(
            f"no plan run for the pull request's last commit {head_sha}: nothing is applied "
            "(the merge must be of a commit whose plan was reviewed)"
        )
    newest = max(mine, key=lambda r: (str(r.get("createdAt") or ""), int(r["databaseId"])))
    if newest.get("status") != "completed" or newest.get("conclusion") != "success":
        raise Refused(
            f"the last plan run {newest['databaseId']} of commit {head_sha} is "
            f"{newest.get('status')}/{newest.get('conclusion')}: nothing is applied"
        )
    return str(newest["databaseId"])


def merge_request(mrs: list[dict[str, Any]]) -> str:
    """GitLab: the merged merge request of a commit: ``IID HEAD_SHA FORCE`` (FORCE 1 when it
    carries the ``casdesired-force`` label: a reviewer accepted its "needs --force" reasons)."""
    merged = [m for m in mrs if m.get("state") == "merged"]
    if not merged:
        raise Refused("this commit is not the merge of a merge request: nothing reviewed, "
                      "nothing applied")
    mr = max(merged, key=lambda m: int(m["iid"]))
    force = 1 if "casdesired-force" in (mr.get("labels") or []) else 0
    return f"{mr['iid']} {mr['sha']} {force}"


def pick_pipeline(pipelines: list[dict[str, Any]], head_sha: str) -> str:
    """GitLab: the newest merge request pipeline of the merge request's last commit, if it
    succeeded: its plan jobs' artifacts are what was reviewed."""
    mine = [p for p in pipelines if p.get("sha") == head_sha]
    if not mine:
        raise Refused(f"no merge request pipeline for its last commit {head_sha}: nothing is "
                      "applied")
    newest = max(mine, key=lambda p: int(p["id"]))
    if newest.get("status") != "success":
        raise Refused(f"the last merge request pipeline {newest['id']} of {head_sha} is "
                      f"{newest.get('status')}: nothing is applied")
    return str(newest["id"])


def downstream(bridges: list[dict[str, Any]]) -> str:
    """GitLab: the child pipeline the plan jobs ran in (the trigger job's downstream)."""
    for bridge in bridges:
        child = bridge.get("downstream_pipeline") or {}
        if child.get("id"):
            return str(child["id"])
    raise Refused("the merge request pipeline started no child pipeline: nothing is applied")


def pick_job(jobs: list[dict[str, Any]], directory: str) -> str:
    """GitLab: the successful plan job of ``directory`` (``plan:DIR``) in the child pipeline."""
    name = f"plan:{directory}"
    found = [j for j in jobs if j.get("name") == name and j.get("status") == "success"]
    if not found:
        raise Refused(f"no successful job {name} in the reviewed pipeline: nothing is applied")
    return str(max(found, key=lambda j: int(j["id"]))["id"])


# --- rendering ----------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!])")


def md(text: object) -> str:
    """A value from Exchange or the YAML, inert in Markdown: one line, specials escaped,
    mentions and issue links broken with a zero-width space."""
    flat = str(text).replace("\r", "\\r").replace("\n", "\\n")
    flat = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in flat)
    # GitHub links @team and #1 whatever the escaping: a zero-width space breaks them.
    flat = _MD_SPECIAL.sub(r"\\\1", flat).replace("@", "@\u200b").replace("#", "#\u200b")
    return flat.replace("$", "&#36;")  # GitHub reads $...$ as math, whatever the escaping


ICONS = {"applied": "✅", "failed": "❌", "unknown": "❓", "not attempted": "⏸"}
HEADLINES = {
    "applied": "✅ applied and verified",
    "nothing-to-apply": "✅ nothing to apply",
    "withheld": "⛔ not done: blocking findings withheld changes",
    "refused": "⛔ refused before any change",
    "cancelled": "⏹ cancelled before any change",
    "incomplete": "❌ incomplete",
    "error": "❌ failed before any change",
}


def summary(report: dict[str, Any], directory: str) -> str:
    """The apply report as Markdown for a job summary or a comment."""
    lines = [marker("apply", directory), f"### casdesired apply: {md(directory)}", ""]
    lines.append(f"**{HEADLINES.get(str(report['outcome']), md(report['outcome']))}** "
                 f"(exit {int(report['exit_code'])})")
    plan = report.get("plan")
    if plan:
        lines += ["", f"Plan `{md(plan['plan_id'])}` for {md(plan['organisation'])}: "
                      f"{md(plan['summary'])}"]
    counts = report["counts"]
    lines += ["", f"{counts['applied']} applied, {counts['failed']} failed, "
                  f"{counts['unknown']} unknown, {counts['not_attempted']} not attempted."]
    if report["changes"]:
        lines += ["", "| | Change | Result |", "|---|---|---|"]
        for change in report["changes"]:
            result = md(change["status"])
            if change.get("error"):
                result += f": {md(change['error_from'])} said: {md(change['error'])}"
            lines.append(f"| {ICONS.get(change['status'], '')} | {md(change['description'])} "
                         f"| {result} |")
    for title, items in (("Refused", report["refusals"]),
                         ("Verification", report["verification"])):
        lines += ["", f"**{title}:**", *(f"- {md(item)}" for item in items)] if items else []
    if report.get("stopped"):
        lines += ["", f"**Stopped:** {md(report['stopped'])}"]
    if report.get("error") and not report["refusals"]:
        lines += ["", f"**Error:** {md(report['error'])}"]
    withheld = report.get("withheld") or []
    if withheld:
        total = sum(int(site["count"]) for site in withheld)
        lines += ["", f"**Withheld, not applied** ({total} change(s); fix the findings, then "
                      "plan and apply again):"]
        for site in withheld:
            lines.append(f"- {md(site['site'] or 'the whole organisation')}: {int(site['count'])} "
                         "change(s) withheld by:")
            for finding in site["findings"]:
                where = f"{md(finding['location'])}: " if finding.get("location") else ""
                lines.append(f"  - {where}{md('[' + str(finding['rule']) + ']')} "
                             f"{md(finding['message'])}")
    if report.get("lock_kept"):
        lines += ["", "**The organisation lock was kept** (a batch's answer was lost): see the "
                      "job log for the unlock command."]
    rollback = report.get("rollback")
    if rollback and rollback.get("path"):
        lines += ["", "A rollback plan was written (kept with this job's artifacts)."]
    return "\n".join(lines) + "\n"


def orgs_json(lines: list[str]) -> list[dict[str, str]]:
    out = []
    for line in lines:
        directory = line.strip().rstrip("/")
        if not directory:
            continue
        marker("plan", directory)  # refuses an unsafe name
        out.append({"dir": directory, "slug": directory.replace("/", "__")})
    return out


def gitlab_child(
    directories: list[str], mode: str, variables: dict[str, str], include: str
) -> dict[str, Any]:
    """A child pipeline (JSON is YAML) with one job per organisation: the fleet scales out
    on the runners the project has. ``mode``: plan (merge requests), apply (main), drift."""
    document: dict[str, Any] = {
        "include": [{"local": include}],
        "variables": variables,
        "stages": [mode],
    }
    if not directories:
        document["casdesired:nothing"] = {
            "stage": mode, "image": "busybox:stable",
            "script": ["echo 'no organisation directory changed'"],
        }
    for directory in directories:
        marker(mode, directory)
        job: dict[str, Any] = {
            "extends": f".casdesired-{mode}",
            "variables": {"ORG_DIR": directory, "ORG_SLUG": directory.replace("/", "__")},
        }
        if mode == "apply":
            # One apply per organisation at a time, queued, never cancelled.
            job["resource_group"] = f"casdesired-{directory.replace('/', '__')}"
        document[f"{mode}:{directory}"] = job
    return document


# --- command line -------------------------------------------------------------------------


def _records(path: Path) -> list[dict[str, Any]]:
    return [v for v in values(path) if isinstance(v, dict)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="casdesired_ci.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("marker")
    p.add_argument("kind", choices=("plan", "drift", "apply"))
    p.add_argument("--dir", required=True)
    p = sub.add_parser("comment")
    p.add_argument("--dir", required=True)
    p.add_argument("--comments", type=Path, required=True)
    p.add_argument("--author")
    p = sub.add_parser("issue")
    p.add_argument("--dir", required=True)
    p.add_argument("--issues", type=Path, required=True)
    p.add_argument("--status", choices=("drift", "in-sync", "error"), required=True)
    p = sub.add_parser("pick-run")
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--head-sha", required=True)
    p = sub.add_parser("merge-request")
    p.add_argument("--mrs", type=Path, required=True)
    p = sub.add_parser("pick-pipeline")
    p.add_argument("--pipelines", type=Path, required=True)
    p.add_argument("--head-sha", required=True)
    p = sub.add_parser("downstream")
    p.add_argument("--bridges", type=Path, required=True)
    p = sub.add_parser("pick-job")
    p.add_argument("--jobs", type=Path, required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("summary")
    p.add_argument("report", type=Path)
    p.add_argument("--dir", required=True)
    sub.add_parser("orgs-json")
    p = sub.add_parser("gitlab-child")
    p.add_argument("--mode", choices=("plan", "apply", "drift"), required=True)
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--include", default="ci/casdesired/gitlab-jobs.yml",
                   help="the job templates (.casdesired-plan, -apply, -drift) to include")
    args = parser.parse_args(argv)
    try:
        if args.command == "marker":
            print(marker(args.kind, args.dir))
        elif args.command == "comment":
            print(comment(_records(args.comments), marker("plan", args.dir),
                          args.author or None))
        elif args.command == "issue":
            print(issue(_records(args.issues), marker("drift", args.dir), args.status))
        elif args.command == "pick-run":
            print(pick_run(_records(args.runs), args.head_sha))
        elif args.command == "merge-request":
            print(merge_request(_records(args.mrs)))
        elif args.command == "pick-pipeline":
            print(pick_pipeline(_records(args.pipelines), args.head_sha))
        elif args.command == "downstream":
            print(downstream(_records(args.bridges)))
        elif args.command == "pick-job":
            marker("plan", args.dir)
            print(pick_job(_records(args.jobs), args.dir))
        elif args.command == "summary":
            report = json.loads(args.report.read_text(encoding="utf-8"))
            sys.stdout.write(summary(report, args.dir))
        elif args.command == "orgs-json":
            print(json.dumps(orgs_json(sys.stdin.read().splitlines())))
        else:
            variables = dict(v.split("=", 1) for v in args.var)
            directories = [line.strip() for line in sys.stdin.read().splitlines()
                           if line.strip()]
            child = gitlab_child(directories, args.mode, variables, args.include)
            print(json.dumps(child, indent=2))
    except Refused as exc:
        print(f"casdesired_ci: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
