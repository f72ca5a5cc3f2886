"""CAS array changes: ``New-``, ``Set-`` and ``Remove-ClientAccessArray``.

Cmdlets and parameters follow /work/shared/domain/exchange2010.md exactly; arrays are addressed
by FQDN as ``-Identity``, never by Name (a Name with spaces is not a valid identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from casdesired.agent.protocol import Invocation, JsonValue, ParamValue
from casdesired.changes.types.base import Action, Change


@dataclass(frozen=True)
class ArrayCreate(Change):
    """``New-ClientAccessArray``: the site gets its CAS array."""

    kind: ClassVar[str] = "array_create"
    action: ClassVar[Action] = Action.CREATE
    order: ClassVar[int] = 0

    fqdn: str
    name: str

    @property
    def identity(self) -> str:
        return self.fqdn

    def before(self) -> dict[str, JsonValue] | None:
        return None

    def after(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name, "site": self.site}

    def describe(self) -> str:
        return f"create CAS array {self.fqdn} (name {self.name}) in site {self.site}"

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="New-ClientAccessArray",
                parameters={"Name": self.name, "Fqdn": self.fqdn, "Site": self.site},
                properties=("Name", "Fqdn", "Site"),
            )
        ]


@dataclass(frozen=True)
class ArrayUpdate(Change):
    """``Set-ClientAccessArray``: a new FQDN and/or Name for the site's existing array.

    A new FQDN is an update, never a delete-and-recreate: the array object (and what databases
    point to) stays; only Outlook profiles need attention (see ``bound_mailboxes``).
    """

    kind: ClassVar[str] = "array_update"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 3

    live_fqdn: str
    before_name: str
    fqdn: str
    name: str
    bound_databases: tuple[str, ...] = ()
    """Databases whose RpcClientAccessServer names this array now."""
    bound_mailboxes: int = 0

    @property
    def identity(self) -> str:
        return self.live_fqdn

    @property
    def fqdn_changes(self) -> bool:
        return self.fqdn.lower() != self.live_fqdn.lower()

    @property
    def mailboxes(self) -> int:
        return self.bound_mailboxes if self.fqdn_changes else 0

    def before(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.live_fqdn, "name": self.before_name}

    def after(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name}

    def describe(self) -> str:
        parts = []
        if self.fqdn_changes:
            parts.append(f"FQDN {self.live_fqdn} -> {self.fqdn}")
        if self.name != self.before_name:
            parts.append(f"name {self.before_name} -> {self.name}")
        return f"update CAS array {self.live_fqdn}: " + ", ".join(parts or ["no-op"])

    def invocations(self) -> list[Invocation]:
        params: dict[str, ParamValue] = {"Identity": self.live_fqdn}
        if self.fqdn_changes:
            params["Fqdn"] = self.fqdn
        if self.name != self.before_name:
            params["Name"] = self.name
        return [Invocation(id=self._id(), cmdlet="Set-ClientAccessArray", parameters=params)]


@dataclass(frozen=True)
class ArrayDelete(Change):
    """``Remove-ClientAccessArray -Confirm:$false`` (Remove prompts otherwise)."""

    kind: ClassVar[str] = "array_delete"
    action: ClassVar[Action] = Action.DELETE
    order: ClassVar[int] = 6

    fqdn: str
    name: str

    @property
    def identity(self) -> str:
        return self.fqdn

    def before(self) -> dict[str, JsonValue] | None:
        return {"fqdn": self.fqdn, "name": self.name, "site": self.site}

    def after(self) -> dict[str, JsonValue] | None:
        return None

    def describe(self) -> str:
        return f"delete CAS array {self.fqdn} (name {self.name}) in site {self.site}"

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="Remove-ClientAccessArray",
                parameters={"Identity": self.fqdn, "Confirm": False},
            )
        ]
