"""Which seed an organisation returns to on reset, and the seed file kept beside a state file.

Every organisation keeps its own seed, the document a reset goes back to, and a reset never
turns one organisation into another. The seed is the shipped seed the state names when that
seed is the same organisation (same name and domain); otherwise -- a user's own organisation --
the state as the lab first held it. A file-backed organisation keeps its seed beside the state
file (:func:`casdesired.lab.exchange.statefile.seed_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange import statefile
from casdesired.lab.exchange.state import OrgState


def seeded(name: str, seed: int) -> dict[str, Any]:
    data = statefile.load_seed(name)
    data["random"] = {"seed": seed, "draws": 0}
    return data


def _same_organisation(a: OrgState, b: OrgState) -> bool:
    return (a.org_name.casefold(), _domain_key(a)) == (b.org_name.casefold(), _domain_key(b))


def _domain_key(state: OrgState) -> str:
    return state.domain.strip().rstrip(".").casefold()


def seed_for(state: OrgState, kept: dict[str, Any] | None) -> dict[str, Any]:
    """The seed of ``state``: ``kept`` when it is the same organisation (the very object, so a
    caller can tell nothing changed); else the shipped seed the state names, when it is the
    same organisation (with the state's random seed); else the state itself."""
    if kept is not None and _same_organisation(OrgState(kept), state):
        return kept
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
