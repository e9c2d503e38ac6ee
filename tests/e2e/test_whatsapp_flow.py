"""End to end through the local stack with the real WhatsApp engine (Baileys) against the fake
WhatsApp Web server: QR and pairing-code logins, messages both ways, restarts without a new QR."""

from __future__ import annotations

import base64
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import zxingcpp
from PIL import Image

from tests.e2e.harness import LocalStack, pid_alive, wait_for
from tests.peers.webhook_receiver import WebhookReceiver
from tests.peers.whatsapp_server import FakeWhatsAppServer

PHONE = "15551230001"
ALICE = "15550001111"


@pytest.fixture(scope="module")
def whatsapp() -> Iterator[FakeWhatsAppServer]:
    server = FakeWhatsAppServer(qr_ref_interval_ms=4000, qr_ref_count=3).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wa-stack")


@pytest.fixture(scope="module")
def stack(stack_dir: Path, whatsapp: FakeWhatsAppServer) -> Iterator[LocalStack]:
    local = LocalStack(stack_dir, 3600, {**whatsapp.environment(), "INSTANCE_PORT_RANGE": "9600-9649"})
    local.start()
    yield local
    if local.process and local.process.poll() is None:
        assert local.stop() == 0


def create(stack: LocalStack, receiver: WebhookReceiver | None = None, company: str = "wa") -> tuple[str, int, str]:
    body: dict[str, Any] = {"company_id": company, "provider": "whatsappweb", "type_instance": ["api"]}
    if receiver:
        body["api_webhook_schema"] = {"url": receiver.url, "headers": {"X-Hook": "wa-secret"}, "enabled": True}
    answer = stack.call("POST", "/api/v1/instances", body)
    assert answer.status_code == 200, answer.text
    details = answer.json()["process_result"]["details"]
    return answer.json()["instance_id"], details["ports"]["api"], details["api_key"]


def current_qr(stack: LocalStack, instance_id: str) -> dict[str, Any]:
    answer = stack.call("GET", f"/api/v1/instances/{instance_id}/qr")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["data"])


def decode_png_data_url(url: str) -> str:
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1
    return str(codes[0].text)


def send(port: int, key: str, chat_id: str, text: str) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{port}/api/v1/messages", json={"chatId": chat_id, "text": text},
                         headers={"x-api-key": key}, timeout=40)


def login_with_qr(stack: LocalStack, whatsapp: FakeWhatsAppServer, instance_id: str, phone: str) -> None:
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    whatsapp.scan(current_qr(stack, instance_id)["qr"], phone)
    ready = stack.wait_status(instance_id, "client_ready", timeout=40)
    assert ready["account"] == f"+{phone}" and ready["auth_status"] == "authenticated"


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in found if pid_alive(p)]


def qr_shown(stack: LocalStack, instance_id: str) -> int:
    return sum("QR code ready" in line["message"] for line in stack.logs(instance_id))


