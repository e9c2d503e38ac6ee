"""The envelope of everything the provider publishes for webhooks, and the payload size limit.

An envelope travels through SQS (FIFO: one message group per instance and chat, so a chat's events
keep their order); the fan-out POSTs its `payload`, signed, with `webhook-id` = `event_id`."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, TypedDict

from .types import iso, utc_now

MAX_PAYLOAD_BYTES = 1_000_000  # the seed's 1 MB
EVENT_TYPES = ("message", "instance.status", "qr", "message.ack", "webhook.test")
DEFAULT_EVENTS = ("message",)


class Envelope(TypedDict):
    event_id: str
    type: str
    instance_id: str
    group: str
    occurred_at: str
    payload: dict[str, Any]


def new_event_id() -> str:
    """Sortable by time: the delivery log lists newest first by this id."""
    return f"evt_{int(time.time() * 1000):013d}_{secrets.token_hex(6)}"


def envelope(kind: str, instance_id: str, payload: dict[str, Any], group: str) -> Envelope:
    return Envelope(event_id=new_event_id(), type=kind, instance_id=instance_id, group=group,
                    occurred_at=iso(utc_now()) or "", payload=fit_payload(payload))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def fit_payload(payload: dict[str, Any], limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """A payload over the limit keeps its shape: the message body is cut and `truncated` says so."""
    size = len(encode(payload))
    message = payload.get("message")
    if size <= limit or not isinstance(message, dict) or not isinstance(message.get("body"), str):
        return payload
    body = message["body"].encode()
    keep = max(0, len(body) - (size - limit) - 64)
    cut = body[:keep].decode(errors="ignore")
    return {**payload, "message": {**message, "body": cut, "truncated": True, "original_size": len(body)}}
