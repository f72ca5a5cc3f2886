"""What comes back from the agent: a :class:`Response` with one :class:`Result` per invocation
that ran (see :mod:`casdesired.agent.protocol` for what the invocations mean).

:mod:`casdesired.agent.protocol` re-exports these names: import them from either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casdesired.errors import ProtocolError

PROTOCOL_VERSION = 1
JsonValue = Any


@dataclass(frozen=True)
class InvocationError:
    message: str
    category: str = ""
    """PowerShell's CategoryInfo reason, e.g. ``ManagementObjectNotFoundException``."""
    target: str = ""


@dataclass(frozen=True)
class Result:
    id: str
    ok: bool
    objects: tuple[Mapping[str, JsonValue], ...] = ()
    groups: Mapping[str, int] | None = None
    error: InvocationError | None = None

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"id": self.id, "ok": self.ok, "objects": list(self.objects)}
        if self.groups is not None:
            data["groups"] = dict(self.groups)
        if self.error is not None:
            data["error"] = {
                "message": self.error.message,
                "category": self.error.category,
                "target": self.error.target,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Result:
        err = data.get("error")
        objects = data.get("objects") or []
        groups = data.get("groups")
        if not isinstance(objects, list) or (groups is not None and not isinstance(groups, dict)):
            raise ProtocolError(f"result {data.get('id')!r} is malformed")
        return cls(
            id=str(data["id"]),
            ok=bool(data["ok"]),
            objects=tuple(objects),
            groups={str(k): int(v) for k, v in groups.items()} if groups is not None else None,
            error=(
                InvocationError(
                    message=str(err.get("message", "")),
                    category=str(err.get("category", "")),
                    target=str(err.get("target", "")),
                )
                if err
                else None
            ),
        )


@dataclass(frozen=True)
class LoadStep:
    """One step of loading what a request needs, as the agent reports it: the Exchange session
    (``exchange-session``), the import of its commands (``import-session``), the endpoint's
    version (``exchange-version``), the recipient scope (``recipient-scope``), a module
    (``module:NAME``), and the session's removal at the end (``exchange-session-removed``)."""

    step: str
    ok: bool
    detail: str = ""
    """What was loaded (a URI, a snap-in), or the error's text when it failed."""

    def to_json(self) -> dict[str, JsonValue]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> LoadStep:
        return cls(str(data.get("step") or ""), data.get("ok") is True,
                   str(data.get("detail") or ""))


@dataclass(frozen=True)
class Response:
    results: tuple[Result, ...]
    host: str = ""
    ps_version: str = ""
    exchange_version: str | None = None
    """AdminDisplayVersion of the Exchange server the agent talked to."""
    fatal: str | None = None
    """Set when the agent could not run at all (no snap-in, Exchange 2013+, bad request)."""
    agent_protocol: int = PROTOCOL_VERSION
    stopped: str | None = None
    """Set when the request's keepalive failed (the text is :data:`KEEPALIVE_FAILED`) or its
    fence stopped it (:data:`FENCED`): the agent ran nothing after that."""
    keepalives: int = 0
    """How many times the keepalive ran (successfully or not)."""
    loading: tuple[LoadStep, ...] = ()
    """What loading the request's needs did, step by step (:class:`LoadStep`); in a
    ``diagnose`` request a failed step is reported here instead of as ``fatal``."""

    def result(self, invocation_id: str) -> Result | None:
        return next((r for r in self.results if r.id == invocation_id), None)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "protocol": self.agent_protocol,
            "host": self.host,
            "ps_version": self.ps_version,
            "exchange_version": self.exchange_version,
            "fatal": self.fatal,
            "stopped": self.stopped,
            "keepalives": self.keepalives,
            "loading": [step.to_json() for step in self.loading],
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Response:
        if data.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"the agent speaks protocol {data.get('protocol')!r}")
        return cls(
            results=tuple(Result.from_json(r) for r in data.get("results") or ()),
            host=str(data.get("host") or ""),
            ps_version=str(data.get("ps_version") or ""),
            exchange_version=data.get("exchange_version"),
            fatal=data.get("fatal"),
            stopped=data.get("stopped"),
            keepalives=int(data.get("keepalives") or 0),
            loading=tuple(
                LoadStep.from_json(step)
                for step in data.get("loading") or ()
                if isinstance(step, Mapping)
            ),
        )
