"""The example pipelines' scripts against the lab, as CI runs them (docs/gitops.md).

Pull request: plan → the comment body made from the saved plan → merge: apply that exact plan
file → nightly: the drift check. And the merge's refusals: a stale plan, YAML on main that is
not the reviewed YAML, no plan at all — each refused before any change, never re-planned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply.labenv import Env

from casdesired.agent.protocol import is_fenced
from casdesired.cli import main
from casdesired.lab.exchange.administrators import run_as
from casdesired.plan.plan import Plan
from gitops.pipeline import decide, git, new_repo, run

ORG = "orgs/contoso"


def _writes(env: Env) -> list[dict[str, object]]:
    return [e for e in env.cmdlets() if is_fenced(str(e["cmdlet"]))]


@pytest.fixture
def repo(env: Env) -> Path:
    """A configuration repository whose one organisation is the lab's."""
    path = env.tmp / "repo"
    new_repo(path, {ORG: env.org_dir})
    return path


def _pull_request(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "change-hq")
    hq = repo / ORG / "hq.yaml"
    hq.write_text(hq.read_text() + "# reviewed in the pull request\n")
    git(repo, "commit", "-q", "-am", "HQ: a reviewed change")


def _merge(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge change-hq", "change-hq")


def test_pull_request_plan_then_merge_applies_that_plan_then_no_drift(
    env: Env, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull_request(repo)
    changed = run(repo, "orgs.sh", "--changed-since", "main")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines() == [ORG]

    pr = run(repo, "pr-plan.sh", ORG, "out/pr", PLAN_LINK="https://ci.example/run/7/artifacts")
    assert pr.returncode == 0, pr.stderr
    out = repo / "out" / "pr"
    assert (out / "status").read_text() == "changes\n"
    assert _writes(env) == []  # a plan writes nothing
    comment = (out / "comment.md").read_text()
    first, rest = comment.split("\n", 1)
    assert first == f"<!-- casdesired-plan:{ORG} -->"
    assert rest.startswith("### casdesired plan for contoso")
    saved = Plan.load(out / "plan.json")
    assert saved.has_changes
    # The comment is the saved file's Markdown (show renders it as plan did: tests/cli).
    capsys.readouterr()
    assert main(["show", str(out / "plan.json"), "--format", "markdown", "--max-bytes", "60000",
                 "--full-plan-link", "https://ci.example/run/7/artifacts"]) == 0
    assert rest == capsys.readouterr().out
    assert "rebind database HQ-DB05" in rest

    # The sticky comment: created once, then updated in place.
    (repo / "none.json").write_text("[]")
    assert decide("comment", "--dir", ORG, "--comments", str(repo / "none.json")).stdout == (
        "create\n")
    (repo / "comments.json").write_text(json.dumps(
        [{"id": 11, "body": "LGTM", "user": {"login": "reviewer"}},
         {"id": 12, "body": comment, "user": {"login": "github-actions[bot]"}}]))
    assert decide("comment", "--dir", ORG, "--comments", str(repo / "comments.json"),
                  "--author", "github-actions[bot]").stdout == "update 12\n"

    _merge(repo)
    assert run(repo, "orgs.sh", "--changed-since", "HEAD^1").stdout.splitlines() == [ORG]
    applied = run(repo, "apply-merged.sh", str(out / "plan.json"), ORG, "out/apply",
                  APPLY_FORCE="1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads((repo / "out" / "apply" / "apply-report.json").read_text())
    assert report["outcome"] == "applied" and report["verified"] is True
    assert report["plan"]["plan_id"] == saved.plan_id  # that exact plan, not a new one
    assert [c["description"] for c in report["changes"]] == [c.describe() for c in saved.changes]
    summary = (repo / "out" / "apply" / "summary.md").read_text()
    assert summary.startswith(
        f"<!-- casdesired-apply:{ORG} -->\n### casdesired apply: orgs/contoso")
    assert "applied and verified" in summary
    assert (repo / "out" / "apply" / "rollback.json").is_file()
    assert len(_writes(env)) > 0

    drift = run(repo, "drift-check.sh", ORG, "out/drift")  # its default: casdesired drift
    assert drift.returncode == 0, drift.stderr
    assert (repo / "out" / "drift" / "status").read_text() == "in-sync\n"
    issue = (repo / "out" / "drift" / "issue.md").read_text()
    assert issue.startswith(f"<!-- casdesired-drift:{ORG} -->\nNo drift")
    (repo / "issues.json").write_text(json.dumps([{"number": 4, "state": "OPEN", "body": issue}]))
    assert decide("issue", "--dir", ORG, "--status", "in-sync",
                  "--issues", str(repo / "issues.json")).stdout == "close 4\n"

    # Someone rebinds a database by hand: the next night finds drift, names who, and keeps the
    # issue open.
    run_as(env.organisation, "CONTOSO\\alice", "Set-MailboxDatabase",
           {"Identity": "HQ-DB05", "RpcClientAccessServer": "hq-cas02.contoso.local"})
    drift = run(repo, "drift-check.sh", ORG, "out/drift")
    assert drift.returncode == 0, drift.stderr
    assert (repo / "out" / "drift" / "status").read_text() == "drift\n"
    issue = (repo / "out" / "drift" / "issue.md").read_text()
    assert "no longer matches the YAML" in issue
    row = next(line for line in issue.splitlines() if line.startswith("| database HQ-DB05 |"))
    assert "| contoso.local/Users/alice |" in row
    assert row.endswith(
        "| Set-MailboxDatabase -Identity HQ-DB05 -RpcClientAccessServer hq-cas02.contoso.local |")
    for existing, action in (([], "create"), ([{"number": 4, "state": "OPEN", "body": issue}],
                                              "update 4")):
        (repo / "issues.json").write_text(json.dumps(existing))
        assert decide("issue", "--dir", ORG, "--status", "drift",
                      "--issues", str(repo / "issues.json")).stdout == f"{action}\n"


def _reviewed(repo: Path) -> Path:
    _pull_request(repo)
    pr = run(repo, "pr-plan.sh", ORG, "out/pr")
    assert pr.returncode == 0, pr.stderr
    _merge(repo)
    return repo / "out" / "pr" / "plan.json"


def _refused(env: Env, repo: Path, plan: Path) -> dict[str, object]:
    applied = run(repo, "apply-merged.sh", str(plan), ORG, "out/apply", APPLY_FORCE="1")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "Traceback" not in applied.stderr
    assert _writes(env) == []
    report: dict[str, object] = json.loads(
        (repo / "out" / "apply" / "apply-report.json").read_text())
    assert report["outcome"] == "refused"
    return report


def test_the_merge_refuses_a_plan_gone_stale_since_review(env: Env, repo: Path) -> None:
    plan = _reviewed(repo)
    env.organisation.add_databases(1, "HQ", "HQ-DB9")
    report = _refused(env, repo, plan)
    assert "stale" in str(report["refusals"]) and "HQ-DB901" in str(report["refusals"])
    assert "refused before any change" in (repo / "out" / "apply" / "summary.md").read_text()


def test_the_merge_refuses_when_main_holds_other_yaml_than_was_reviewed(
    env: Env, repo: Path
) -> None:
    plan = _reviewed(repo)
    # Another change reached main after this pull request was planned.
    hq = repo / ORG / "hq.yaml"
    hq.write_text(hq.read_text().replace('  patterns: ["HQ-DB0[3-6]"]\n', ""))
    git(repo, "commit", "-q", "-am", "HQ: an unreviewed change")
    report = _refused(env, repo, plan)
    assert "hq.yaml changed" in str(report["refusals"])


def test_the_merge_never_plans_without_the_reviewed_plan(env: Env, repo: Path) -> None:
    _pull_request(repo)
    _merge(repo)
    applied = run(repo, "apply-merged.sh", "out/pr/plan.json", ORG, "out/apply")
    assert applied.returncode == 1
    assert "no reviewed plan file for orgs/contoso" in applied.stderr
    assert env.cmdlets() == []  # not even a read: nothing was planned


def test_a_failing_plan_fails_the_check_with_a_comment_that_says_why(
    env: Env, repo: Path
) -> None:
    git(repo, "checkout", "-q", "-b", "broken")
    hq = repo / ORG / "hq.yaml"
    hq.write_text(hq.read_text() + '"</details><b>unknown_key</b> @team #1": 1\n')
    pr = run(repo, "pr-plan.sh", ORG, "out/pr")
    assert pr.returncode == 1
    out = repo / "out" / "pr"
    assert (out / "status").read_text() == "failed\n"
    assert not (out / "plan.json").exists()
    comment = (out / "comment.md").read_text()
    assert comment.startswith(f"<!-- casdesired-plan:{ORG} -->\n")
    assert "casdesired validate failed" in comment
    # The validator's output (quoting the YAML) stays inside an indented code block.
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(comment)
    code = [t for t in tokens if t.type == "code_block"]
    assert len(code) == 1 and "</details><b>unknown_key</b> @team #1" in code[0].content
    assert sum(1 for t in tokens if t.type == "html_block" and "</details>" in t.content) == 1


def test_a_merged_plan_that_withholds_a_site_fails_the_apply_job_naming_it(
    env: Env, repo: Path
) -> None:
    # The request binds a database that does not exist: its plan check fails (HQ withheld), but
    # nothing stops someone merging it. The merge applies Branch and must still fail the job.
    git(repo, "checkout", "-q", "-b", "change-hq")
    hq = repo / ORG / "hq.yaml"
    hq.write_text(hq.read_text().replace("names: [HQ-DB01, HQ-DB02]",
                                         "names: [HQ-DB01, HQ-DB02, HQ-NOPE]"))
    git(repo, "commit", "-q", "-am", "HQ: a database that does not exist")
    pr = run(repo, "pr-plan.sh", ORG, "out/pr")
    assert pr.returncode == 1 and (repo / "out" / "pr" / "status").read_text() == "failed\n"
    _merge(repo)
    applied = run(repo, "apply-merged.sh", "out/pr/plan.json", ORG, "out/apply",
                  APPLY_FORCE="1")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert len(_writes(env)) > 0  # Branch's changes were made
    report = json.loads((repo / "out" / "apply" / "apply-report.json").read_text())
    assert report["outcome"] == "withheld" and report["exit_code"] == 1
    summary = (repo / "out" / "apply" / "summary.md").read_text()
    assert "⛔ not done: blocking findings withheld changes** (exit 1)" in summary
    assert "**Withheld, not applied** (4 change(s)" in summary
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(summary)
    assert "HQ: 4 change(s) withheld by:" in html
    assert "hq.yaml:31:3: [database-unknown] database 'HQ-NOPE' does not exist" in html.replace(
        "&#x27;", "'")
