"""Which seed an organisation returns to on reset, and the seed file kept beside a state file.

Every organisation keeps its own seed, the document a reset goes back to, and a reset never
turns one organisation into another. The seed is the shipped seed the state names when that
seed is the same organisation (same name and domain); otherwise -- a user's own organisation --
the state as the lab first held it. A file-backed organisation keeps its seed beside the state
file (:func:`casdesired.lab.exchange.statefile.seed_path`).

A copy of a shipped seed carries :data:`SHIPPED_MARK`, the SHA-256 of the rest of it. While the
copy is untouched, it follows the seed this version of casdesired ships (:func:`follow`): an
upgrade's richer example comes in at the next reset. A copy a person edited (its digest no
longer matches) is theirs, and stays what a reset returns to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange import statefile
from casdesired.lab.exchange.state import OrgState

SHIPPED_MARK = "shipped_sha256"
"""The key of a shipped seed's copy holding the SHA-256 of the rest of it (:func:`_digest`)."""


def seeded(name: str, seed: int) -> dict[str, Any]:
    """The shipped seed ``name`` with the random seed ``seed``, marked as a shipped copy."""
    data = statefile.load_seed(name)
    data.pop(SHIPPED_MARK, None)
    data["random"] = {"seed": seed, "draws": 0}
    data[SHIPPED_MARK] = digest(data)
    return data


def digest(data: dict[str, Any]) -> str:
    rest = {key: value for key, value in data.items() if key != SHIPPED_MARK}
    text = json.dumps(rest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def follow(kept: dict[str, Any]) -> dict[str, Any]:
    """The seed ``kept`` stands for: for an untouched copy of a shipped seed, that seed as this
    version ships it (``kept`` itself, the very object, when it has not changed); for anything
    else -- a person's organisation, a copy they edited, one written before copies were
    marked -- ``kept``."""
    if kept.get(SHIPPED_MARK) != digest(kept):
        return kept
    state = OrgState(kept)
    try:
        shipped = seeded(state.seed_name, state.random_seed)
    except err.LabStateError:  # no longer shipped: keep the copy
        return kept
    if shipped == kept or not _same_organisation(OrgState(shipped), state):
        return kept
    return shipped


def _same_organisation(a: OrgState, b: OrgState) -> bool:
    return (a.org_name.casefold(), _domain_key(a)) == (b.org_name.casefold(), _domain_key(b))


def _domain_key(state: OrgState) -> str:
    return state.domain.strip().rstrip(".").casefold()


def seed_for(state: OrgState, kept: dict[str, Any] | None) -> dict[str, Any]:
    """The seed of ``state``: ``kept`` when it is the same organisation (the very object, so a
    caller can tell nothing changed); else the shipped seed the state names, when it is the
    same organisation (with the state's random seed); else the state itself."""
    if kept is not None and _same_organisation(OrgState(kept), state):
        return follow(kept)
    try:
        shipped = seeded(state.seed_name, state.random_seed)
    except err.LabStateError:  # a name no shipped seed has: the user's own organisation
        shipped = None
    if shipped is not None and _same_organisation(OrgState(shipped), state):
        return shipped
    return state.to_json()


def read_seed_file(state_path: Path) -> dict[str, Any] | None:
    """The seed kept beside the state file ``state_path``, validated; ``None`` if there is
    none yet. Raises LabStateError naming the seed file if it is unusable."""
    path = statefile.seed_path(state_path)
    if not path.exists():
        return None
    data = statefile.read(path)
    try:
        OrgState(data)
    except err.LabStateError as exc:
        raise err.LabStateError(f"{path}: {exc}") from None
    return data
