"""Use cases around an instance's webhook: its configuration, its signing secret, its delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .config import Settings
from .core.errors import ErrorCode, InstanceManagerError, invalid
from .core.events import Envelope, envelope
from .core.signing import new_secret
from .core.types import Instance, SigningSecrets, iso, utc_now
from .core.validation import parse_webhook_update
from .instance_log import InstanceLog
from .ports import DeliveryLog, EventPublisher, InstanceRepository, require
from .webhooks import check_webhook_url

SOURCE = "webhook"
STATES = ("pending", "failed", "delivered", "dead")
MAX_LIST = 100


@dataclass
class WebhookService:
    repo: InstanceRepository
    deliveries: DeliveryLog
    publisher: EventPublisher
    log: InstanceLog
    settings: Settings

    def _get(self, instance_id: str) -> Instance:
        return require(self.repo, instance_id)

    def view(self, instance_id: str) -> dict[str, Any]:
        instance = self._get(instance_id)
        view = instance.public_view()["webhook"]
        signing = instance.signing
        return {
            "webhook": view,
            "previous_secret_valid_until": iso(signing.previous_expires_at) if signing and signing.previous else None,
        }

    def update(self, instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
        instance = self._get(instance_id)
        webhook = parse_webhook_update(body, instance.webhook)
        check_webhook_url(webhook.url, self.settings.webhook_allow_private)
        self.repo.set_webhook(instance.id, webhook)
        self.log.write(instance.id, "info", f"Webhook configuration changed (enabled {webhook.enabled}, "
                       f"events {list(webhook.events)})", SOURCE)
        return self.view(instance_id)

    def rotate_secret(self, instance_id: str) -> dict[str, Any]:
        instance = self._get(instance_id)
        now = utc_now()
        until = now + timedelta(seconds=self.settings.webhook_secret_overlap_seconds)
        previous = instance.signing.current if instance.signing else None
        signing = SigningSecrets(new_secret(), previous, until if previous else None)
        self.repo.set_signing(instance.id, signing)
        self.log.write(instance.id, "info", f"Webhook signing secret rotated; the previous one signs too until {iso(until)}",
                       SOURCE)
        return {"webhook_secret": signing.current, "previous_secret_valid_until": iso(signing.previous_expires_at)}

    def send_test(self, instance_id: str) -> dict[str, Any]:
        instance = self._get(instance_id)
        if instance.webhook is None:
            raise invalid("This instance has no webhook: configure one with PATCH .../webhook first")
        payload = {"instance_id": instance.id, "provider": instance.provider.value, "event": "webhook.test",
                   "data": {"message": "A test event from Instance Manager"}}
        event = envelope("webhook.test", instance.id, payload, group=f"{instance.id}:test")
        self.deliveries.record(event, "pending")  # listed from now on, not only once the fan-out has it
        self.publisher.publish(event)
        return {"delivery_id": event["event_id"]}

    def list(self, instance_id: str, state: str | None, limit: str | None) -> list[dict[str, Any]]:
        self._get(instance_id)
        if state is not None and state not in STATES:
            raise invalid(f"state must be one of {list(STATES)}, got {state!r}")
        count = _limit(limit)
        return self.deliveries.list(instance_id, state, count)

    def _delivery(self, instance_id: str, delivery_id: str) -> tuple[dict[str, Any], Envelope]:
        self._get(instance_id)
        found = self.deliveries.get(instance_id, delivery_id)
        if found is None:
            raise InstanceManagerError(ErrorCode.DELIVERY_NOT_FOUND, f"No delivery {delivery_id} for this instance")
        return found

    def get(self, instance_id: str, delivery_id: str) -> dict[str, Any]:
        view, event = self._delivery(instance_id, delivery_id)
        return {**view, "payload": event["payload"]}

    def retry(self, instance_id: str, delivery_id: str) -> dict[str, Any]:
        view, event = self._delivery(instance_id, delivery_id)
        if view["state"] == "delivered":
            raise invalid("This delivery already succeeded: send a test event instead")
        # A fresh start for its age; the same event id, so the receiver can tell it is the same event.
        event = Envelope(**{**event, "occurred_at": iso(utc_now()) or ""})
        self.deliveries.record(event, "pending")
        self.publisher.publish(event, dedup_suffix=f":retry:{view['attempts']}:{int(utc_now().timestamp())}")
        self.log.write(instance_id, "info", f"Webhook delivery {delivery_id} queued again by a user", SOURCE)
        return {"delivery_id": delivery_id, "state": "pending"}


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 50
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIST:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIST}, got {raw!r}")
    return int(raw)
