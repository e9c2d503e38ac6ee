"""The seams: small protocols the use cases depend on. Adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from .core.errors import not_found
from .core.events import Envelope
from .core.types import AuthStatus, DesiredState, Instance, LogLine, SigningSecrets, Status, WebhookConfig


class InstanceRepository(Protocol):
    def create(self, instance: Instance, limit: int, port_range: tuple[int, int]) -> Instance:
        """Store a new instance, enforcing the per-company limit and giving it free ports, atomically."""

    def get(self, instance_id: str) -> Instance | None: ...

    def list_all(self) -> list[Instance]: ...

    def list_by_company(self, company_id: str) -> list[Instance]: ...

    def set_desired_state(self, instance_id: str, desired: DesiredState, status: Status) -> None: ...

    def set_task(self, instance_id: str, task_handle: str | None) -> None: ...

    def report(
        self,
        instance_id: str,
        *,
        status: Status | None = None,
        auth_status: AuthStatus | None = None,
        account: str | None = None,
        host: str | None = None,
    ) -> None:
        """Observed state, written by the provider runtime."""

    def set_webhook(self, instance_id: str, webhook: WebhookConfig) -> None: ...

    def set_signing(self, instance_id: str, signing: SigningSecrets) -> None: ...

    def set_qr(self, instance_id: str, qr: str | None) -> None:
        """The QR string a WhatsApp engine shows now (None: no QR pending)."""

    def count_key_use(self, instance_id: str) -> None: ...

    def count_log_lines(self, instance_id: str, lines: int) -> None: ...

    def delete(self, instance: Instance) -> None:
        """Remove the instance, its company slot and its ports."""


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class TaskInfo:
    handle: str
    state: TaskState
    detail: str = ""


class Launcher(Protocol):
    def launch(self, instance: Instance) -> str:
        """Start the instance's provider task; returns its handle."""

    def stop(self, handle: str) -> None: ...

    def describe(self, handle: str) -> TaskInfo: ...


class LogStore(Protocol):
    def append(self, instance_id: str, lines: list[LogLine]) -> None: ...

    def tail(self, instance_id: str, count: int) -> list[LogLine]:
        """The last `count` lines, oldest first."""

    def delete(self, instance_id: str) -> None: ...


class AuthStore(Protocol):
    """An engine's login state (WhatsApp credentials and Signal keys): opaque JSON values by key."""

    def load(self, instance_id: str) -> dict[str, Any]: ...

    def put(self, instance_id: str, items: dict[str, Any]) -> None:
        """Store each key's value; a None value deletes the key."""

    def wipe(self, instance_id: str) -> None: ...


class InstanceGateway(Protocol):
    """The manager's way to an instance's own API."""

    def call(self, instance: Instance, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]: ...


class DeliveryLog(Protocol):
    def record(self, event: Envelope, state: str, *, attempted: bool = False, status: int | None = None,
               error: str | None = None, next_attempt_at: datetime | None = None) -> int: ...

    def list(self, instance_id: str, state: str | None, limit: int) -> list[dict[str, Any]]: ...

    def get(self, instance_id: str, delivery_id: str) -> tuple[dict[str, Any], Envelope] | None: ...

    def forget(self, instance_id: str) -> None: ...


class RateLimiter(Protocol):
    def acquire(self, instance_id: str, limit: int) -> bool: ...


class EventPublisher(Protocol):
    def publish(self, event: Envelope, dedup_suffix: str = "") -> None:
        """`dedup_suffix` lets a retry of the same event through a FIFO queue's deduplication window."""


class SecretBox(Protocol):
    def seal(self, plaintext: str) -> str: ...

    def open(self, sealed: str) -> str: ...


def require(repo: InstanceRepository, instance_id: str) -> Instance:
    """The instance, or the seed's INSTANCE_NOT_FOUND."""
    instance = repo.get(instance_id)
    if instance is None:
        raise not_found(instance_id)
    return instance
