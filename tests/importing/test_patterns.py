"""``--patterns``: a few globs that match exactly one target's databases, never one more.

Checked with the plan's own resolver (``casdesired.desired.bindings.resolve_bindings``), which
matches patterns against every live database: the globs of a target must bind exactly the
databases that were bound to it, whatever their names — including ``*``, ``?`` and ``[``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casdesired import model
from casdesired.desired.bindings import resolve_bindings
from casdesired.desired.build import organisation_from
from casdesired.desired.config import BindingRule, DesiredState
from casdesired.importing.patterns import Compressed, compress

SEED = [
    "HQ-DB01", "HQ-DB02", "HQ-DB03", "HQ-DB04", "HQ-DB05", "HQ-DB06",
    "BR-DB01", "BR-DB02", "BR-DB03", "DR-DB01", "DR-DB02", "DR-DB03",
]


def bound_by(compressed: Compressed, every: list[str]) -> set[str]:
    """The databases the plan binds with these patterns and names (keys), and its findings."""
    site = model.Site(
        "HQ", array=model.CasArray("outlook.contoso.local", "outlook", "HQ"),
    )
    rule = BindingRule("HQ", "outlook.contoso.local", "array", compressed.names,
                       compressed.patterns)
    desired = DesiredState(
        organisation=organisation_from(None, Path(".")),
        sites=(site,),
        binding_rules=(rule,),
        diagnostics=(),
        files=(),
    )
    bindings, findings = resolve_bindings(desired, every)
    assert findings == []  # no pattern matches nothing, no name is unknown
    return set(bindings)


@pytest.mark.parametrize(
    ("bound", "patterns", "names"),
    [
        (SEED[:4], ["HQ-DB0[1-4]"], []),
        (SEED[2:6], ["HQ-DB0[3-6]"], []),
        (SEED[9:], ["DR-DB0*"], []),
        (SEED[6:], ["BR-DB0*", "DR-DB0*"], []),
        (SEED[:1], [], ["HQ-DB01"]),  # one name is clearer than a pattern
        (SEED[:2], [], ["HQ-DB01", "HQ-DB02"]),  # a pattern would not be shorter
    ],
)
def test_the_seed_compresses_to_readable_patterns(
    bound: list[str], patterns: list[str], names: list[str]
) -> None:
    compressed = compress(bound, SEED)
    assert compressed == Compressed(tuple(patterns), tuple(names))
    assert bound_by(compressed, SEED) == {model.key(n) for n in bound}


def test_glob_characters_in_names_match_only_themselves() -> None:
    every = ["a*1", "a*2", "a*3", "a?1", "a[1", "ab1"]
    compressed = compress(every[:3], every)
    assert compressed.patterns == ("a[*][1-3]",)
    assert bound_by(compressed, every) == {"a*1", "a*2", "a*3"}


def test_a_star_keeps_a_head_so_new_databases_are_not_swallowed() -> None:
    every = ["alpha", "alps", "altos", "beta", "bravo"]
    compressed = compress(every[:3], every)
    assert all(len(p.split("*")[0]) >= 3 for p in compressed.patterns if "*" in p)
    assert bound_by(compressed, every) == {"alpha", "alps", "altos"}


def test_ten_thousand_databases_become_one_pattern() -> None:
    bench = [f"HQ-BENCH-{i:05d}" for i in range(1, 10_001)]
    compressed = compress(bench, bench + SEED)
    assert compressed == Compressed(("HQ-BENCH-*",), ())


NAME = st.builds(
    # Shared heads and few letters after them, so names differ late, where a pattern that is
    # one character too broad would match a neighbour bound elsewhere.
    lambda head, tail: head + tail,
    st.sampled_from(["", "a", "ab", "aba", "HQ-DB", "hq-db0", "x*?", "[x]"]),
    st.one_of(
        st.text(st.sampled_from(list("ab01")), max_size=3),
        st.text(st.sampled_from(list("a1-.*?[]! Å")), max_size=3),
    ),
).filter(lambda n: model.key(n) != "")


@settings(derandomize=True, max_examples=500, deadline=None)
@given(
    every=st.lists(NAME, min_size=3, max_size=30, unique_by=model.key),
    data=st.data(),
)
def test_patterns_bind_exactly_the_databases_bound_before(
    every: list[str], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.booleans(), min_size=len(every), max_size=len(every)))
    bound = [name for name, taken in zip(every, chosen, strict=True) if taken]
    compressed = compress(bound, every)
    assert bound_by(compressed, every) == {model.key(n) for n in bound}
    assert len(compressed.patterns) + len(compressed.names) <= len(bound)
