"""Webhooks survive crashes and outages on the local stack: the fan-out killed mid-batch, the
receiver down for a while, the whole stack restarted with events pending. Afterwards every event
has arrived at least once, duplicates carry the same webhook-id, and each chat's order holds."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LocalStack, processes_with_env, wait_for
from tests.peers.telegram_bot_api import FakeTelegramServer
from tests.peers.webhook_receiver import WebhookReceiver

TOKEN = "200001:AAHcrashSafetyTokenForWebhookTests_0001"
CHATS = (501, 502)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("crash"), 3700, {
        "TELEGRAM_API_ROOT": telegram.api_root, "INSTANCE_PORT_RANGE": "9700-9749",
        # time compressed: retries from 1 s, a killed loop's batch back after 3 s
        "WEBHOOK_RETRY_BASE_SECONDS": "1", "LOCAL_SQS_VISIBILITY_SECONDS": "3",
    })
    local.start()
    yield local
    if local.process and local.process.poll() is None:
        assert local.stop() == 0


@pytest.fixture(scope="module")
def instance_id(stack: LocalStack, telegram: FakeTelegramServer, receiver: WebhookReceiver) -> str:
    telegram.add_bot(TOKEN)
    body = {"company_id": "crash", "provider": "telegram", "type_instance": ["api"], "config": {"bot_token": TOKEN},
            "api_webhook_schema": {"url": receiver.url}}
    created = stack.call("POST", "/api/v1/instances", body).json()
    stack.wait_status(created["instance_id"], "client_ready")
    return str(created["instance_id"])


def push(telegram: FakeTelegramServer, label: str, count: int) -> list[str]:
    """`count` messages in each chat, alternating chats; returns their bodies in the order sent."""
    bodies = []
    for n in range(count):
        for chat in CHATS:
            body = f"{label}-{chat}-{n}"
            telegram.push_message(TOKEN, chat, body)
            bodies.append(body)
    return bodies


def check_arrivals(receiver: WebhookReceiver, bodies: list[str], timeout: float) -> None:
    def arrived() -> bool:
        seen = {m["message"]["body"] for m in receiver.messages() if "message" in m}
        return set(bodies) <= seen

    wait_for(arrived, timeout, f"{len(bodies)} events at the webhook")
    ids: dict[str, str] = {}
    first_seen: list[str] = []
    for headers, payload in receiver.received:
        body = payload.get("message", {}).get("body")
        if body not in bodies:
            continue
        if body in ids:
            assert ids[body] == headers["webhook-id"], "a duplicate must carry the same webhook-id"
        else:
            ids[body] = headers["webhook-id"]
            first_seen.append(body)
    trace = [(status, p.get("message", {}).get("body")) for status, p in receiver.attempts]
    for chat in CHATS:
        in_chat = [b for b in first_seen if f"-{chat}-" in b]
        assert in_chat == [b for b in bodies if f"-{chat}-" in b], f"chat {chat} out of order: {in_chat}; {trace}"


def test_fanout_killed_in_the_middle_of_a_batch(stack: LocalStack, telegram: FakeTelegramServer,
                                                receiver: WebhookReceiver, instance_id: str) -> None:
    receiver.delay = 0.7  # slow: the loop is mid-batch when it dies
    bodies = push(telegram, "kill", 4)
    wait_for(lambda: any(m.get("message", {}).get("body") in bodies for m in receiver.messages()), 20, "a first delivery")
    loops = [pid for pid in processes_with_env("DATA_DIR", str(stack.data_dir))
             if b"stack.sqs_loop" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(loops) == 1
    os.kill(loops[0], signal.SIGKILL)
    receiver.delay = 0.0
    check_arrivals(receiver, bodies, 60)


def test_receiver_down_for_a_while_then_back(stack: LocalStack, telegram: FakeTelegramServer,
                                             receiver: WebhookReceiver, instance_id: str) -> None:
    receiver.status = 503
    bodies = push(telegram, "outage", 3)
    time.sleep(12)  # several retries fail meanwhile
    failed = stack.call("GET", f"/api/v1/instances/{instance_id}/deliveries?state=failed").json()["data"]
    assert failed and all(d["last_status"] == 503 for d in failed)
    receiver.status = 200
    check_arrivals(receiver, bodies, 90)


def test_stack_restarted_with_events_pending(stack: LocalStack, telegram: FakeTelegramServer,
                                             receiver: WebhookReceiver, instance_id: str) -> None:
    receiver.status = 503
    bodies = push(telegram, "restart", 3)
    wait_for(lambda: stack.call("GET", f"/api/v1/instances/{instance_id}/deliveries?state=failed").json()["data"],
             20, "failed deliveries")
    assert stack.stop() == 0
    receiver.status = 200
    stack.start()
    check_arrivals(receiver, bodies, 90)
    delivered = stack.call("GET", f"/api/v1/instances/{instance_id}/deliveries?state=delivered&limit=100").json()["data"]
    assert len(delivered) >= len(bodies)
