"""Unmanaged objects: live objects the YAML does not mention, listed and never touched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unmanaged:
    """A live object the YAML does not mention: listed, never touched."""

    kind: str
    """``array``, ``server``, ``database`` or ``nlb_node``."""
    identity: str
    site: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "identity": self.identity,
            "site": self.site,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Unmanaged:
        return cls(
            kind=str(data["kind"]),
            identity=str(data["identity"]),
            site=data.get("site"),
            detail=str(data.get("detail") or ""),
        )