def test_qr_login_messages_and_restarts(stack: LocalStack, whatsapp: FakeWhatsAppServer,
                                        receiver: WebhookReceiver, stack_dir: Path) -> None:
    instance_id, port, key = create(stack, receiver)
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    assert stack.call("GET", f"/api/v1/instances/{instance_id}/auth-status").json()["data"]["status"] == "qr_ready"

    # the PNG decodes to exactly the string Baileys emitted; the page shows it; the QR rotates
    first = current_qr(stack, instance_id)
    assert decode_png_data_url(first["qr_url"]) == first["qr"] and "," in first["qr"]
    page = requests.get(first["url"], timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"] and instance_id in page.text
    rotated = wait_for(lambda: (q := current_qr(stack, instance_id))["qr"] != first["qr"] and q, 15, "QR rotation")
    assert decode_png_data_url(rotated["qr_url"]) == rotated["qr"]

    whatsapp.scan(rotated["qr"], PHONE)
    ready = stack.wait_status(instance_id, "client_ready", timeout=40)
    assert ready["account"] == f"+{PHONE}"
    gone = stack.call("GET", f"/api/v1/instances/{instance_id}/qr")
    assert gone.status_code == 409 and gone.json()["code"] == "QR_NOT_AVAILABLE"

    # a contact writes: the seed's payload, chatId <digits>@c.us, contact "Name (+digits)"
    whatsapp.send_message(PHONE, ALICE, "hello from Alice")
    wait_for(lambda: any(m["message"]["body"] == "hello from Alice" for m in receiver.messages()), 20, "the webhook")
    headers, payload = next((h, b) for h, b in receiver.received if b["message"]["body"] == "hello from Alice")
    assert headers["X-Hook"] == "wa-secret" and payload["provider"] == "whatsappweb"
    message = payload["message"]
    assert message["chatId"] == f"{ALICE}@c.us" and message["contact"] == f"Alice (+{ALICE})"
    assert message["fromMe"] is False and message["type"] == "text" and message["id"]

    # a new contact's burst reaches the webhook in the order it was sent
    burst = [f"burst {n}" for n in range(6)]
    for text in burst:
        whatsapp.send_message(PHONE, "15550004444", text, sender_name="Bob")
    wait_for(lambda: set(burst) <= {m["message"]["body"] for m in receiver.messages()}, 20, "the burst")
    assert [m["message"]["body"] for m in receiver.messages() if m["message"]["body"] in burst] == burst

    # a message sent from the phone itself arrives with fromMe true
    whatsapp.send_from_phone(PHONE, "15550002222", "typed on the phone")
    wait_for(lambda: any(m["message"]["body"] == "typed on the phone" for m in receiver.messages()), 20, "fromMe")
    own = next(m["message"] for m in receiver.messages() if m["message"]["body"] == "typed on the phone")
    assert own["fromMe"] is True and own["chatId"] == "15550002222@c.us"

    # a contact writes in a group: chatId <id>@g.us, the author resolved to a phone number
    whatsapp.send_message(PHONE, ALICE, "hello group", group="120363000000000001")
    wait_for(lambda: any(m["message"]["body"] == "hello group" for m in receiver.messages()), 20, "a group message")
    group = next(m["message"] for m in receiver.messages() if m["message"]["body"] == "hello group")
    assert group["chatId"] == "120363000000000001@g.us" and group["contact"] == f"Alice (+{ALICE})"
    assert group["author"] == f"{ALICE}@c.us" and group["fromMe"] is False

    # sending to <digits> and to <digits>@c.us: the fake server decrypts what arrives
    for chat_id, text in ((ALICE, "reply one"), (f"{ALICE}@c.us", "reply two")):
        answer = send(port, key, chat_id, text)
        assert answer.status_code == 200, answer.text
        sent_id = answer.json()["data"]["id"]
        def arrived(t: str = text) -> list[dict[str, Any]]:
            return [r for r in whatsapp.received() if r.get("text") == t]

        got = wait_for(arrived, 15, f"'{text}' received")
        assert got[0]["id"] == sent_id and got[0]["to"] == ALICE
    # and to a group: every member's device decrypts it
    whatsapp.create_group("120363000000000002", [ALICE, "15550003333"], owner=PHONE)
    answer = send(port, key, "120363000000000002@g.us", "hello team")
    assert answer.status_code == 200, answer.text
    to_group = wait_for(lambda: [r for r in whatsapp.received() if r.get("text") == "hello team"], 20, "the group send")
    assert to_group[0]["to"] == "120363000000000002@g.us" and to_group[0]["group"] is True
    assert set(to_group[0]["decryptedBy"]) == {ALICE, "15550003333"}
    bad = send(port, key, "not-a-number", "x")
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"

    # the provider task killed: back without a new QR
    shown = qr_shown(stack, instance_id)
    victim = stack.provider_pid(instance_id)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: stack.provider_pid(instance_id) != victim, 10, "a new provider process")
    stack.wait_status(instance_id, "client_ready", timeout=40)
    assert qr_shown(stack, instance_id) == shown

    # the instance restarted through the API: back without a new QR
    before_restart = stack.provider_pid(instance_id)
    assert stack.call("POST", f"/api/v1/instances/{instance_id}/restart").status_code == 200
    stack.wait_status(instance_id, "client_ready", timeout=40)
    assert stack.provider_pid(instance_id) != before_restart and qr_shown(stack, instance_id) == shown

    # the whole stack restarted: back without a new QR, and it still sends
    assert stack.stop() == 0
    stack.start()
    stack.wait_status(instance_id, "client_ready", timeout=40)
    assert qr_shown(stack, instance_id) == shown
    assert send(port, key, ALICE, "after the restart").status_code == 200

    # connection dropped by the server: disconnected, then back on its own
    whatsapp.drop(PHONE)
    wait_for(lambda: any("Connection to WhatsApp lost" in line["message"] for line in stack.logs(instance_id)), 15, "drop")
    stack.wait_status(instance_id, "client_ready", timeout=40)

    # the Node child dies under the runtime: the bridge reports it and starts it again, no new QR
    provider = stack.provider_pid(instance_id)
    bridge = children(provider)
    assert len(bridge) == 1
    os.kill(bridge[0], signal.SIGKILL)
    wait_for(lambda: any("bridge exited" in line["message"] for line in stack.logs(instance_id)), 10, "the crash report")
    wait_for(lambda: children(provider) and children(provider) != bridge, 20, "a new bridge process")
    stack.wait_status(instance_id, "client_ready", timeout=40)
    assert stack.provider_pid(instance_id) == provider and qr_shown(stack, instance_id) == shown

    # logged out from the phone: failed, credentials wiped; start offers a fresh QR
    whatsapp.remove_device(PHONE)
    failed = stack.wait_status(instance_id, "error", timeout=20)
    assert failed["auth_status"] == "failed" and failed["account"] is None
    wait_for(lambda: any("Logged out" in line["message"] for line in stack.logs(instance_id)), 5, "the logout line")
    assert stack.call("POST", f"/api/v1/instances/{instance_id}/start").status_code == 200
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    assert current_qr(stack, instance_id)["qr"]


