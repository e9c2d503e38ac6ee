"""The seam between the runtime and a messaging engine."""

from __future__ import annotations

from typing import Protocol

from chalicelib.core.types import AuthStatus, MessageView, Status


class EngineHost(Protocol):
    """What the runtime offers an engine. An engine never knows about HTTP or AWS."""

    async def set_state(
        self, status: Status | None = None, auth_status: AuthStatus | None = None, account: str | None = None
    ) -> None:
        """None leaves a field as it is; account "" clears it."""

    async def emit_message(self, message: MessageView) -> None: ...

    async def emit_ack(self, message_id: str, chat_id: str, status: str) -> None:
        """A sent message reached `status`: server, delivered or read."""

    async def set_qr(self, qr: str | None) -> None:
        """The QR code to show now; None when no QR is pending."""

    def log(self, level: str, message: str, source: str | None = None) -> None: ...


class Engine(Protocol):
    name: str
    capabilities: frozenset[str]

    async def run(self, host: EngineHost) -> None:
        """Log in and keep the connection until cancelled. Returning means: idle for good (e.g. the
        credentials were rejected); the runtime keeps serving its API and does not restart it."""

    async def send_text(self, chat_id: str, text: str) -> str:
        """Send a text message; returns the sent message's id. Raises InstanceManagerError."""


class PairingEngine(Engine, Protocol):
    """An engine with "pairing_code" in its capabilities."""

    async def pairing_code(self, phone: str) -> str: ...
