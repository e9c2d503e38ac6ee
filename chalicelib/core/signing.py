"""Standard Webhooks signatures (https://www.standardwebhooks.com): a receiver verifies
`webhook-signature` = "v1,<base64 HMAC-SHA256 of '{webhook-id}.{webhook-timestamp}.{body}'>" with the
secret `whsec_<base64 key>`. Several space-separated signatures may be sent (while a rotated secret
overlaps with its successor); one that verifies is enough."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

PREFIX = "whsec_"
RESERVED_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
TOLERANCE_S = 300


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secrets_in_use: list[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_in_use),
    }


def verify(secret: str, received: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiver does (used by the tests and shown in the README)."""
    lowered = {k.lower(): v for k, v in received.items()}
    msg_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not (stamp.isascii() and stamp.isdigit()) or abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, int(stamp), body)
    return any(hmac.compare_digest(expected, given) for given in lowered.get("webhook-signature", "").split())
