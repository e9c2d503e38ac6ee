"""Stands in for an engine this build does not ship yet: says so in status and logs, never crashes."""

from __future__ import annotations

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import AuthStatus, Status

from ..engine import EngineHost


class UnavailableEngine:
    capabilities: frozenset[str] = frozenset()

    def __init__(self, provider: str) -> None:
        self.name = provider

    async def run(self, host: EngineHost) -> None:
        host.log("error", f"The {self.name} engine is not available in this build of the provider runtime")
        await host.set_state(status=Status.ERROR, auth_status=AuthStatus.PENDING)

    async def send_text(self, chat_id: str, text: str) -> str:
        raise InstanceManagerError(ErrorCode.INSTANCE_NOT_READY, f"The {self.name} engine is not available")
