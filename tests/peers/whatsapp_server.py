"""Runs the fake WhatsApp Web server (tests/peers/whatsapp, Node) and speaks its control API."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

SERVER = Path(__file__).resolve().parent / "whatsapp" / "server.js"


class FakeWhatsAppServer:
    def __init__(self, qr_ref_interval_ms: int = 20000, qr_ref_count: int = 6) -> None:
        self._args = ["--qr-ref-interval-ms", str(qr_ref_interval_ms), "--qr-ref-count", str(qr_ref_count)]
        self.qr_ref_interval_ms = qr_ref_interval_ms
        self.process: subprocess.Popen[str] | None = None
        self.ws_url = ""
        self.root_public_key_hex = ""
        self.control_url = ""

    def start(self) -> FakeWhatsAppServer:
        self.process = subprocess.Popen(
            ["node", str(SERVER), "--port", "0", "--control-port", "0", *self._args],
            cwd=SERVER.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while not (self.ws_url and self.root_public_key_hex and self.control_url):
            line = self.process.stdout.readline()
            if not line and (self.process.poll() is not None or time.monotonic() > deadline):
                raise RuntimeError("the fake WhatsApp server did not start:\n" + "".join(seen))
            seen.append(line)
            if m := re.search(r"ws URL.*: (ws://\S+)", line):
                self.ws_url = m.group(1)
            if m := re.search(r"root public key.*: ([0-9a-f]{64})", line):
                self.root_public_key_hex = m.group(1)
            if m := re.search(r"control API: (http://\S+?)/_fake/state", line):
                self.control_url = m.group(1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def environment(self) -> dict[str, str]:
        """What the provider runtime needs to talk to this server instead of WhatsApp."""
        return {"WHATSAPP_WS_URL": self.ws_url, "WHATSAPP_ROOT_PUBLIC_KEY": self.root_public_key_hex,
                "WHATSAPP_QR_TIMEOUT_MS": str(self.qr_ref_interval_ms)}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = requests.request(method, self.control_url + path, json=body, timeout=30)
        if answer.status_code >= 400:
            raise AssertionError(f"fake WhatsApp {path}: {answer.status_code} {answer.text}")
        return answer.json()

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_fake/state"))

    def scan(self, qr: str, phone: str, name: str = "Me") -> dict[str, Any]:
        return dict(self._call("POST", "/_fake/scan", {"qr": qr, "phone": phone, "name": name}))

    def enter_pairing_code(self, phone: str, code: str) -> dict[str, Any]:
        return dict(self._call("POST", "/_fake/pairing-code", {"phone": phone, "code": code}))

    def send_message(self, to: str, sender: str, text: str, sender_name: str = "Alice", **extra: Any) -> dict[str, Any]:
        body = {"to": to, "from": sender, "fromName": sender_name, "text": text, **extra}
        return dict(self._call("POST", "/_fake/messages", body))

    def send_from_phone(self, phone: str, to: str, text: str) -> dict[str, Any]:
        return dict(self._call("POST", "/_fake/messages/from-phone", {"phone": phone, "to": to, "text": text}))

    def create_group(self, group_id: str, participants: list[str], owner: str, subject: str = "Team") -> dict[str, Any]:
        body = {"id": group_id, "participants": participants, "owner": owner, "subject": subject}
        return dict(self._call("POST", "/_fake/groups", body))

    def received(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_fake/received"))

    def remove_device(self, phone: str) -> dict[str, Any]:
        return dict(self._call("POST", "/_fake/remove-device", {"phone": phone}))

    def drop(self, phone: str) -> dict[str, Any]:
        return dict(self._call("POST", "/_fake/drop", {"phone": phone}))
