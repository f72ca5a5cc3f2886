"""Loading a desired-state directory: every file read, checked and modelled in one pass.

A directory is one organisation: exactly one ``kind: organisation`` file and any number of
``kind: site`` files, anywhere below it (hidden files and folders are skipped). Every problem
becomes a :class:`Finding`; only a directory with nothing to load raises.
"""

from __future__ import annotations

from pathlib import Path

from casdesired.desired import org_rules, rules, schema
from casdesired.desired.build import SiteFile, organisation_from, site_from
from casdesired.desired.config import DesiredState
from casdesired.desired.yamlsource import Document, display_path, read_yaml
from casdesired.errors import ConfigError
from casdesired.findings import Finding, Location, Severity

YAML_SUFFIXES = (".yaml", ".yml")
UNREADABLE_VALUE_RULES = frozenset({"yaml-tag", "bad-number"})
"""Reader diagnostics for a value YAML could not turn into data (``!!int HQ``, ``0x_``)."""
SCHEMA_COMMENT = "# yaml-language-server: $schema="


def find_files(directory: Path) -> list[Path]:
    """The YAML files below ``directory``, sorted, skipping anything hidden."""
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def load_desired(directory: Path) -> DesiredState:
    """Load and check the organisation in ``directory``; problems are in ``.diagnostics``.

    Raises :class:`ConfigError` only when there is nothing to load: the directory is missing,
    is not a directory, or holds no YAML file.
    """
    shown = display_path(directory)
    if not directory.exists():
        raise ConfigError(f"{shown}: no such directory")
    if not directory.is_dir():
        raise ConfigError(f"{shown}: not a directory (give the organisation's directory)")
    # Absolute, so relative paths in the YAML (ca_bundle) stay right whatever the caller does.
    directory = directory.absolute()
    files = find_files(directory)
    if not files:
        raise ConfigError(f"{shown}: no YAML files (*.yaml, *.yml): nothing to load")

    diagnostics: list[Finding] = []
    organisations: list[Document] = []
    site_files: list[SiteFile] = []
    unreadable = 0
    for path in files:
        document, problems = read_yaml(path)
        diagnostics.extend(problems)
        if document is None:
            unreadable += 1
            continue
        kind = _kind(document, diagnostics)
        if kind is None:
            continue
        diagnostics.extend(schema.check(document, kind))
        if not document.first_line.startswith(SCHEMA_COMMENT):
            diagnostics.append(
                Finding.at(
                    Location(document.display, 1, 1),
                    Severity.WARNING,
                    f"the first line should be '{SCHEMA_COMMENT}...' so editors check the file "
                    f"(schemas/{kind}.schema.json, as casdesired import writes it; the "
                    "package ships it too)",
                    "schema-comment-missing",
                )
            )
        if kind == "organisation":
            organisations.append(document)
        else:
            built = site_from(document)
            if built is not None:
                site_files.append(built)

    if not organisations:
        diagnostics.append(
            Finding.at(
                Location(shown),
                Severity.ERROR,
                "no organisation file (a file with 'kind: organisation', conventionally "
                "organisation.yaml)"
                + (" among the files that could be read" if unreadable else ""),
                "organisation-missing",
            )
        )
    for extra in organisations[1:]:
        diagnostics.append(
            Finding.at(
                extra.location(("kind",)),
                Severity.ERROR,
                f"a second organisation file; {organisations[0].display} already declares the "
                "organisation (one directory is one organisation)",
                "organisation-multiple",
            )
        )
    if organisations:
        diagnostics.extend(org_rules.check_organisation(organisations[0]))
    diagnostics.extend(rules.check_sites(site_files))
    diagnostics = _once_per_unreadable_value(diagnostics)

    return DesiredState(
        organisation=organisation_from(organisations[0] if organisations else None, directory),
        sites=tuple(entry.site for entry in site_files),
        binding_rules=tuple(rule for entry in site_files for rule in entry.binding_rules),
        diagnostics=tuple(sorted(diagnostics, key=_order)),
        files=tuple(files),
    )


def _once_per_unreadable_value(diagnostics: list[Finding]) -> list[Finding]:
    """Drop what the schema and rules say about a value the reader already refused.

    ``site: !!int HQ`` is one mistake: the reader's "the tag '!!int' needs a whole number" says
    it; "site must be text" or "vip is not an IP address" at the same place would be noise.
    """
    unreadable = {d.location for d in diagnostics if d.rule in UNREADABLE_VALUE_RULES}
    return [
        d for d in diagnostics if d.rule in UNREADABLE_VALUE_RULES or d.location not in unreadable
    ]


def _order(diagnostic: Finding) -> tuple[str, int, int, str]:
    location = diagnostic.where
    return (location.path, location.line, location.column, diagnostic.message)


def _kind(document: Document, diagnostics: list[Finding]) -> str | None:
    """The file's kind, or None (with a diagnostic) when it is not a casdesired file."""
    data = document.data
    if not isinstance(data, dict) or "casdesired" not in data or "kind" not in data:
        diagnostics.append(
            Finding.at(
                document.location(()),
                Severity.ERROR,
                "not a casdesired file: it must start with 'casdesired: 1' and "
                "'kind: organisation' or 'kind: site'",
                "not-casdesired",
            )
        )
        return None
    kind = data["kind"]
    if kind not in schema.KINDS:
        diagnostics.append(
            Finding.at(
                document.location(("kind",)),
                Severity.ERROR,
                f"kind must be one of: {', '.join(schema.KINDS)}",
                "bad-value",
            )
        )
        return None
    return str(kind)
