"""The example pipelines' decisions (examples/ci/casdesired_ci.py), from the files the API
steps fetch: which comment to update, what to do with the drift issue, which artifact holds the
reviewed plan — and each refusal that keeps a merge from applying what nobody reviewed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.pipeline import ci_module, decide

ci = ci_module()
ORG = "orgs/contoso"
MARK = f"<!-- casdesired-plan:{ORG} -->"


def test_the_sticky_comment_is_ours_the_newest_and_by_the_bot() -> None:
    comments = [
        {"id": 1, "body": f"{MARK}\nold", "user": {"login": "github-actions[bot]"},
         "created_at": "2026-01-01T00:00:00Z"},
        {"id": 2, "body": f"quoting: {MARK}", "user": {"login": "mallory"},
         "created_at": "2026-01-03T00:00:00Z"},
        {"id": 3, "body": f"{MARK}\nnewer", "user": {"login": "github-actions[bot]"},
         "created_at": "2026-01-02T00:00:00Z"},
        {"id": 4, "body": "<!-- casdesired-plan:orgs/contoso-eu -->", "user": {
            "login": "github-actions[bot]"}},
    ]
    assert ci.comment(comments, MARK, "github-actions[bot]") == "update 3"
    assert ci.comment(comments, MARK, None) == "update 2"
    assert ci.comment([], MARK, "github-actions[bot]") == "create"
    # GitLab notes name their author differently.
    notes = [{"id": 9, "body": f"{MARK}\n", "author": {"username": "project_7_bot"}}]
    assert ci.comment(notes, MARK, "project_7_bot") == "update 9"


@pytest.mark.parametrize(
    ("status", "issues", "action"),
    [
        ("drift", [], "create"),
        ("drift", [{"number": 5, "state": "OPEN",
                    "body": "<!-- casdesired-drift:orgs/contoso -->"}], "update 5"),
        ("in-sync", [{"number": 5, "state": "OPEN",
                      "body": "<!-- casdesired-drift:orgs/contoso -->"}], "close 5"),
        ("in-sync", [], "none"),
        # Another organisation's issue is not this one's.
        ("in-sync", [{"number": 6, "state": "OPEN",
                      "body": "<!-- casdesired-drift:orgs/fabrikam -->"}], "none"),
        # The check itself failed: nothing is opened or closed on a guess.
        ("error", [{"number": 5, "state": "OPEN",
                    "body": "<!-- casdesired-drift:orgs/contoso -->"}], "none"),
        # GitLab issues: iid, description, state "opened".
        ("drift", [{"iid": 8, "state": "opened",
                    "description": "<!-- casdesired-drift:orgs/contoso -->"}], "update 8"),
    ],
)
def test_one_drift_issue_opened_updated_and_closed(
    status: str, issues: list[dict[str, object]], action: str
) -> None:
    assert ci.issue(issues, ci.marker("drift", ORG), status) == action


def test_the_reviewed_run_is_the_last_one_of_the_last_commit_and_it_must_have_passed() -> None:
    runs = [
        {"databaseId": 10, "headSha": "aaa", "status": "completed", "conclusion": "success",
         "createdAt": "2026-01-01T00:00:00Z"},
        {"databaseId": 12, "headSha": "bbb", "status": "completed", "conclusion": "success",
         "createdAt": "2026-01-02T00:00:00Z"},
        {"databaseId": 11, "headSha": "bbb", "status": "completed", "conclusion": "success",
         "createdAt": "2026-01-01T12:00:00Z"},
    ]
    assert ci.pick_run(runs, "bbb") == "12"
    with pytest.raises(ci.Refused, match="no plan run for the pull request's last commit ccc"):
        ci.pick_run(runs, "ccc")
    failed = [*runs, {"databaseId": 13, "headSha": "bbb", "status": "completed",
                      "conclusion": "failure", "createdAt": "2026-01-03T00:00:00Z"}]
    with pytest.raises(ci.Refused, match="run 13 of commit bbb is completed/failure"):
        ci.pick_run(failed, "bbb")


def test_gitlab_finds_the_reviewed_plan_job_or_refuses() -> None:
    mrs = [{"iid": 4, "sha": "bbb", "state": "merged", "labels": ["casdesired-force"]},
           {"iid": 3, "sha": "zzz", "state": "closed", "labels": []}]
    assert ci.merge_request(mrs) == "4 bbb 1"
    assert ci.merge_request([{**mrs[0], "labels": []}]) == "4 bbb 0"
    with pytest.raises(ci.Refused, match="not the merge of a merge request"):
        ci.merge_request(mrs[1:])
    pipelines = [{"id": 70, "sha": "bbb", "status": "success"},
                 {"id": 71, "sha": "bbb", "status": "success"},
                 {"id": 72, "sha": "aaa", "status": "success"}]
    assert ci.pick_pipeline(pipelines, "bbb") == "71"
    with pytest.raises(ci.Refused, match="pipeline 73 of bbb is failed"):
        ci.pick_pipeline([*pipelines, {"id": 73, "sha": "bbb", "status": "failed"}], "bbb")
    assert ci.downstream([{"id": 5, "downstream_pipeline": {"id": 80}}]) == "80"
    with pytest.raises(ci.Refused, match="started no child pipeline"):
        ci.downstream([{"id": 5, "downstream_pipeline": None}])
    jobs = [{"id": 91, "name": "plan:orgs/contoso", "status": "success"},
            {"id": 92, "name": "plan:orgs/contoso-eu", "status": "success"},
            {"id": 93, "name": "plan:orgs/fabrikam", "status": "failed"}]
    assert ci.pick_job(jobs, ORG) == "91"
    with pytest.raises(ci.Refused, match="no successful job plan:orgs/fabrikam"):
        ci.pick_job(jobs, "orgs/fabrikam")


def test_pages_of_answers_and_refusals_through_the_command_line(tmp_path: Path) -> None:
    # `gh api --paginate` writes one array per page, back to back.
    pages = tmp_path / "comments.json"
    pages.write_text('[{"id": 1, "body": "x"}]\n[{"id": 2, "body": "' + MARK + '"}]')
    assert decide("comment", "--dir", ORG, "--comments", str(pages)).stdout == "update 2\n"
    runs = tmp_path / "runs.json"
    runs.write_text("[]")
    refused = decide("pick-run", "--runs", str(runs), "--head-sha", "abc")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("casdesired_ci: no plan run for the pull request's last")
    unsafe = decide("marker", "plan", "--dir", "orgs/x -->y")
    assert unsafe.returncode == 1 and "use letters, digits" in unsafe.stderr


def test_the_matrix_and_the_child_pipeline_have_one_job_per_organisation() -> None:
    matrix = decide("orgs-json", stdin="orgs/contoso\norgs/eu/fabrikam/\n")
    assert json.loads(matrix.stdout) == [
        {"dir": "orgs/contoso", "slug": "orgs__contoso"},
        {"dir": "orgs/eu/fabrikam", "slug": "orgs__eu__fabrikam"},
    ]
    assert json.loads(decide("orgs-json", stdin="").stdout) == []
    child = ci.gitlab_child(["orgs/contoso", "orgs/eu/fabrikam"], "apply", {"X": "1"},
                            "ci/casdesired/gitlab-jobs.yml")
    assert child["apply:orgs/eu/fabrikam"] == {
        "extends": ".casdesired-apply",
        "variables": {"ORG_DIR": "orgs/eu/fabrikam", "ORG_SLUG": "orgs__eu__fabrikam"},
        "resource_group": "casdesired-orgs__eu__fabrikam",
    }
    assert "resource_group" not in ci.gitlab_child([ORG], "plan", {}, "x.yml")[f"plan:{ORG}"]
    assert "casdesired:nothing" in ci.gitlab_child([], "plan", {}, "x.yml")


def test_the_apply_summary_cannot_be_turned_into_markup() -> None:
    hostile = "HQ-DB01 | **x** <img src=x> @team #1 $x$ `y`\n| forged | row |"
    report = {
        "format_version": 1, "outcome": "incomplete", "exit_code": 1,
        "plan": {"plan_id": "p1", "organisation": "contoso", "endpoint": "https://ex",
                 "summary": "Plan: 0 to create"},
        "counts": {"applied": 0, "failed": 1, "not_attempted": 0, "unknown": 0},
        "changes": [{"kind": "binding", "action": "update", "site": "HQ", "identity": hostile,
                     "description": f"rebind database {hostile}", "status": "failed",
                     "error": "Exchange <b>said</b>\nno", "error_from": "Exchange"}],
        "stopped": "rebind failed", "verification": [], "verified": False, "rollback": None,
        "lock_kept": False, "refusals": [], "error": None,
    }
    from markdown_it import MarkdownIt

    text = ci.summary(report, ORG)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 2  # the header and the one change: no forged row
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in html and "<b>said" not in html and "<strong>x" not in html
    assert "@\u200bteam" in text and "#\u200b1" in text and "&#36;x&#36;" in text
