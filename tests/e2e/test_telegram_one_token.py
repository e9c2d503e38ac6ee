"""One Telegram bot token, one poller, end to end through the local stack with the real provider
process against the fake Bot API: a second instance on a token in use is refused at create, and an
instance whose bot another client polls reports `error` with the reason, then comes back.

Ports: stack 3910 (moto 4910, launcher 4911), instances 9750-9799."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.e2e.harness import LocalStack, wait_for
from tests.e2e.test_telegram_flow import create
from tests.peers.telegram_bot_api import FakeTelegramServer
from tests.peers.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("stack"), 3910,
                       {"TELEGRAM_API_ROOT": telegram.api_root, "INSTANCE_PORT_RANGE": "9750-9799"})
    local.start()
    yield local
    assert local.stop() == 0


def errors(stack: LocalStack, instance_id: str) -> list[str]:
    return [line["message"] for line in stack.logs(instance_id) if line["level"] == "error"]


def test_a_token_in_use_is_refused_at_create_and_freed_by_delete(stack: LocalStack, telegram: FakeTelegramServer,
                                                                 receiver: WebhookReceiver) -> None:
    token = "300001:AAHoneTokenOneInstanceEndToEnd_000000"
    first, _, _ = create(stack, telegram, token, company="one-token", webhook_url=receiver.url)
    stack.wait_status(first, "client_ready")

    second = stack.call("POST", "/api/v1/instances", {"company_id": "other-company", "provider": "telegram",
                                                      "config": {"bot_token": token}})
    assert second.status_code == 409
    assert second.json()["code"] == "BOT_TOKEN_IN_USE" and first in second.json()["error"]
    assert token not in second.text and token.split(":")[1] not in second.text
    assert [i["id"] for i in stack.call("GET", "/api/v1/instances?company_id=other-company").json()["data"]] == []

    telegram.push_message(token, 5150, "to the one poller")
    wait_for(lambda: any(m["message"]["body"] == "to the one poller" for m in receiver.messages()), 15, "the webhook")
    assert not any("409 Conflict" in message for message in errors(stack, first))

    assert stack.call("DELETE", f"/api/v1/instances/{first}").status_code == 200
    again, _, _ = create(stack, telegram, token, company="other-company", register=False)
    stack.wait_status(again, "client_ready")


def test_another_client_polling_the_bot_puts_the_instance_in_error_and_it_comes_back(
        stack: LocalStack, telegram: FakeTelegramServer) -> None:
    token = "300002:AAHsomeoneElsePollsThisBotToo_0000000"
    instance_id, _, _ = create(stack, telegram, token, company="one-token")
    stack.wait_status(instance_id, "client_ready")

    stop = threading.Event()

    def poll_elsewhere() -> None:  # the same bot run on someone's laptop: a short poll ten times a second
        while not stop.wait(0.1):
            try:
                urllib.request.urlopen(f"{telegram.api_root}/bot{token}/getUpdates?timeout=0", timeout=5).close()
            except urllib.error.URLError:
                pass

    elsewhere = threading.Thread(target=poll_elsewhere, daemon=True)
    elsewhere.start()
    try:
        failed = stack.wait_status(instance_id, "error", timeout=20)
        assert failed["auth_status"] == "authenticated", "the token itself is fine"
        wait_for(lambda: any("409 Conflict" in m for m in errors(stack, instance_id)), 10, "the reason in the logs")
        reason = next(m for m in errors(stack, instance_id) if "409 Conflict" in m)
        assert "another client receives this bot's updates" in reason and "polling again in 30 s" in reason
        assert token not in reason and token.split(":")[1] not in reason
    finally:
        stop.set()
        elsewhere.join(timeout=10)
    # The engine's first retry comes 30 s after the Conflict; then a poll that ends well brings it back.
    stack.wait_status(instance_id, "client_ready", timeout=60)
    wait_for(lambda: any("Polling works again" in line["message"] for line in stack.logs(instance_id)), 10,
             "the recovery in the logs (shipped every half second)")
