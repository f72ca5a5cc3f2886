"""The organisation import connects to: the directory's own file, or the one its options make.

With an organisation file in the directory, import uses it as plan would (its errors stop the
import). Without one, the options (``--endpoint``, ``--transport``, ``--username-env``, ...)
become the organisation file import writes — and that text is checked by the very schema and
rules ``validate`` applies before anything connects, so a mistake in an option is reported as
validate would report it in the file (a secret typed where a variable name belongs is refused,
never echoed).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from casdesired.desired import org_rules, schema
from casdesired.desired.build import organisation_from
from casdesired.desired.config import Organisation
from casdesired.desired.loader import load_desired
from casdesired.desired.yamlsource import read_yaml
from casdesired.errors import ConfigError
from casdesired.findings import Finding, Severity
from casdesired.importing.documents import OrganisationDocument
from casdesired.importing.render import render_organisation


def from_directory(directory: Path, path: Path) -> Organisation:
    """The organisation file ``path`` in ``directory``; its errors are a :class:`ConfigError`.

    Only the organisation file's own problems stop import: the site files are what import is
    about to write.
    """
    desired = load_desired(directory)
    own = [
        d
        for d in desired.diagnostics
        if d.severity is Severity.ERROR and d.location is not None
        and Path(d.location.path).absolute() == path.absolute()
    ]
    if own:
        shown = "\n".join(str(d) for d in own)
        raise ConfigError(f"the organisation file has errors (see `casdesired validate`):\n{shown}")
    return desired.organisation


def from_options(doc: OrganisationDocument, directory: Path, schema_ref: str) -> tuple[
    Organisation, str
]:
    """The organisation the options describe, and the text of its file (checked as validate
    checks a file; its errors are a :class:`ConfigError`, one line each, values not echoed)."""
    text = render_organisation(doc, schema_ref)
    with tempfile.TemporaryDirectory(prefix="casdesired-import-") as tmp:
        path = Path(tmp) / "organisation.yaml"
        path.write_text(text, encoding="utf-8")
        document, problems = read_yaml(path)
        if document is None:  # pragma: no cover - render_organisation checked its own text
            raise ConfigError("; ".join(p.message for p in problems))
        problems += schema.check(document, "organisation")
        problems += org_rules.check_organisation(document)
        errors = [p for p in problems if p.severity is Severity.ERROR]
        if errors:
            raise ConfigError(
                "the connection options do not make a valid organisation file (each key is "
                "the option of that name: connection.credentials.password_env is "
                "--password-env):\n" + "\n".join(_option_error(e) for e in errors)
            )
        organisation = organisation_from(document, directory.absolute())
    return organisation, text


def _option_error(finding: Finding) -> str:
    return f"  {finding.message} [{finding.rule}]"
