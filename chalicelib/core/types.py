"""Statuses, the instance record and the wire shapes of the seed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict

from .urls import without_credentials


class Provider(StrEnum):
    WHATSAPPWEB = "whatsappweb"
    TELEGRAM = "telegram"


class Status(StrEnum):
    START = "start"
    QR_READY = "qr_ready"
    AUTHENTICATED = "authenticated"
    CLIENT_READY = "client_ready"
    STOPPED = "stopped"
    ERROR = "error"


class AuthStatus(StrEnum):
    PENDING = "pending"
    QR_READY = "qr_ready"
    AUTHENTICATED = "authenticated"
    FAILED = "failed"
    DISCONNECTED = "disconnected"


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


INSTANCE_TYPES = ("api",)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    events: tuple[str, ...] = ("message",)


@dataclass(frozen=True)
class SigningSecrets:
    """The webhook signing secret; after a rotation the previous one signs too until it expires."""

    current: str
    previous: str | None = None
    previous_expires_at: datetime | None = None

    def in_use(self, now: datetime) -> list[str]:
        alive = self.previous and self.previous_expires_at and now < self.previous_expires_at
        return [self.current, self.previous] if alive and self.previous else [self.current]


@dataclass(frozen=True)
class ApiKey:
    value: str
    generated_at: datetime
    last_use: datetime | None = None
    usage_count: int = 0


@dataclass(frozen=True)
class Instance:
    """Everything needed to bring an instance back, whatever process dies."""

    id: str
    company_id: str
    provider: Provider
    type_instance: tuple[str, ...]
    ports: dict[str, int]
    api_key: ApiKey
    created_at: datetime
    updated_at: datetime
    desired_state: DesiredState = DesiredState.RUNNING
    status: Status = Status.START
    auth_status: AuthStatus = AuthStatus.PENDING
    account: str | None = None
    webhook: WebhookConfig | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    task_handle: str | None = None
    host: str | None = None
    log_lines: int = 0
    qr: str | None = None
    qr_updated_at: datetime | None = None
    signing: SigningSecrets | None = None

    def replace(self, **changes: Any) -> Instance:
        return dataclasses.replace(self, **changes)

    def public_view(self) -> dict[str, Any]:
        """The seed's instance shape: no secrets."""
        return {
            "id": self.id,
            "company_id": self.company_id,
            "provider": self.provider.value,
            "type_instance": list(self.type_instance),
            "status": self.status.value,
            "auth_status": self.auth_status.value,
            "desired_state": self.desired_state.value,
            "ports": dict(self.ports),
            "account": self.account,
            "host": self.host,
            "webhook": self._webhook_view(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def _webhook_view(self) -> dict[str, Any] | None:
        if self.webhook is None:
            return None
        # Header names tell a user what is configured; their values are secrets.
        return {
            "url": without_credentials(self.webhook.url),
            "enabled": self.webhook.enabled,
            "headers": sorted(self.webhook.headers),
            "events": list(self.webhook.events),
        }


class MessageView(TypedDict):
    id: str
    body: str
    fromMe: bool
    timestamp: str
    contact: str
    type: str
    chatId: str


class MessageEvent(TypedDict):
    """The seed's webhook payload for a message. Fields may be added, never renamed."""

    instance_id: str
    provider: str
    message: MessageView


class LogLine(TypedDict):
    timestamp: str
    level: str
    message: str
    source: str
