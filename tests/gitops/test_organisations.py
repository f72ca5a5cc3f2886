"""examples/ci/orgs.sh: the organisation directories of a repository, and those a change
touched — one CI job each, so a fleet of organisations scales out on the runners."""

from __future__ import annotations

import shutil
from pathlib import Path

from gitops.pipeline import ROOT, git, new_repo, run


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    sites = ROOT / "sites"
    new_repo(repo, {"orgs/contoso": sites, "orgs/contoso-eu": sites,
                    "orgs/region/fabrikam": sites})
    (repo / "README.md").write_text("config\n")
    (repo / "notes").mkdir()
    (repo / "notes" / "organisation.yaml").write_text("kind: site\n")  # not an organisation
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs")
    return repo


def _orgs(repo: Path, *args: str) -> list[str]:
    result = run(repo, "orgs.sh", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_every_organisation_directory_is_listed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert _orgs(repo) == ["orgs/contoso", "orgs/contoso-eu", "orgs/region/fabrikam"]


def test_only_the_organisations_a_change_touched(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "change")
    for path in ("orgs/contoso-eu/hq.yaml", "orgs/region/fabrikam/dr.yaml", "README.md"):
        (repo / path).write_text((repo / path).read_text() + "# changed\n")
    git(repo, "commit", "-q", "-am", "two organisations")
    # orgs/contoso is a prefix of orgs/contoso-eu: it is not touched.
    assert _orgs(repo, "--changed-since", "main") == ["orgs/contoso-eu", "orgs/region/fabrikam"]
    # Main moved on meanwhile: only the branch's own changes count (the merge base).
    git(repo, "checkout", "-q", "main")
    hq = repo / "orgs/contoso/hq.yaml"
    hq.write_text(hq.read_text() + "# on main\n")
    git(repo, "commit", "-q", "-am", "main")
    git(repo, "checkout", "-q", "change")
    assert _orgs(repo, "--changed-since", "main") == ["orgs/contoso-eu", "orgs/region/fabrikam"]
    # A merge commit: what it brought in, against its first parent.
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "change")
    assert _orgs(repo, "--changed-since", "HEAD^1") == ["orgs/contoso-eu",
                                                        "orgs/region/fabrikam"]


def test_a_removed_organisation_and_a_docs_only_change_give_no_job(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "change")
    shutil.rmtree(repo / "orgs/contoso")
    (repo / "README.md").write_text("more\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "retire contoso")
    assert _orgs(repo, "--changed-since", "main") == []
    assert _orgs(repo) == ["orgs/contoso-eu", "orgs/region/fabrikam"]
