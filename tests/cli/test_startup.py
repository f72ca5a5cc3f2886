"""`casdesired --help` and `--version` import only parser definitions: no command's implementation.

Start-up time itself is measured in bench/startup_bench.py (no timed assertions here); what makes
it fast is that building the parser imports none of the libraries a command needs when it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "rich", "winrm", "requests", "jsonschema", "yaml", "dns", "cryptography", "spnego",
    "deepdiff", "casdesired.plan.plan", "casdesired.plan.build", "casdesired.desired.loader",
    "casdesired.apply.run", "casdesired.apply.execute", "casdesired.transport",
    "casdesired.lab.server", "casdesired.plan.render_markdown", "shtab",
)

PROBE = """
import json, sys
from casdesired.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = json.loads({heavy!r})
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("\\nLOADED " + json.dumps(loaded))
"""


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["--help"], ["plan", "--help"], ["apply", "--help"], ["show", "--help"],
     ["drift", "--help"],
     ["validate", "--help"], ["unlock", "--help"], ["lab", "serve", "--help"],
     ["completion", "--help"]],
    ids=lambda argv: " ".join(argv),
)
def test_help_and_version_import_no_command_implementation(argv: list[str]) -> None:
    code = PROBE.format(heavy=json.dumps(HEAVY))
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout.rsplit("LOADED ", 1)[1])
    assert loaded == []
    assert "usage: casdesired" in result.stdout or "casdesired " in result.stdout
