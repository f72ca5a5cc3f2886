"""``--max-bytes`` only shortens Markdown: with text or JSON it is a usage error (exit 1),
refused before anything is read, for ``plan`` and ``show``. Through the real CLI and the lab."""

from __future__ import annotations

import pytest
from apply.labenv import Env, cli

from casdesired.cli import build_parser, main
from casdesired.cli.parser import commands


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    """Run the CLI expecting a usage error: argparse exits 1 (CommandParser), never 2."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    return out, err


@pytest.mark.parametrize("fmt", [None, "text", "json"])
def test_plan_refuses_max_bytes_with_a_format_it_does_not_shorten(
    env: Env, capsys: pytest.CaptureFixture[str], fmt: str | None
) -> None:
    chosen = ["--format", fmt] if fmt else []
    out, err = usage_error(capsys, "plan", str(env.org_dir), *chosen, "--max-bytes", "2000")
    assert out == ""
    assert (f"casdesired plan: error: --max-bytes applies to --format markdown only; "
            f"--format {fmt or 'text'} is never shortened (drop --max-bytes, or add --format "
            "markdown)") in err
    assert "Traceback" not in err
    assert env.cmdlets() == []  # refused before anything was read


def test_show_refuses_max_bytes_with_text_and_still_shortens_markdown(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = env.tmp / "plan.json"
    code, _out, err = cli(capsys, "plan", str(env.org_dir), "--out", str(saved))
    assert code == 0, err
    out, err = usage_error(capsys, "show", str(saved), "--max-bytes", "900")
    assert out == ""
    assert "--max-bytes applies to --format markdown only; --format text" in err
    out, err = usage_error(capsys, "show", str(saved), "--format", "json", "--max-bytes", "900")
    assert out == "" and "--format json is never shortened" in err
    code, out, err = cli(capsys, "show", str(saved), "--format", "markdown", "--max-bytes", "900")
    assert code == 0, err
    assert len(out.encode()) > 0 and "shortened" in out


@pytest.mark.parametrize("command", ["plan", "show"])
def test_help_says_max_bytes_is_for_markdown_only(command: str) -> None:
    sub = dict(commands(build_parser()))[command]
    text = " ".join(sub.format_help().split())
    assert ("--max-bytes N with --format markdown only (a usage error with text or json, which "
            "are never shortened)") in text
