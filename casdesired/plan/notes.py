"""Safety notes: what a reviewer must weigh before applying, shown apart from the changes —
the mailboxes behind each rebinding, and every FQDN change of an array databases use, each with
the Outlook profile trap."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from casdesired.changes.types import OUTLOOK_PROFILE_WARNING, ArrayUpdate, BindingChange, Change


@dataclass(frozen=True)
class SafetyNote:
    """Something a reviewer must weigh before applying; shown apart from the changes."""

    change: str
    """The change it is about (``kind:identity``)."""
    site: str
    mailboxes: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "site": self.site,
            "mailboxes": self.mailboxes,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SafetyNote:
        return cls(
            str(data["change"]), str(data["site"]), int(data["mailboxes"]), str(data["message"])
        )


def safety_notes(changes: Iterable[Change]) -> list[SafetyNote]:
    """The notes for a list of changes: every rebinding, and every FQDN change of a used array."""
    notes: list[SafetyNote] = []
    for change in changes:
        if isinstance(change, BindingChange):
            notes.append(
                SafetyNote(
                    change=f"{change.kind}:{change.identity}",
                    site=change.site,
                    mailboxes=change.mailbox_count,
                    message=(
                        f"{change.mailbox_count:,} mailboxes on {change.database} move from "
                        f"{change.before_target or '(none)'} to {change.target}; "
                        f"{OUTLOOK_PROFILE_WARNING}"
                    ),
                )
            )
        elif isinstance(change, ArrayUpdate) and change.fqdn_changes and change.bound_databases:
            notes.append(
                SafetyNote(
                    change=f"{change.kind}:{change.identity}",
                    site=change.site,
                    mailboxes=change.bound_mailboxes,
                    message=(
                        f"the FQDN of array {change.live_fqdn} changes to {change.fqdn} while "
                        f"{len(change.bound_databases):,} database(s) with "
                        f"{change.bound_mailboxes:,} mailboxes use it; {OUTLOOK_PROFILE_WARNING}"
                    ),
                )
            )
    return notes
