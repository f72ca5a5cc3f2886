"""Where import's files go, what is already there, and writing them without clobbering.

A site whose file already exists (anywhere below the directory, whatever its name) keeps that
file; a new site gets ``<site name>.yaml`` in the directory, lower-case, ASCII letters, digits,
``-``, ``_`` and ``.`` only (``Zürich #1`` → ``zurich-1.yaml``), never hidden (the loader skips
dot files), never a path another file holds. A file whose content would change is replaced only
with ``--force``, and then the difference is shown first; each file is written atomically
(:mod:`casdesired.atomicfile`): a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from casdesired import model
from casdesired.atomicfile import write_atomic
from casdesired.desired.loader import find_files
from casdesired.desired.schema import KINDS, schema_text
from casdesired.desired.yamlsource import read_yaml

ORGANISATION_FILE = "organisation.yaml"


@dataclass
class Existing:
    """The casdesired files already in the directory."""

    organisation: Path | None = None
    sites: dict[str, Path] = field(default_factory=dict)
    """Site key → the file declaring it (the first, in path order)."""
    site_names: dict[str, str] = field(default_factory=dict)
    """Site key → the name as that file spells it."""
    paths: set[Path] = field(default_factory=set)
    """Every YAML file there, casdesired's or not (a new file never takes one's name)."""


def existing_files(directory: Path) -> Existing:
    """What the directory already holds (nothing when it does not exist yet)."""
    found = Existing()
    if not directory.is_dir():
        return found
    for path in find_files(directory):
        found.paths.add(path)
        document, _ = read_yaml(path)
        data = document.data if document is not None else None
        if not isinstance(data, dict):
            continue
        if data.get("kind") == "organisation" and found.organisation is None:
            found.organisation = path
        site = data.get("site")
        if data.get("kind") == "site" and isinstance(site, str) and site.strip():
            found.sites.setdefault(model.key(site), path)
            found.site_names.setdefault(model.key(site), site)
    return found


_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
     *(f"lpt{i}" for i in range(1, 10))}
)
"""Names Windows refuses for a file whatever its extension: the repository may be cloned there."""


def file_stem(site: str) -> str:
    """A file name for a site: lower-case ASCII letters, digits, ``-``, ``_``, ``.``."""
    ascii_text = unicodedata.normalize("NFKD", site).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower()).strip("-.")
    if stem.split(".", 1)[0] in _WINDOWS_RESERVED:
        stem = f"site-{stem}"
    return stem or "site"


def site_paths(directory: Path, sites: list[str], existing: Existing) -> dict[str, Path]:
    """Site key → the file it is written to: its existing file, else a fresh name."""
    taken = {p.name.lower() for p in existing.paths if p.parent == directory}
    taken.add(ORGANISATION_FILE)
    paths: dict[str, Path] = {}
    for site in sorted(sites, key=lambda s: (model.key(s), s)):
        k = model.key(site)
        if k in existing.sites:
            paths[k] = existing.sites[k]
            continue
        stem = file_stem(site)
        if stem == "organisation":
            stem = "site-organisation"
        candidate, number = f"{stem}.yaml", 2
        while candidate in taken:
            candidate, number = f"{stem}-{number}.yaml", number + 1
        taken.add(candidate)
        paths[k] = directory / candidate
    return paths


SCHEMAS = "schemas"
"""The folder of JSON Schemas the files' ``$schema=`` comments point at."""


def _schema_found(directory: Path, kind: str) -> Path | None:
    for root in (directory, directory.parent):
        candidate = root / SCHEMAS / f"{kind}.schema.json"
        if candidate.is_file():
            return candidate
    return None


def schema_ref(directory: Path, path: Path, kind: str) -> str:
    """What the file's ``$schema=`` comment points at, relative to the file: the schema in a
    ``schemas/`` folder in or beside the directory (as the repository's ``sites/`` has one
    beside it), else the one import writes into ``DIR/schemas/`` (:func:`shipped_schemas`)."""
    candidate = _schema_found(directory, kind) or directory / SCHEMAS / f"{kind}.schema.json"
    relative = os.path.relpath(candidate.absolute(), path.parent.absolute())
    return Path(relative).as_posix()


def shipped_schemas(directory: Path) -> list[Planned]:
    """The JSON Schemas casdesired ships, to be written into ``DIR/schemas/`` for each kind
    no ``schemas/`` folder in or beside the directory holds: the files' ``$schema=`` comments
    then work in any editor, offline, and match the casdesired that wrote them."""
    return [
        Planned(directory / SCHEMAS / f"{kind}.schema.json", schema_text(kind), None,
                in_full=False)
        for kind in KINDS
        if _schema_found(directory, kind) is None
    ]


@dataclass(frozen=True)
class Planned:
    """A file import would write, beside what is there now."""

    path: Path
    text: str
    existing: str | None
    """The file's current text; None when it does not exist."""
    in_full: bool = True
    """Whether ``--dry-run`` prints the text (a shipped JSON Schema is only named)."""

    @property
    def status(self) -> str:
        """``new``, ``unchanged`` or ``changed``."""
        if self.existing is None:
            return "new"
        return "unchanged" if self.existing == self.text else "changed"


def planned(path: Path, text: str) -> Planned:
    """``text`` to be written at ``path``, with the current content (raw bytes as UTF-8, so a
    file that is not UTF-8 counts as changed and is never read wrongly)."""
    if not path.exists():
        return Planned(path, text, None)
    try:
        current = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        current = ""
    return Planned(path, text, current)


def unified_diff(item: Planned, shown: str) -> str:
    """What replacing the file changes, as ``diff -u`` shows it."""
    old = (item.existing or "").splitlines(keepends=True)
    new = item.text.splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, fromfile=f"a/{shown}", tofile=f"b/{shown}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def write(items: list[Planned]) -> None:
    """Write every new or changed file, each atomically (the directory is created)."""
    for item in items:
        if item.status == "unchanged":
            continue
        item.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(item.path, functools.partial(_put, item.text), what="an imported file")


def _put(text: str, handle: TextIO) -> None:
    handle.write(text)
