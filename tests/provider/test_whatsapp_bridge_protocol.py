"""The WhatsApp engine's side of the bridge protocol, against a child that misbehaves: stray output
on stdout, a broken frame, a crash. (The real Baileys child is exercised end to end in tests/e2e.)"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from chalicelib.core.types import AuthStatus, MessageView, Status
from provider.engines.whatsapp import WhatsAppEngine

CHILD = r'''
import json, sys
FRAME = "@@IM@@ "
def emit(event): sys.stdout.write(FRAME + json.dumps(event) + "\n"); sys.stdout.flush()
start = json.loads(sys.stdin.readline())
print("a library printing to stdout")                     # stray text
sys.stdout.write(FRAME + "{not json\n")                    # a broken frame
print(json.dumps({"ev": "qr", "qr": "forged without the frame"}))
emit({"ev": "log", "level": "info", "message": "saved creds: " + json.dumps(start["creds"])})
emit({"ev": "qr", "qr": "2@ref,key,key,key,1"})
emit({"ev": "keys", "id": 1, "data": {"pre-key": {"1": {"public": "AAA"}, "2": None}}})
ack = json.loads(sys.stdin.readline())
emit({"ev": "log", "level": "info", "message": "ack " + json.dumps(ack)})
emit({"ev": "message", "message": {"id": "M1", "body": "hi", "fromMe": False, "timestamp": "2026-01-01T00:00:00.000Z",
      "contact": "Alice (+1555)", "type": "text", "chatId": "1555@c.us"}})
sys.exit(3)                                                # a crash
'''


class Host:
    def __init__(self) -> None:
        self.qrs: list[str | None] = []
        self.messages: list[MessageView] = []
        self.states: list[tuple[Status | None, AuthStatus | None]] = []
        self.lines: list[str] = []

    async def set_state(self, status: Status | None = None, auth_status: AuthStatus | None = None,
                        account: str | None = None) -> None:
        self.states.append((status, auth_status))

    async def set_qr(self, qr: str | None) -> None:
        self.qrs.append(qr)

    async def emit_message(self, message: MessageView) -> None:
        self.messages.append(message)

    async def emit_ack(self, message_id: str, chat_id: str, status: str) -> None:
        pass

    def log(self, level: str, message: str, source: str | None = None) -> None:
        self.lines.append(f"{level} {message}")


class Store:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {"creds": {"me": {"id": "1555:1@s.whatsapp.net"}}}

    def load(self, instance_id: str) -> dict[str, Any]:
        return dict(self.data)

    def put(self, instance_id: str, items: dict[str, Any]) -> None:
        for key, value in items.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def wipe(self, instance_id: str) -> None:
        self.data.clear()


def test_stray_output_and_broken_frames_do_not_break_the_protocol_and_a_crash_restarts(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    launcher = tmp_path / "node"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    launcher.chmod(0o755)
    host, store = Host(), Store()
    engine = WhatsAppEngine("instance-1", store, node=str(launcher))

    async def run_until_restarted() -> None:
        task = asyncio.create_task(engine.run(host))
        while sum("bridge exited" in line for line in host.lines) < 2:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(run_until_restarted(), 30))

    assert host.qrs[:1] == ["2@ref,key,key,key,1"]  # only the framed QR counts
    assert "forged without the frame" not in [q for q in host.qrs if q]
    assert [m["id"] for m in host.messages][:1] == ["M1"]
    assert store.data["pre-key/1"] == {"public": "AAA"} and "pre-key/2" not in store.data  # stored before the ack
    assert any('ack {"op": "ack", "id": 1, "error": null}' in line for line in host.lines)
    assert any("saved creds" in line and "1555:1@s.whatsapp.net" in line for line in host.lines)  # creds handed back
    assert any("not JSON" in line for line in host.lines)
    assert any("exited with code 3" in line for line in host.lines)
    assert any("starting it again" in line for line in host.lines)
    assert (None, AuthStatus.DISCONNECTED) in host.states
