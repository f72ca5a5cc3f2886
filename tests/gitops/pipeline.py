"""Helpers to run the example pipelines' scripts (examples/ci/) as CI runs them: bash, in a git
repository holding organisation directories, with the installed `casdesired`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "examples" / "ci"
CASDESIRED = str(Path(sys.executable).parent / "casdesired")


def ci_module() -> ModuleType:
    """examples/ci/casdesired_ci.py, imported for its decisions."""
    spec = importlib.util.spec_from_file_location("casdesired_ci", SCRIPTS / "casdesired_ci.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                            check=True)
    return result.stdout


def new_repo(repo: Path, organisations: dict[str, Path]) -> None:
    """A repository on branch main with each organisation directory copied in, committed."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for name, source in organisations.items():
        shutil.copytree(source, repo / name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "organisations")


def run(repo: Path, script: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """``examples/ci/SCRIPT ARGS`` in ``repo``, with the installed casdesired."""
    env = {**os.environ, "CASDESIRED": CASDESIRED, **extra}
    return subprocess.run(["bash", str(SCRIPTS / script), *args], cwd=repo, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def decide(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``casdesired_ci.py ARGS`` as the workflows call it."""
    return subprocess.run([sys.executable, str(SCRIPTS / "casdesired_ci.py"), *args],
                          input=stdin, capture_output=True, text=True, check=False, timeout=60)
