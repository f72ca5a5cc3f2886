"""Property: whatever is done to the example files, the CLI answers with exit 0 or 1, never a
traceback. `validate` runs on every mutated directory; `plan` (against the embedded lab) on
those that validate and stay on the lab. The mutations are described in desired/fuzzing.py;
bench/fuzz_desired.py runs the same property much longer (docs/performance.md has its figure).

Derandomized, with a fixed number of examples and no deadline, so every CI run tries the same
cases and the time it takes does not decide the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from desired.fuzzing import Files, organisations, run_case

EXAMPLES = 250

FUZZ = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _lab_state_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The embedded lab of every plan here keeps its state in a temporary directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@FUZZ
@given(organisations())
def test_the_cli_never_crashes_on_a_mutated_organisation(files: Files) -> None:
    outcome = run_case(files)
    assert outcome.crash is None, outcome.crash


def test_the_mutations_break_the_files_and_sometimes_leave_them_valid() -> None:
    # The property above is worth something only if the same cases both break the files
    # (validate exits 1) and sometimes leave them valid (then plan runs against the lab).
    seen: list[dict[str, int]] = []

    @FUZZ
    @given(organisations())
    def collect(files: Files) -> None:
        seen.append(run_case(files, plan=False).codes)

    collect()
    refused = sum(1 for codes in seen if codes["validate"] == 1)
    accepted = len(seen) - refused
    assert refused >= len(seen) // 2
    assert accepted >= 5
