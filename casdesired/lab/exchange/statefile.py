"""Reading and writing the lab's state file: readable JSON, written atomically.

A write goes to a temporary file in the same directory, is flushed and fsynced, then
``os.replace``-d over the state file and the directory is fsynced. A reader (or a restart after
``kill -9``) therefore sees either the old file or the new one, never half of one.

Next to a state file ``NAME.json`` lies its own seed, ``NAME.seed.json``: the organisation a
reset goes back to (see :mod:`.organisation`).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from casdesired import atomicfile, jsontext
from casdesired.lab.exchange.errors import LabStateError

_SEED_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that no crash can leave a partial file behind.

    The document is streamed into the temporary file (no second copy of a large state in
    memory); only a complete, fsynced file is ever renamed over the real one.
    """

    def write(handle: TextIO) -> None:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")

    atomicfile.write_atomic(path, write, what="the lab state")


def seed_path(state_path: Path) -> Path:
    """Where the seed of the state file ``state_path`` is kept: ``NAME.seed.json`` beside it."""
    name = state_path.name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return state_path.with_name(f"{stem}.seed.json")


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabStateError(f"cannot read lab state file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LabStateError(f"{path}: the lab state file is not UTF-8 text") from None
    try:
        data = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise LabStateError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    except jsontext.NestedTooDeeply as exc:
        raise LabStateError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise LabStateError(f"{path}: the lab state file must hold a JSON object")
    return data


def load_seed(name: str) -> dict[str, Any]:
    """A seed organisation shipped in ``casdesired/lab/seed/<name>.json``."""
    if not _SEED_NAME.match(name):
        raise LabStateError(f"no lab seed named {name!r}")
    resource = resources.files("casdesired.lab").joinpath("seed").joinpath(f"{name}.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabStateError(f"no lab seed named {name!r}") from None
    if not isinstance(data, dict):
        raise LabStateError(f"lab seed {name!r} is not a JSON object")
    return data
