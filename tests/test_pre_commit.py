"""The pre-commit hook of .pre-commit-hooks.yaml, run by pre-commit itself (`try-repo`) in a
repository of organisations: it validates each organisation a commit touches, offline (the hook
installs nothing: it runs the casdesired installed beside pre-commit)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _hook_repo(tmp_path: Path) -> Path:
    """This repository's hook files, committed (try-repo reads a commit, not a work tree)."""
    hooks = tmp_path / "casdesired-hooks"
    (hooks / "examples").mkdir(parents=True)
    shutil.copy2(ROOT / ".pre-commit-hooks.yaml", hooks)
    shutil.copytree(ROOT / "examples" / "pre-commit", hooks / "examples" / "pre-commit")
    _git(hooks, "init", "-q", "-b", "main")
    _git(hooks, "add", "-A")
    _git(hooks, "commit", "-q", "-m", "hooks")
    return hooks


def _try_repo(repo: Path, hooks: Path, tmp_path: Path, *args: str
              ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           # Offline: nothing may be fetched (the hook installs nothing).
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "PIP_NO_INDEX": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        [str(BIN / "pre-commit"), "try-repo", str(hooks), "casdesired-validate",
         *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=300,
    )


def test_the_hook_validates_each_touched_organisation(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "sites", repo / "orgs" / "good")
    shutil.copytree(ROOT / "sites", repo / "orgs" / "region" / "also-good")
    (repo / "README.md").write_text("config\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "organisations")

    hooks = _hook_repo(tmp_path)
    result = _try_repo(repo, hooks, tmp_path, "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "casdesired validate" in result.stdout and "Passed" in result.stdout

    # A broken site file in a nested organisation fails the hook, naming file:line:column.
    hq = repo / "orgs" / "region" / "also-good" / "hq.yaml"
    hq.write_text(hq.read_text().replace("site: HQ", "site: HQ\nunknown_key: 1"))
    _git(repo, "add", "-A")
    result = _try_repo(repo, hooks, tmp_path, "--files", str(hq.relative_to(repo)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout
    assert "orgs/region/also-good/hq.yaml:" in result.stdout
    assert "unknown_key" in result.stdout
    # Only the touched organisation was validated.
    assert "(contoso)" in result.stdout and result.stdout.count("in 4 files") == 1
