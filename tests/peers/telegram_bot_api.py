"""A fake Telegram Bot API server for tests and for trying things by hand.

It speaks the real wire format over real HTTP, so an unmodified client library can be pointed
at it, e.g. python-telegram-bot:

    ApplicationBuilder().token(T).base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")

Test controls live under ``/_fake/`` and mirror the Python helpers of ``FakeTelegramServer``:

    POST /_fake/bots                   {"token": "123:ABC", "username": "optional"}
    GET  /_fake/bots                   registered bots
    POST /_fake/bots/<token>/revoke    every later call answers 401
    POST /_fake/bots/<token>/fail      {"method": "getMe"|"*", "error_code": 429, "times": 1, "retry_after": 1}
                                       (409 on getUpdates: as a second poller gets it, see below)
    POST /_fake/bots/<token>/updates   {"chat_id": 1001, "text": "hi", "from": {...}, "chat_type": "private",
                                        "chat_title": null, "photo": false} -> {"update_id", "message_id"}
    GET  /_fake/bots/<token>/sent      messages the bot sent, in order
    GET  /_fake/bots/<token>/calls     Bot API method names called, in order

Two clients polling one bot: as Telegram does, each getUpdates ends the one still waiting before it
with 409 "Conflict: terminated by other getUpdates request; make sure that only one bot instance is
running", so two pollers fight on every poll.

Run by hand: ``python -m tests.peers.telegram_bot_api --port 8999 --bot 123456:ABC-def=my_bot``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import secrets
import signal
import struct
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import unquote

from aiohttp import ClientSession, ClientTimeout, web

Json = dict[str, Any]
Upload = tuple[str, str, bytes]  # (filename, content type, bytes) of one multipart file part
MethodHandler = Callable[["_Bot", Json, dict[str, Upload]], Awaitable[Any]]
T = TypeVar("T")

log = logging.getLogger("fake_telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FAILURE_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def make_png(width: int, height: int, rgb: tuple[int, int, int] = (0x2A, 0x9D, 0xF4)) -> bytes:
    # Built at import time so the fake has a real, decodable image without shipping a binary file.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + bytes(rgb) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SAMPLE_PNG = make_png(4, 4)


def _image_size(data: bytes) -> tuple[int, int]:
    # Only PNG is measured; PhotoSize just needs plausible ints, and tests rarely upload anything else.
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 1, 1


class UnknownBot(KeyError):
    """A helper or control call named a token that was never registered."""


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    file_path: str
    file_name: str
    mime_type: str
    data: bytes


@dataclass
class _Failure:
    method: str  # lower-cased method name, or "*"
    error_code: int
    times: int
    retry_after: int


@dataclass
class _Bot:
    token: str
    username: str
    revoked: bool = False
    pending: list[Json] = field(default_factory=list)  # unconfirmed updates, oldest first
    next_update_id: int = 1
    next_message_id: dict[int | str, int] = field(default_factory=dict)
    chats: dict[int | str, Json] = field(default_factory=dict)
    sent: list[Json] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    files: dict[str, _File] = field(default_factory=dict)  # by file_id
    paths: dict[str, _File] = field(default_factory=dict)  # by file_path
    poll_generation: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_error: tuple[int, str] | None = None
    webhook_task: asyncio.Task[None] | None = None

    @property
    def id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def user(self) -> Json:
        return {"id": self.id, "is_bot": True, "first_name": "Fake Bot", "username": self.username}

    def wake(self) -> None:
        # Swapping in a fresh Event wakes every current long-poller exactly once, with no lock needed.
        old, self.wakeup = self.wakeup, asyncio.Event()
        old.set()


def _int(params: Json, name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _flag(params: Json, name: str) -> bool:
    # Form bodies carry booleans as the JSON text "true"; JSON bodies carry real booleans.
    value = params.get(name, False)
    return value is True or str(value).lower() in ("true", "1")


def _chat_id(params: Json) -> int | str:
    value = params.get("chat_id")
    if value is None or value == "":
        raise _ApiError(400, "Bad Request: chat_id is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        if isinstance(value, str) and value.startswith("@"):
            return value
        raise _ApiError(400, "Bad Request: chat not found") from None


async def _read_params(request: web.Request) -> tuple[Json, dict[str, Upload]]:
    # Telegram merges query and body parameters, whatever the body encoding.
    params: Json = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.body_exists:
        return params, uploads
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                uploads[name] = (value.filename, value.content_type, value.file.read())
            else:
                params[name] = value.decode() if isinstance(value, bytes) else value
        return params, uploads
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        raise _ApiError(400, "Bad Request: can't parse JSON body") from None
    if not isinstance(body, dict):
        raise _ApiError(400, "Bad Request: JSON body must be an object")
    params.update(body)
    return params, uploads


class FakeTelegramServer:
    """The fake server plus thread-safe helpers; all state lives on the server's own event loop."""

    def __init__(self, tokens: Iterable[str] = (), *, usernames: Mapping[str, str] | None = None) -> None:
        self._bots: dict[str, _Bot] = {}
        for token in tokens:
            self._add_bot(token, (usernames or {}).get(token))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._closing = False
        self._root = ""
        self._methods: dict[str, MethodHandler] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "sendphoto": functools.partial(self._send_media, "photo"),
            "senddocument": functools.partial(self._send_media, "document"),
            "getfile": self._get_file,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._thread is not None:
            raise RuntimeError("FakeTelegramServer is already running")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._astart(host, port), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    @property
    def api_root(self) -> str:
        if not self._root:
            raise RuntimeError("FakeTelegramServer is not running")
        return self._root

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _astart(self, host: str, port: int) -> None:
        self._closing = False
        self._session = ClientSession()
        app = web.Application(client_max_size=60 * 2**20)  # Bot API uploads go up to 50 MB
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_get("/_fake/bots", self._control(lambda _t, _b: self._list_bots()))
        app.router.add_post("/_fake/bots", self._control(
            lambda _t, b: self._add_bot(b.get("token", ""), b.get("username"))))
        app.router.add_post("/_fake/bots/{token}/revoke", self._control(lambda t, _b: self._revoke(t)))
        app.router.add_post("/_fake/bots/{token}/fail", self._control(lambda t, b: self._fail(
            t, b.get("method", "*"), b.get("error_code", 500), b.get("times", 1), b.get("retry_after", 1))))
        app.router.add_post("/_fake/bots/{token}/updates", self._control(lambda t, b: self._push(
            t, b.get("chat_id"), b.get("text", ""), b.get("from"), b.get("chat_type", "private"),
            b.get("chat_title"), bool(b.get("photo")))))
        app.router.add_get("/_fake/bots/{token}/sent", self._control(lambda t, _b: self._sent(t)))
        app.router.add_get("/_fake/bots/{token}/calls", self._control(lambda t, _b: list(self._bot(t).calls)))
        # A short shutdown timeout: stop() must not hang on a client that keeps a connection open.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host
        self._root = f"http://{shown}:{bound_port}"

    async def _astop(self) -> None:
        self._closing = True
        tasks = [bot.webhook_task for bot in self._bots.values() if bot.webhook_task is not None]
        for bot in self._bots.values():
            bot.wake()  # long polls see _closing and answer at once instead of holding shutdown up
            bot.webhook_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._runner, self._session, self._root = None, None, ""

    def _on_loop(self, fn: Callable[[], T]) -> T:
        # Helpers are called from test threads; state is only ever touched on the server loop.
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)

    # ---- Python helpers (thread-safe) ------------------------------------------------------
    def add_bot(self, token: str, username: str | None = None) -> None:
        self._on_loop(lambda: self._add_bot(token, username))

    def revoke(self, token: str) -> None:
        self._on_loop(lambda: self._revoke(token))

    def fail(self, token: str, method: str, error_code: int, times: int = 1, retry_after: int = 1) -> None:
        self._on_loop(lambda: self._fail(token, method, error_code, times, retry_after))

    def push_message(
        self,
        token: str,
        chat_id: int,
        text: str = "",
        from_user: Json | None = None,
        *,
        chat_type: str = "private",
        chat_title: str | None = None,
        photo: bool = False,
    ) -> Json:
        return self._on_loop(lambda: self._push(token, chat_id, text, from_user, chat_type, chat_title, photo))

    def sent(self, token: str) -> list[Json]:
        return self._on_loop(lambda: self._sent(token))

    def calls(self, token: str) -> list[str]:
        return self._on_loop(lambda: list(self._bot(token).calls))

    # ---- state changes shared by helpers and the control API -------------------------------
    def _bot(self, token: str) -> _Bot:
        bot = self._bots.get(token)
        if bot is None:
            raise UnknownBot(token)
        return bot

    def _add_bot(self, token: str, username: str | None) -> Json:
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            raise ValueError(f"malformed bot token {token!r}: expected '<digits>:<secret>'")
        bot = self._bots.get(token)
        if bot is None:
            bot = self._bots[token] = _Bot(token, username or f"fake_bot_{token.split(':')[0]}")
        elif username:
            bot.username = username
        return {"token": token, "id": bot.id, "username": bot.username}

    def _list_bots(self) -> list[Json]:
        return [
            {"token": b.token, "username": b.username, "revoked": b.revoked,
             "pending_updates": len(b.pending), "webhook_url": b.webhook_url}
            for b in self._bots.values()
        ]

    def _revoke(self, token: str) -> Json:
        bot = self._bot(token)
        bot.revoked = True
        bot.wake()  # a parked long poll must learn about it too
        return {"token": token, "revoked": True}

    def _fail(self, token: str, method: str, error_code: int, times: int, retry_after: int) -> Json:
        bot = self._bot(token)
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a Bot API method name or '*'")
        if error_code not in FAILURE_DESCRIPTIONS:
            raise ValueError(f"error_code must be one of {sorted(FAILURE_DESCRIPTIONS)}")
        for name, value in (("times", times), ("retry_after", retry_after)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        bot.failures.append(_Failure(method.lower(), error_code, times, retry_after))
        return {"token": token, "method": method, "error_code": error_code, "times": times}

    def _push(
        self, token: str, chat_id: int | None, text: str, from_user: Json | None,
        chat_type: str, chat_title: str | None, photo: bool,
    ) -> Json:
        bot = self._bot(token)
        if chat_type not in ("private", "group", "supergroup"):
            raise ValueError("chat_type must be private, group or supergroup")
        if from_user is not None and (not isinstance(from_user, dict) or not isinstance(from_user.get("id"), int)):
            raise ValueError("from must be an object with an integer id")
        if chat_id is None and from_user is not None and chat_type == "private":
            chat_id = from_user["id"]
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise TypeError("chat_id must be an integer")
        if not isinstance(text, str) or (not text and not photo):
            raise ValueError("text must be a non-empty string unless photo is true")
        default_sender = {"id": chat_id if chat_type == "private" else 1, "first_name": "Test User"}
        sender: Json = {**default_sender, **(from_user or {}), "is_bot": False}
        if chat_type == "private":
            names: Json = {k: sender[k] for k in ("first_name", "last_name", "username") if k in sender}
            chat: Json = {"id": chat_id, "type": "private", **names}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or f"Test group {chat_id}"}
        bot.chats[chat_id] = chat
        message = self._new_message(bot, chat, sender)
        answer: Json = {}
        if photo:
            stored = self._store(bot, SAMPLE_PNG, "photo", "photo.png", "image/png")
            message["photo"] = [self._photo_size(stored)]
            answer["file_id"] = stored.file_id
            if text:
                message["caption"] = text
        else:
            message["text"] = text
        update = {"update_id": bot.next_update_id, "message": message}
        bot.next_update_id += 1
        bot.pending.append(update)
        bot.wake()
        self._kick_webhook(bot)
        return {"update_id": update["update_id"], "message_id": message["message_id"], **answer}

    def _sent(self, token: str) -> list[Json]:
        return [dict(entry) for entry in self._bot(token).sent]

    # ---- message and file plumbing ---------------------------------------------------------
    def _new_message(self, bot: _Bot, chat: Json, sender: Json) -> Json:
        # One counter per chat, shared by the user's and the bot's messages, as in a real chat.
        message_id = bot.next_message_id.get(chat["id"], 1)
        bot.next_message_id[chat["id"]] = message_id + 1
        return {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": sender}

    def _chat(self, bot: _Bot, chat_id: int | str) -> Json:
        if chat_id in bot.chats:
            return bot.chats[chat_id]
        # Lenient on purpose: real Telegram says "chat not found" until the user writes first.
        if isinstance(chat_id, str):
            return {"id": chat_id, "type": "channel", "username": chat_id.lstrip("@")}
        return {"id": chat_id, "type": "private" if chat_id > 0 else "group"}

    def _record(self, bot: _Bot, method: str, message: Json, params: Json, file: _File | None = None) -> Json:
        bot.sent.append({
            "method": method, "chat_id": message["chat"]["id"], "message_id": message["message_id"],
            "text": message.get("text"), "caption": message.get("caption"),
            "file_id": file.file_id if file else None, "params": dict(params),
        })
        return message

    def _store(self, bot: _Bot, data: bytes, kind: str, file_name: str, mime_type: str) -> _File:
        number = len(bot.files)
        extension = os.path.splitext(file_name)[1]
        stored = _File(
            file_id=f"{kind}-{bot.id}-{number}-{secrets.token_urlsafe(9)}",
            file_unique_id=secrets.token_hex(8),
            file_path=f"{kind}s/file_{number}{extension}",
            file_name=file_name, mime_type=mime_type, data=data,
        )
        bot.files[stored.file_id] = bot.paths[stored.file_path] = stored
        return stored

    def _input_file(self, bot: _Bot, params: Json, uploads: dict[str, Upload], name: str) -> _File:
        value = params.get(name)
        # Media groups reference their parts as "attach://<part name>"; single sends use the param name.
        part = value[len("attach://"):] if isinstance(value, str) and value.startswith("attach://") else name
        if part in uploads:
            file_name, mime_type, data = uploads[part]
            return self._store(bot, data, name, file_name or name, mime_type or "application/octet-stream")
        if isinstance(value, str) and value in bot.files:
            return bot.files[value]  # re-sending by file_id
        if value:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        raise _ApiError(400, f"Bad Request: there is no {name} in the request")

    @staticmethod
    def _photo_size(stored: _File) -> Json:
        width, height = _image_size(stored.data)
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "width": width, "height": height, "file_size": len(stored.data)}

    # ---- webhook delivery ------------------------------------------------------------------
    def _restart_webhook(self, bot: _Bot) -> None:
        if bot.webhook_task is not None:
            bot.webhook_task.cancel()
            bot.webhook_task = None
        self._kick_webhook(bot)

    def _kick_webhook(self, bot: _Bot) -> None:
        if not bot.webhook_url or not bot.pending or self._closing:
            return
        if bot.webhook_task is None or bot.webhook_task.done():
            bot.webhook_task = asyncio.get_running_loop().create_task(self._deliver(bot))

    async def _deliver(self, bot: _Bot) -> None:
        # Like Telegram: one update at a time, in order, retried with backoff until answered with 2xx.
        delay = 0.1
        while bot.webhook_url and bot.pending and not self._closing:
            update = bot.pending[0]
            error = await self._post_update(bot.webhook_url, bot.webhook_secret, update)
            if error is None:
                if bot.pending and bot.pending[0] is update:
                    bot.pending.pop(0)
                delay = 0.1
            else:
                bot.webhook_error = (int(time.time()), error)
                log.info("webhook delivery for bot %s failed: %s", bot.id, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _post_update(self, url: str, secret: str | None, update: Json) -> str | None:
        assert self._session is not None
        headers = {SECRET_HEADER: secret} if secret else {}
        try:
            async with self._session.post(url, json=update, headers=headers, timeout=ClientTimeout(total=10)) as r:
                return None if 200 <= r.status < 300 else f"Wrong response from the webhook: {r.status} {r.reason}"
        except Exception as exc:
            return f"Connection failed: {type(exc).__name__}: {exc}"

    # ---- HTTP handlers ---------------------------------------------------------------------
    async def _handle_api(self, request: web.Request) -> web.Response:
        token = unquote(request.match_info["token"])
        method = request.match_info["method"]
        if not _TOKEN_RE.match(token):
            return _ApiError(404, "Not Found").response()
        bot = self._bots.get(token)
        if bot is None:
            return _ApiError(401, "Unauthorized").response()
        bot.calls.append(method)
        try:
            if bot.revoked:
                raise _ApiError(401, "Unauthorized")
            params, uploads = await _read_params(request)
            failure = self._take_failure(bot, method)
            if failure is not None:
                raise failure
            handler = self._methods.get(method.lower())
            if handler is None:
                raise _ApiError(404, "Not Found: method not found")
            result = await handler(bot, params, uploads)
        except _ApiError as err:
            log.info("bot %s %s -> %s %s", bot.id, method, err.code, err.description)
            return err.response()
        log.info("bot %s %s -> ok", bot.id, method)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        # PTB percent-encodes the ':' of the token in download URLs; unquote covers both spellings.
        bot = self._bots.get(unquote(request.match_info["token"]))
        if bot is None or bot.revoked:
            return _ApiError(401, "Unauthorized").response()
        stored = bot.paths.get(unquote(request.match_info["path"]))
        if stored is None:
            return _ApiError(404, "Not Found").response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    def _control(self, action: Callable[[str, Json], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                # Parsed by hand so `curl -d` works without a Content-Type header.
                body = json.loads(await request.text() or "{}")
                if not isinstance(body, dict):
                    raise TypeError("body must be a JSON object")
                result = action(unquote(request.match_info.get("token", "")), body)
            except UnknownBot as exc:
                return web.json_response({"error": f"unknown bot token {exc.args[0]!r}"}, status=404)
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(result)

        return handler

    def _take_failure(self, bot: _Bot, method: str) -> _ApiError | None:
        for failure in bot.failures:
            if failure.method in ("*", method.lower()):
                failure.times -= 1
                bot.failures = [f for f in bot.failures if f.times > 0]
                description = FAILURE_DESCRIPTIONS[failure.error_code].format(retry_after=failure.retry_after)
                retry_after = failure.retry_after if failure.error_code == 429 else None
                return _ApiError(failure.error_code, description, retry_after)
        return None

    # ---- Bot API methods -------------------------------------------------------------------
    async def _get_me(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> Json:
        return {**bot.user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    async def _get_updates(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> list[Json]:
        if bot.webhook_url:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first")
        offset, limit = _int(params, "offset", 0), min(max(_int(params, "limit", 100), 1), 100)
        timeout = max(_int(params, "timeout", 0), 0)
        if offset > 0:  # confirms everything before it
            bot.pending = [u for u in bot.pending if u["update_id"] >= offset]
        elif offset < 0:  # "-N": keep only the last N, forget the rest
            bot.pending = bot.pending[offset:]
        # Only the newest poller may wait: bumping the generation sends older ones a 409.
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.wake()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if bot.revoked:
                raise _ApiError(401, "Unauthorized")
            if generation != bot.poll_generation:
                raise _ApiError(409, FAILURE_DESCRIPTIONS[409])
            if bot.webhook_url:
                raise _ApiError(409, "Conflict: terminated by setWebhook request")
            remaining = deadline - asyncio.get_running_loop().time()
            if bot.pending or self._closing or remaining <= 0:
                return bot.pending[:limit]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.wakeup.wait(), remaining)

    async def _send_message(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> Json:
        chat_id = _chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        message = self._new_message(bot, self._chat(bot, chat_id), bot.user())
        message["text"] = text
        return self._record(bot, "sendMessage", message, params)

    async def _send_media(self, kind: str, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> Json:
        chat_id = _chat_id(params)
        stored = self._input_file(bot, params, uploads, kind)
        message = self._new_message(bot, self._chat(bot, chat_id), bot.user())
        if kind == "photo":
            message["photo"] = [self._photo_size(stored)]
        else:
            message[kind] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                             "file_name": stored.file_name, "mime_type": stored.mime_type,
                             "file_size": len(stored.data)}
        if params.get("caption"):
            message["caption"] = str(params["caption"])
        return self._record(bot, f"send{kind.capitalize()}", message, params, stored)

    async def _get_file(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> Json:
        stored = bot.files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    async def _set_webhook(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token") or None
        if url and not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: bad webhook: invalid URL")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        if _flag(params, "drop_pending_updates"):
            bot.pending.clear()
        bot.webhook_url, bot.webhook_secret, bot.webhook_error = url, secret and str(secret), None
        bot.wake()  # a parked getUpdates must now end with 409
        self._restart_webhook(bot)
        return True

    async def _delete_webhook(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> bool:
        if _flag(params, "drop_pending_updates"):
            bot.pending.clear()
        bot.webhook_url, bot.webhook_secret, bot.webhook_error = "", None, None
        self._restart_webhook(bot)
        return True

    async def _get_webhook_info(self, bot: _Bot, params: Json, uploads: dict[str, Upload]) -> Json:
        info: Json = {"url": bot.webhook_url, "has_custom_certificate": False,
                      "pending_update_count": len(bot.pending)}
        if bot.webhook_url:
            info["max_connections"] = 40
        if bot.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = bot.webhook_error
        return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.peers.telegram_bot_api",
                                     description="Fake Telegram Bot API server for local testing.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999, help="0 picks a free port")
    parser.add_argument("--bot", action="append", default=[], metavar="TOKEN[=USERNAME]",
                        help="register a bot token (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    specs = [spec.partition("=") for spec in args.bot]
    tokens = [token for token, _, _ in specs]
    try:
        server = FakeTelegramServer(tokens, usernames={t: name for t, _, name in specs if name})
    except ValueError as exc:
        parser.error(str(exc))
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    server.start(args.host, args.port)
    root = server.api_root
    example = tokens[0] if tokens else "123456:ABC-def"
    print(f"fake Telegram Bot API listening on {root}", flush=True)
    if not tokens:
        print(f"register a bot: curl -s {root}/_fake/bots -d '{{\"token\": \"{example}\"}}'", flush=True)
    print(f"push a message: curl -s {root}/_fake/bots/{example}/updates "
          f"-d '{{\"chat_id\": 1001, \"text\": \"hi\"}}'", flush=True)
    try:
        while not stopping.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
