"""`casdesired completion bash|zsh|fish`: scripts generated from the parser, that complete.

Each shell runs its script for real (bash's completion function with COMP_WORDS, fish's
`complete -C`, zsh's parser and loader); .ci/run installs zsh and fish.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casdesired.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def script(tmp_path: Path, capsys: pytest.CaptureFixture[str], shell: str) -> Path:
    assert main(["completion", shell]) == 0
    path = tmp_path / f"casdesired.{shell}"
    path.write_text(capsys.readouterr().out)
    return path


def shell(*argv: str, cwd: Path) -> list[str]:
    result = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=True,
                            timeout=60)
    return result.stdout.splitlines()


def bash_complete(path: Path, line: str, cwd: Path) -> list[str]:
    words = line.split(" ")
    program = (
        f"source {path}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
        f"_shtab_casdesired casdesired {words[-1]!r} {words[-2]!r}; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    return sorted(x for x in shell("bash", "-c", program, cwd=cwd) if x)


def test_bash_completes_commands_choices_and_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = script(tmp_path, capsys, "bash")
    (tmp_path / "orgs").mkdir()
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "orgs.txt").write_text("")
    assert bash_complete(path, "casdesired ", tmp_path) == sorted(SUBCOMMANDS)
    assert bash_complete(path, "casdesired plan --format ", tmp_path) == [
        "json", "markdown", "text"]
    assert bash_complete(path, "casdesired apply --format ", tmp_path) == ["json", "text"]
    assert "--detailed-exitcode" in bash_complete(path, "casdesired plan --d", tmp_path)
    assert bash_complete(path, "casdesired plan or", tmp_path) == ["orgs"]  # a DIR, no file
    assert "plan.json" in bash_complete(path, "casdesired show pl", tmp_path)  # a PLANFILE
    assert bash_complete(path, "casdesired lab ", tmp_path) == ["reset", "serve"]


def test_fish_completes_commands_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = script(tmp_path, capsys, "fish")

    def complete(line: str) -> list[str]:
        out = shell("fish", "--no-config", "-c", f"source {path}; complete -C {line!r}",
                    cwd=tmp_path)
        return sorted(x.split("\t")[0] for x in out)

    assert set(complete("casdesired ")) >= set(SUBCOMMANDS)
    assert complete("casdesired show --format ") == ["json", "markdown", "text"]
    assert complete("casdesired lab ") == ["reset", "serve"]


def test_zsh_script_parses_and_defines_the_completion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = script(tmp_path, capsys, "zsh")
    shell("zsh", "-n", str(path), cwd=tmp_path)  # check=True: a syntax error fails
    text = path.read_text()
    assert text.startswith("#compdef casdesired")
    defined = shell("zsh", "-fc", "autoload -Uz compinit && compinit -u -D; "
                    f"source {path} 2>/dev/null; print -l ${{(k)functions[(I)_shtab_*]}}",
                    cwd=tmp_path)
    assert {"_shtab_casdesired", "_shtab_casdesired_lab"} <= set(defined)
    for command in SUBCOMMANDS:
        assert f"\n    {command}:" in text


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "casdesired", "completion", "tcsh"],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 1
    assert "invalid choice: 'tcsh'" in result.stderr
