"""Standard Webhooks signatures, checked with the receiver code the README shows."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core import signing

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_verify() -> Any:
    block = re.search(r"in Python:\n\n```python\n(.*?)```", README, re.S)
    assert block, "the README's Python verification example"
    scope: dict[str, Any] = {}
    exec(block.group(1), scope)
    return scope["verify"]


def test_signature_matches_the_specification_test_vector() -> None:
    # The example from the Standard Webhooks specification's reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_the_readme_receiver_accepts_our_headers_and_refuses_tampering() -> None:
    verify = readme_verify()
    secret, body = signing.new_secret(), b'{"instance_id":"i","message":{"body":"hi"}}'
    headers = signing.headers([secret], "evt_1", body)
    assert verify(secret, headers, body)
    assert signing.verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(signing.new_secret(), headers, body)
    stale = signing.headers([secret], "evt_1", body, timestamp=int(time.time()) - 3600)
    assert not verify(secret, stale, body) and not signing.verify(secret, stale, body)


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new, body = signing.new_secret(), signing.new_secret(), b"{}"
    headers = signing.headers([new, old], "evt_2", body)
    assert len(headers["webhook-signature"].split()) == 2
    assert readme_verify()(old, headers, body) and readme_verify()(new, headers, body)


def test_secrets_look_like_standard_webhooks_secrets() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and secret != signing.new_secret()
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} == signing.RESERVED_HEADERS


def test_the_signatures_agree_with_the_standardwebhooks_reference_library() -> None:
    """Our signer against the Standard Webhooks project's own Python package, both ways, rotation included."""
    from standardwebhooks import Webhook, WebhookVerificationError

    current, previous = signing.new_secret(), signing.new_secret()
    body = b'{"event":"message","data":{"body":"caf\\u00e9 \\u20ac"}}'
    sent = signing.headers([current, previous], "evt_1", body)
    for secret in (current, previous):  # during the overlap a receiver with either secret accepts
        assert Webhook(secret).verify(body, sent) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(body + b" ", sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, sent)

    now = int(time.time())
    theirs = {"webhook-id": "evt_2", "webhook-timestamp": str(now),
              "webhook-signature": Webhook(current).sign("evt_2", datetime.fromtimestamp(now, UTC), body.decode())}
    assert signing.verify(current, theirs, body)
    assert not signing.verify(previous, theirs, body)
