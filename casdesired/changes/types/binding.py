"""Database binding changes: ``Set-MailboxDatabase -RpcClientAccessServer``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from casdesired.agent.protocol import Invocation, JsonValue
from casdesired.changes.types.base import Action, Change

OUTLOOK_PROFILE_WARNING = (
    "existing Outlook 2007/2010 profiles keep the old RPC endpoint until they are repaired or "
    "recreated (or the old endpoint is taken offline)"
)
"""The seed's first post: what every RpcClientAccessServer change does to existing users."""


@dataclass(frozen=True)
class BindingChange(Change):
    """``Set-MailboxDatabase -RpcClientAccessServer``: where a database's MAPI clients connect."""

    kind: ClassVar[str] = "binding"
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 4

    database: str
    before_target: str
    target: str
    mailbox_count: int = 0

    @property
    def identity(self) -> str:
        return self.database

    @property
    def mailboxes(self) -> int:
        return self.mailbox_count

    def before(self) -> dict[str, JsonValue] | None:
        return {"rpc_client_access_server": self.before_target}

    def after(self) -> dict[str, JsonValue] | None:
        return {"rpc_client_access_server": self.target}

    def describe(self) -> str:
        return (
            f"rebind database {self.database}: {self.before_target or '(none)'} -> "
            f"{self.target} ({self.mailbox_count:,} mailboxes)"
        )

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(
                id=self._id(),
                cmdlet="Set-MailboxDatabase",
                parameters={"Identity": self.database, "RpcClientAccessServer": self.target},
            )
        ]
