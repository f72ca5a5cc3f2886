"""One real BIND for the whole DNS test session (it starts in well under a second)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from bind import BindServer, find_named, running_bind


@pytest.fixture(scope="session")
def bind_server() -> Iterator[BindServer]:
    named = find_named()
    if named is None:
        if os.environ.get("CI"):
            pytest.fail(
                "BIND 9 (`named`) is not installed, but CI is set: these tests must run in CI "
                "— .ci/run installs the bind9 package",
                pytrace=False,
            )
        pytest.skip("BIND 9 (`named`) is not installed: apt-get install bind9")
    with running_bind(named) as server:
        yield server
