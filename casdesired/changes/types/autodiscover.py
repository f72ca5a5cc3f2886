"""Autodiscover changes: ``Set-ClientAccessServer``'s service connection point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from casdesired.agent.protocol import Invocation, JsonValue, ParamValue
from casdesired.changes.types.base import Action, Change


@dataclass(frozen=True)
class AutodiscoverChange(Change):
    """``Set-ClientAccessServer``: the SCP domain-joined Outlook uses to find a CAS.

    Only the settings that differ are sent; ``None`` on the after side means "not changed".
    """

    kind: ClassVar[str] = "autodiscover"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 2

    server: str
    before_internal_uri: str | None = None
    internal_uri: str | None = None
    before_site_scope: tuple[str, ...] | None = None
    site_scope: tuple[str, ...] | None = None

    @property
    def identity(self) -> str:
        return self.server

    def before(self) -> dict[str, JsonValue] | None:
        data: dict[str, JsonValue] = {}
        if self.internal_uri is not None:
            data["internal_uri"] = self.before_internal_uri
        if self.site_scope is not None:
            data["site_scope"] = list(self.before_site_scope or ())
        return data

    def after(self) -> dict[str, JsonValue] | None:
        data: dict[str, JsonValue] = {}
        if self.internal_uri is not None:
            data["internal_uri"] = self.internal_uri
        if self.site_scope is not None:
            data["site_scope"] = list(self.site_scope)
        return data

    def describe(self) -> str:
        parts = []
        if self.internal_uri is not None:
            before_uri = self.before_internal_uri or "(none)"
            parts.append(f"internal URI {before_uri} -> {self.internal_uri}")
        if self.site_scope is not None:
            before = ", ".join(self.before_site_scope or ()) or "(empty)"
            after = ", ".join(self.site_scope) or "(empty)"
            parts.append(f"site scope {before} -> {after}")
        return f"update Autodiscover of {self.server}: " + "; ".join(parts)

    def invocations(self) -> list[Invocation]:
        params: dict[str, ParamValue] = {"Identity": self.server}
        if self.internal_uri is not None:
            params["AutoDiscoverServiceInternalUri"] = self.internal_uri
        if self.site_scope is not None:
            params["AutoDiscoverSiteScope"] = list(self.site_scope)
        return [Invocation(id=self._id(), cmdlet="Set-ClientAccessServer", parameters=params)]
