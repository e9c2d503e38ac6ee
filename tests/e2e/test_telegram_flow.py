"""End to end through the local stack with the real Telegram engine against the fake Bot API."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.harness import LocalStack, pid_alive, port_open, wait_for
from tests.peers.telegram_bot_api import FakeTelegramServer
from tests.peers.webhook_receiver import WebhookReceiver

TOKEN = "100001:AAHfakeTokenForTheEndToEndTestsOnly_123"
SECRET_HEADER = "Bearer webhook-secret-value-42"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("stack"), 3200,
                       {"TELEGRAM_API_ROOT": telegram.api_root, "INSTANCE_PORT_RANGE": "9200-9249"})
    local.start()
    yield local
    assert local.stop() == 0


def create(stack: LocalStack, telegram: FakeTelegramServer, token: str, company: str = "e2e",
           webhook_url: str | None = None, register: bool = True) -> tuple[str, int, str]:
    if register:
        telegram.add_bot(token)
    body: dict[str, object] = {"company_id": company, "provider": "telegram", "type_instance": ["api"],
                               "config": {"bot_token": token}}
    if webhook_url:
        body["api_webhook_schema"] = {"url": webhook_url, "headers": {"Authorization": SECRET_HEADER}, "enabled": True}
    answer = stack.call("POST", "/api/v1/instances", body)
    assert answer.status_code == 200, answer.text
    created = answer.json()
    return created["instance_id"], created["process_result"]["details"]["ports"]["api"], \
        created["process_result"]["details"]["api_key"]


def send(port: int, key: str | None, body: object) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    return requests.post(f"http://127.0.0.1:{port}/api/v1/messages", json=body, headers=headers, timeout=10)


def test_messages_flow_both_ways(stack: LocalStack, telegram: FakeTelegramServer, receiver: WebhookReceiver) -> None:
    instance_id, port, key = create(stack, telegram, TOKEN, webhook_url=receiver.url)
    ready = stack.wait_status(instance_id, "client_ready")
    assert ready["account"].startswith("@") and ready["auth_status"] == "authenticated"
    auth = stack.call("GET", f"/api/v1/instances/{instance_id}/auth-status").json()["data"]
    assert auth["status"] == "authenticated" and auth["authenticated"] is True and auth["account"] == ready["account"]

    # a fake user writes to the bot: the seed's payload reaches the webhook with the configured header
    telegram.push_message(TOKEN, 4242, "hello from Alice", from_user={"id": 4242, "first_name": "Alice", "username": "alice"})
    wait_for(lambda: any(m["message"]["body"] == "hello from Alice" for m in receiver.messages()), 15, "the webhook")
    headers, payload = next((h, b) for h, b in receiver.received if b["message"]["body"] == "hello from Alice")
    assert headers["Authorization"] == SECRET_HEADER
    assert headers["Content-Type"] == "application/json"
    assert payload["instance_id"] == instance_id and payload["provider"] == "telegram"
    message = payload["message"]
    assert set(message) >= {"id", "body", "fromMe", "timestamp", "contact", "type", "chatId"}
    assert message["chatId"] == "4242" and message["fromMe"] is False and message["type"] == "text"
    assert message["contact"] == "Alice (@alice)" and message["timestamp"].endswith("Z")

    # the reply through the instance API
    assert send(port, None, {"chatId": "4242", "text": "hi"}).status_code == 401
    bad = send(port, key, {"chatId": "4242"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR" and "text" in bad.json()["error"]
    answer = send(port, key, {"chatId": "4242", "text": "hello Alice"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "data": {"id": answer.json()["data"]["id"]}}
    sent = [m for m in telegram.sent(TOKEN) if m["text"] == "hello Alice"]
    assert sent and answer.json()["data"]["id"] == f"4242:{sent[0]['message_id']}"
    status = requests.get(f"http://127.0.0.1:{port}/api/v1/status", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert status.json()["data"]["status"] == "client_ready"

    usage = wait_for(lambda: (k := stack.call("GET", f"/api/v1/instances/{instance_id}/current-api-key").json()["data"])
                     ["usage_count"] >= 3 and k, 10, "usage counted")
    assert usage["api_key"] == key and usage["last_use"] is not None

    # The provider ships its log lines every 0.5 s: they may trail the status it reported.
    lines = wait_for(lambda: (got := stack.logs(instance_id)) and any("client ready" in line["message"] for line in got) and got,
                     10, "the provider's log lines")
    text = "\n".join(line["message"] for line in lines)
    assert "logged in as" in text and "client ready" in text
    assert all(set(line) == {"timestamp", "level", "message", "source"} for line in lines)
    for secret in (TOKEN, key, SECRET_HEADER, TOKEN.split(":")[1]):
        assert secret not in text
    tail = stack.call("GET", f"/api/v1/instances/{instance_id}/logs?tail=2").json()["data"]
    assert len(tail["logs"]) == 2 and tail["tail"] == 2 and tail["total_lines"] >= len(lines)


def test_stop_start_restart(stack: LocalStack, telegram: FakeTelegramServer) -> None:
    token = "100002:AAHsecondBotTokenForStopStartRestart_12"
    instance_id, port, _ = create(stack, telegram, token)
    stack.wait_status(instance_id, "client_ready")
    first = stack.provider_pid(instance_id)

    assert stack.call("POST", f"/api/v1/instances/{instance_id}/stop").json()["message"] == "Instance stopped successfully"
    assert not port_open(port) and not pid_alive(first)
    assert stack.instance(instance_id)["status"] == "stopped"
    time.sleep(2.5)  # the reconcile loop must leave a stopped instance alone
    assert not port_open(port)

    assert stack.call("POST", f"/api/v1/instances/{instance_id}/start").status_code == 200
    stack.wait_status(instance_id, "client_ready")
    assert port_open(port)
    second = stack.provider_pid(instance_id)

    assert stack.call("POST", f"/api/v1/instances/{instance_id}/restart").json()["message"] == \
        "Instance restarted successfully"
    stack.wait_status(instance_id, "client_ready")
    third = stack.provider_pid(instance_id)
    assert len({first, second, third}) == 3 and not pid_alive(second) and pid_alive(third)


def test_killed_provider_comes_back(stack: LocalStack, telegram: FakeTelegramServer) -> None:
    token = "100003:AAHthirdBotTokenForTheCrashRecoveryTest"
    instance_id, port, key = create(stack, telegram, token)
    stack.wait_status(instance_id, "client_ready")
    victim = stack.provider_pid(instance_id)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: stack.provider_pid(instance_id) != victim, 10, "a new provider process")
    assert time.monotonic() - killed_at < 10
    stack.wait_status(instance_id, "client_ready")
    assert send(port, key, {"chatId": "1", "text": "still here"}).status_code == 200
    assert any("gone" in line["message"] for line in stack.logs(instance_id))


def test_rejected_token_fails_without_crash_loop(stack: LocalStack, telegram: FakeTelegramServer) -> None:
    token = "100004:AAHthisTokenIsUnknownToTheFakeServer_00"
    instance_id, port, key = create(stack, telegram, token, register=False)
    failed = stack.wait_status(instance_id, "error")
    wait_for(lambda: stack.instance(instance_id)["auth_status"] == "failed", 10, "auth_status failed")
    pid = stack.provider_pid(instance_id)
    time.sleep(3)
    assert stack.provider_pid(instance_id) == pid and pid_alive(pid)  # no crash loop
    assert failed["account"] is None
    reasons = [line["message"] for line in stack.logs(instance_id) if line["level"] == "error"]
    assert any("rejected the bot token" in r for r in reasons)
    assert all(token not in r and token.split(":")[1] not in r for r in reasons)
    not_ready = send(port, key, {"chatId": "1", "text": "x"})
    assert not_ready.status_code == 409 and not_ready.json()["code"] == "INSTANCE_NOT_READY"


def test_delete_frees_everything(stack: LocalStack, telegram: FakeTelegramServer) -> None:
    token = "100005:AAHfifthBotTokenForTheDeleteTest_000000"
    instance_id, port, _ = create(stack, telegram, token, company="deleter")
    stack.wait_status(instance_id, "client_ready")
    pid = stack.provider_pid(instance_id)
    answer = stack.call("DELETE", f"/api/v1/instances/{instance_id}")
    assert answer.json() == {"success": True, "message": "Instance deleted successfully"}
    assert not port_open(port) and not pid_alive(pid)
    gone = stack.call("GET", f"/api/v1/instances/{instance_id}")
    assert gone.status_code == 404 and gone.json()["code"] == "INSTANCE_NOT_FOUND"
    time.sleep(1.5)
    assert not port_open(port)  # not brought back by the reconcile loop
    _, again_port, _ = create(stack, telegram, "100006:AAHsixthBotTokenReusesTheFreedPort_0000", company="deleter")
    assert again_port == port


def test_stack_restart_keeps_instances_and_pending_events(tmp_path: Path, telegram: FakeTelegramServer,
                                                          receiver: WebhookReceiver) -> None:
    stack = LocalStack(tmp_path / "data", 3250, {"TELEGRAM_API_ROOT": telegram.api_root,
                                                 "INSTANCE_PORT_RANGE": "9250-9299"})
    token = "100007:AAHrunningAcrossStackRestarts_00000000"
    stack.start()
    try:
        running, running_port, running_key = create(stack, telegram, token, webhook_url=receiver.url)
        stopped, stopped_port, _ = create(stack, telegram, "100008:AAHstoppedAcrossStackRestarts_00000000")
        stack.wait_status(running, "client_ready")
        stack.wait_status(stopped, "client_ready")
        stack.call("POST", f"/api/v1/instances/{stopped}/stop")
        old_pid = stack.provider_pid(running)
        # the receiver is down: the event waits in SQS, and must survive the restart
        receiver.status = 503
        telegram.push_message(token, 77, "sent while the receiver was down")
        wait_for(lambda: any("failed (attempt" in line["message"] for line in stack.logs(running)), 15,
                 "a failed delivery")
    finally:
        assert stack.stop() == 0
    assert not pid_alive(old_pid) and not port_open(running_port)

    receiver.status = 200
    stack.start()
    try:
        wait_for(lambda: any(m["message"]["body"] == "sent while the receiver was down" for m in receiver.messages()),
                 30, "the pending event after the restart")
        back = stack.wait_status(running, "client_ready")
        assert back["ports"] == {"api": running_port}
        key = stack.call("GET", f"/api/v1/instances/{running}/current-api-key").json()["data"]["api_key"]
        assert key == running_key
        assert send(running_port, running_key, {"chatId": "7", "text": "after restart"}).status_code == 200
        assert stack.instance(stopped)["status"] == "stopped"
        time.sleep(2)
        assert not port_open(stopped_port)
    finally:
        assert stack.stop() == 0


def test_opt_in_events_arrive_signed(stack: LocalStack, telegram: FakeTelegramServer, receiver: WebhookReceiver) -> None:
    from chalicelib.core import signing

    token = "100009:AAHoptInEventsTokenForTheWebhookTests_0"
    telegram.add_bot(token)
    body = {"company_id": "events", "provider": "telegram", "config": {"bot_token": token},
            "api_webhook_schema": {"url": receiver.url, "events": ["message", "instance.status", "message.ack"]}}
    created = stack.call("POST", "/api/v1/instances", body).json()
    instance_id, secret = created["instance_id"], created["process_result"]["details"]["webhook_secret"]
    port, key = created["process_result"]["details"]["ports"]["api"], created["process_result"]["details"]["api_key"]
    stack.wait_status(instance_id, "client_ready")

    def events(kind: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(h, b) for h, b in receiver.received if b.get("instance_id") == instance_id and b.get("event") == kind]

    wait_for(lambda: any(b["data"]["status"] == "client_ready" for _, b in events("instance.status")), 15, "status events")
    sent = send(port, key, {"chatId": "77", "text": "acked?"}).json()["data"]["id"]
    wait_for(lambda: any(b["data"]["id"] == sent for _, b in events("message.ack")), 15, "the ack")
    headers, ack = next((h, b) for h, b in events("message.ack") if b["data"]["id"] == sent)
    assert ack["data"] == {"id": sent, "chatId": "77", "status": "server"}
    raw = json.dumps(ack, ensure_ascii=False, separators=(",", ":")).encode()
    assert signing.verify(secret, headers, raw)
    statuses = [b["data"]["status"] for _, b in events("instance.status")]
    assert statuses.index("authenticated") < statuses.index("client_ready")  # in the order they happened