def test_pairing_code_login(stack: LocalStack, whatsapp: FakeWhatsAppServer) -> None:
    phone = "15551230002"
    instance_id, port, key = create(stack, company="wa-pairing")
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    bad = stack.call("POST", f"/api/v1/instances/{instance_id}/pairing-code", {"phone_number": "12"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"
    answer = stack.call("POST", f"/api/v1/instances/{instance_id}/pairing-code", {"phone_number": f"+{phone}"})
    assert answer.status_code == 200, answer.text
    code = answer.json()["data"]["pairing_code"]
    assert len(code) == 8
    whatsapp.enter_pairing_code(phone, code)
    ready = stack.wait_status(instance_id, "client_ready", timeout=40)
    assert ready["account"] == f"+{phone}"
    assert send(port, key, ALICE, "paired by code").status_code == 200


def test_unscanned_qr_expires_and_start_begins_again(stack: LocalStack) -> None:
    instance_id, _, _ = create(stack, company="wa-expiry")
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    pid = stack.provider_pid(instance_id)
    expired = stack.wait_status(instance_id, "error", timeout=60)
    assert expired["auth_status"] == "pending" and pid_alive(pid)
    wait_for(lambda: any("expired" in line["message"] for line in stack.logs(instance_id)), 5, "the expiry line")
    assert stack.call("GET", f"/api/v1/instances/{instance_id}/qr").status_code == 409
    assert stack.call("POST", f"/api/v1/instances/{instance_id}/start").status_code == 200
    stack.wait_status(instance_id, "qr_ready", timeout=30)
    assert current_qr(stack, instance_id)["qr"]


def test_qr_on_a_telegram_instance_is_a_clear_error(stack: LocalStack) -> None:
    body = {"company_id": "wa-tg", "provider": "telegram", "type_instance": ["api"],
            "config": {"bot_token": "123:AAHnotUsedHere"}}
    instance_id = stack.call("POST", "/api/v1/instances", body).json()["instance_id"]
    answer = stack.call("GET", f"/api/v1/instances/{instance_id}/qr")
    assert answer.status_code == 409 and answer.json()["code"] == "QR_NOT_AVAILABLE"
    assert "bot token" in answer.json()["error"]
