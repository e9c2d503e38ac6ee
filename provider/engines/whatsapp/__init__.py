"""The WhatsApp engine: Baileys (Node) as a child process behind a line-based JSON bridge.

Python owns everything durable: the login state is loaded from the AuthStore (DynamoDB) at start,
every change the child reports is stored before the child may go on (it waits for our ack), and a
child that dies is started again with what was stored, so no restart ever needs a new QR."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import AuthStatus, MessageView, Status
from chalicelib.ports import AuthStore

from ...engine import EngineHost

SOURCE = "whatsapp-provider"
BRIDGE = Path(__file__).resolve().parent / "bridge" / "bridge.mjs"
FRAME = b"@@IM@@ "
SEND_TIMEOUT_S = 30.0
MAX_LINE = 16 * 1024 * 1024  # a message event with a large caption or key set still fits


class WhatsAppEngine:
    name = "whatsappweb"
    capabilities = frozenset({"send_text", "receive", "qr_login", "pairing_code"})

    def __init__(self, instance_id: str, store: AuthStore, ws_url: str = "", root_public_key_hex: str = "",
                 node: str | None = None, qr_timeout_ms: int | None = None) -> None:
        self._instance_id = instance_id
        self._store = store
        self._ws_url = ws_url
        self._root_key = root_public_key_hex
        self._node = node or shutil.which("node") or "node"
        self._qr_timeout_ms = qr_timeout_ms
        self._child: asyncio.subprocess.Process | None = None
        self._host: EngineHost | None = None
        self._ready = False
        self._ids = itertools.count(1)
        self._results: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------
    async def run(self, host: EngineHost) -> None:
        self._host = host
        if self._root_key:
            host.log("warn", "WHATSAPP_ROOT_PUBLIC_KEY is set: trusting a certificate root that is not WhatsApp's. "
                     "This is for test servers only", SOURCE)
        await host.set_state(status=Status.START, auth_status=AuthStatus.PENDING)
        delay = 1.0
        try:
            while True:
                outcome = await self._run_child(host)
                if outcome == "final":
                    return
                host.log("warn", f"The WhatsApp bridge stopped unexpectedly; starting it again in {delay:.0f} s", SOURCE)
                await host.set_state(auth_status=AuthStatus.DISCONNECTED)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        finally:
            await self._stop_child()

    async def _run_child(self, host: EngineHost) -> str:
        saved = await asyncio.to_thread(self._store.load, self._instance_id)
        creds = saved.pop("creds", None)
        keys: dict[str, dict[str, Any]] = {}
        for item_key, value in saved.items():
            kind, _, key_id = item_key.partition("/")
            keys.setdefault(kind, {})[key_id] = value
        host.log("info", "Connecting to WhatsApp with saved credentials" if creds else "Connecting to WhatsApp for a new login",
                 SOURCE)
        self._child = await asyncio.create_subprocess_exec(
            self._node, str(BRIDGE), cwd=BRIDGE.parent, limit=MAX_LINE,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_OPTIONS": ""},
        )
        stderr_task = asyncio.create_task(self._drain_stderr(self._child))
        await self._command({"op": "start", "creds": creds, "keys": keys, "wsUrl": self._ws_url,
                             "rootPublicKeyHex": self._root_key, "qrTimeoutMs": self._qr_timeout_ms})
        try:
            return await self._read_events(self._child)
        finally:
            self._ready = False
            stderr_task.cancel()
            for future in self._results.values():
                if not future.done():
                    future.set_exception(InstanceManagerError(ErrorCode.PROVIDER_ERROR, "The WhatsApp bridge restarted"))
            self._results.clear()

    async def _read_events(self, child: asyncio.subprocess.Process) -> str:
        assert child.stdout is not None
        while True:
            line = await child.stdout.readline()
            if not line:
                code = await child.wait()
                self._log("error", f"The WhatsApp bridge exited with code {code}")
                return "crashed"
            if not line.startswith(FRAME):
                self._log("debug", line.decode(errors="replace").strip()[:500])
                continue
            try:
                event = json.loads(line[len(FRAME):])
            except ValueError:
                self._log("warn", "The WhatsApp bridge sent a line that is not JSON; ignored")
                continue
            if await self._on_event(event) == "final":
                return "final"

    async def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is None or child.returncode is not None:
            return
        try:
            await self._command({"op": "stop"}, child)
            await asyncio.wait_for(child.wait(), 5)
        except (TimeoutError, ConnectionError, RuntimeError):
            child.kill()
            await child.wait()

    # --- events from the bridge ----------------------------------------------------------------
    async def _on_event(self, event: dict[str, Any]) -> str | None:
        host = self._host
        assert host is not None
        kind = event.get("ev")
        if kind == "qr":
            await host.set_qr(str(event["qr"]))
            await host.set_state(status=Status.QR_READY, auth_status=AuthStatus.QR_READY)
            self._log("info", "QR code ready: scan it with WhatsApp (Linked devices)")
        elif kind == "creds":
            await self._persist(event, {"creds": event["creds"]})
        elif kind == "keys":
            items = {f"{kind_}/{key_id}": value for kind_, values in event["data"].items() for key_id, value in values.items()}
            await self._persist(event, items)
        elif kind == "connection":
            return await self._on_connection(event)
        elif kind == "message":
            await host.emit_message(MessageView(**event["message"]))  # type: ignore[typeddict-item]
        elif kind == "ack":
            await host.emit_ack(str(event["id"]), str(event["chatId"]), str(event["status"]))
        elif kind == "result":
            future = self._results.pop(int(event["id"]), None)
            if future is not None and not future.done():
                future.set_result(event)
        elif kind == "log":
            self._log(str(event.get("level", "info")), str(event.get("message", "")))
        return None

    async def _on_connection(self, event: dict[str, Any]) -> str | None:
        host = self._host
        assert host is not None
        state = event.get("state")
        if state == "open":
            self._ready = True
            await host.set_qr(None)
            await host.set_state(status=Status.CLIENT_READY, auth_status=AuthStatus.AUTHENTICATED,
                                 account=event.get("account"))
            self._log("info", f"Connected to WhatsApp as {event.get('account')}: client ready")
            return None
        if state != "close":
            return None
        self._ready = False
        code, reason = event.get("code"), event.get("reason", "")
        if event.get("loggedOut"):
            await asyncio.to_thread(self._store.wipe, self._instance_id)
            await host.set_qr(None)
            await host.set_state(status=Status.ERROR, auth_status=AuthStatus.FAILED, account="")
            self._log("error", f"Logged out by WhatsApp ({code}: {reason}); credentials wiped. Start the instance for a new QR")
            return "final"
        if event.get("qrExpired"):
            await host.set_qr(None)
            await host.set_state(status=Status.ERROR, auth_status=AuthStatus.PENDING)
            self._log("warn", "The QR code expired without a scan. Start the instance again for a new one")
            return "final"
        if event.get("final"):
            return "final"
        if code == 515:
            self._log("info", "Paired: WhatsApp asked for a restart; reconnecting with the new credentials")
            await host.set_state(status=Status.AUTHENTICATED, auth_status=AuthStatus.AUTHENTICATED)
            return None
        self._log("warn", f"Connection to WhatsApp lost ({code}: {reason}); reconnecting in {event.get('retryInMs', 0)} ms")
        await host.set_state(status=Status.AUTHENTICATED, auth_status=AuthStatus.DISCONNECTED)
        return None

    async def _persist(self, event: dict[str, Any], items: dict[str, Any]) -> None:
        error = None
        try:
            await asyncio.to_thread(self._store.put, self._instance_id, items)
        except Exception as exc:  # the child must know: its write did not happen
            error = f"{type(exc).__name__}: {exc}"
            self._log("error", f"Could not store WhatsApp credentials: {error}")
        await self._command({"op": "ack", "id": event["id"], "error": error})

    # --- commands to the bridge ----------------------------------------------------------------
    async def _command(self, command: dict[str, Any], child: asyncio.subprocess.Process | None = None) -> None:
        child = child or self._child
        if child is None or child.stdin is None:
            raise InstanceManagerError(ErrorCode.INSTANCE_NOT_READY, "The WhatsApp bridge is not running")
        async with self._write_lock:
            child.stdin.write(json.dumps(command).encode() + b"\n")
            await child.stdin.drain()

    async def _request(self, command: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._results[request_id] = future
        await self._command({**command, "id": request_id})
        try:
            result = await asyncio.wait_for(future, SEND_TIMEOUT_S)
        except TimeoutError:
            self._results.pop(request_id, None)
            raise InstanceManagerError(ErrorCode.PROVIDER_ERROR, "WhatsApp did not answer in time") from None
        if not result.get("ok"):
            raise InstanceManagerError(ErrorCode.PROVIDER_ERROR, f"WhatsApp refused: {result.get('error')}")
        return result

    async def send_text(self, chat_id: str, text: str) -> str:
        if not self._ready:
            raise InstanceManagerError(ErrorCode.INSTANCE_NOT_READY, "The WhatsApp client is not ready: see auth-status")
        to = normalize_chat_id(chat_id)
        return str((await self._request({"op": "send", "to": to, "text": text}))["messageId"])

    async def pairing_code(self, phone: str) -> str:
        digits = "".join(ch for ch in phone if "0" <= ch <= "9")
        if not 7 <= len(digits) <= 15:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                       "phone_number must be the account's number in international format, 7-15 digits")
        if self._ready or self._child is None:
            raise InstanceManagerError(ErrorCode.QR_NOT_AVAILABLE, "No login is pending: the instance is not waiting for one")
        return str((await self._request({"op": "pairing_code", "phone": digits}))["code"])

    # --- helpers -----------------------------------------------------------------------------
    def _log(self, level: str, message: str) -> None:
        if self._host is not None:
            self._host.log(level, message, SOURCE)

    async def _drain_stderr(self, child: asyncio.subprocess.Process) -> None:
        assert child.stderr is not None
        async for line in child.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._log("debug", text[:500])


def normalize_chat_id(chat_id: str) -> str:
    """`<digits>`, `<digits>@c.us` or `+<digits>` for people, `<id>@g.us` for groups."""
    value = chat_id.strip().removeprefix("+")
    if value.endswith("@g.us") or value.endswith("@s.whatsapp.net") or value.endswith("@lid"):
        return value
    digits = value.removesuffix("@c.us")
    if not (digits.isascii() and digits.isdigit()) or not 5 <= len(digits) <= 15:
        raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                   "chatId must be <digits>, <digits>@c.us (a person) or <id>@g.us (a group)")
    return digits
