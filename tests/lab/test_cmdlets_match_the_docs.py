"""Every cmdlet and parameter the lab accepts is in the documented Exchange 2010 / NLB syntax.

The lab must not be more lenient than Exchange: a parameter it accepts but Exchange 2010 lacks
would let a reconciler bug through. The references are ../shared/domain/exchange2010.md and
exchange2010-field.md (Set-AdServerSettings, the audit cmdlets, ...); their syntax is transcribed
into tests/fixtures/lab/exchange2010-syntax.txt so the check runs from any clone, and a second
test keeps the transcription in step with the references wherever they are at hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from casdesired.lab.exchange.cmdlets import CMDLETS

ROOT = Path(__file__).resolve().parents[2]
SYNTAX = ROOT / "tests" / "fixtures" / "lab" / "exchange2010-syntax.txt"
REFERENCES = (
    ROOT.parent / "shared" / "domain" / "exchange2010.md",
    ROOT.parent / "shared" / "domain" / "exchange2010-field.md",
)
CMDLET = re.compile(r"\b((?:Get|Set|New|Remove|Add|Stop|Start|Search)-[A-Za-z]+)\b")
PARAMETER = re.compile(r"(?<![\w-])-([A-Z][A-Za-z]+)")

# Parameters the reference implies without spelling them on the cmdlet's own line:
# - the positional Identity of the Get-/Set- cmdlets it names with an identity
#   ("Get-ExchangeServer -> Name, Fqdn, ...", "Get-MailboxDatabase properties ...");
# - PowerShell's ShouldProcess and Exchange's DomainController, on Exchange cmdlets only;
# - Start-NlbClusterNode, named in issue 3 but not in the reference's table: the same -HostName
#   its sibling Stop-NlbClusterNode takes;
# - Set-AdminAuditLogConfig, which field §4 cites (exchg.140) without transcribing its 2010
#   syntax: the settings it names in Get-AdminAuditLogConfig's output (AdminAuditLogEnabled,
#   ...Cmdlets, ...Parameters, ...ExcludedCmdlets, ...AgeLimit) are what Set- takes (its
#   -LogLevel is 2013's, which the lab does not accept).
IMPLIED = {
    "get-exchangeserver": {"Identity"},
    "get-clientaccessserver": {"Identity"},
    "get-mailboxdatabase": {"Identity"},
    "start-nlbclusternode": {"HostName"},
    "set-adminauditlogconfig": {
        "AdminAuditLogEnabled", "AdminAuditLogCmdlets", "AdminAuditLogParameters",
        "AdminAuditLogExcludedCmdlets", "AdminAuditLogAgeLimit",
    },
}
COMMON_EXCHANGE = {"WhatIf", "Confirm", "DomainController"}


def _transcribed() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in SYNTAX.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cmdlet, *params = line.split()
            found[cmdlet.lower()] = set(params)
    return found


def _parse_reference(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        # A cmdlet's parameters are those written after it on its line, up to the next cmdlet,
        # and on the lines that continue its syntax (indented, starting with "[-").
        spans = list(CMDLET.finditer(line))
        if not spans and last and line.lstrip().startswith("[-"):
            found[last].update(PARAMETER.findall(line))
            continue
        last = spans[-1].group(1).lower() if spans else None
        for index, match in enumerate(spans):
            end = spans[index + 1].start() if index + 1 < len(spans) else len(line)
            params = found.setdefault(match.group(1).lower(), set())
            params.update(PARAMETER.findall(line[match.end() : end]))
    return found


def parse_references() -> dict[str, set[str]]:
    """Every cmdlet the references name, with the parameters they give it (merged)."""
    found: dict[str, set[str]] = {}
    for reference in REFERENCES:
        for cmdlet, params in _parse_reference(reference.read_text(encoding="utf-8")).items():
            found.setdefault(cmdlet, set()).update(params)
    return found


def test_the_transcription_matches_the_reference() -> None:
    missing = [str(r) for r in REFERENCES if not r.exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not beside this checkout; the transcription stands in")
    assert parse_references() == _transcribed()


def test_every_cmdlet_the_lab_accepts_is_documented() -> None:
    documented = _transcribed()
    undocumented = sorted(
        c.name for key, c in CMDLETS.items() if key not in documented and key not in IMPLIED
    )
    assert undocumented == []


@pytest.mark.parametrize("key", sorted(CMDLETS))
def test_every_parameter_the_lab_accepts_is_documented(key: str) -> None:
    cmdlet = CMDLETS[key]
    allowed = _transcribed().get(key, set()) | IMPLIED.get(key, set())
    if cmdlet.provider == "exchange":
        allowed |= COMMON_EXCHANGE
    accepted = {p.name for p in cmdlet.all_params}
    assert sorted(accepted - allowed) == [], f"{cmdlet.name} accepts undocumented parameters"
