"""The Telegram engine: python-telegram-bot against Telegram's Bot API (or any server at
TELEGRAM_API_ROOT: a self-hosted Bot API server, or the fake one in tests).

It polls getUpdates itself rather than through the library's Updater, to own what a 409 Conflict
does. Telegram answers 409 when another client polls the same bot (a second instance, the bot run
on someone's machine) or a webhook is set; two pollers take the updates from each other on every
poll. So on a Conflict the engine stops polling and reports `error` with the reason, then polls
again after slow, growing delays (CONFLICT_RETRY_DELAYS: the other client may have been stopped,
and each retry takes the updates from it once more); a poll that succeeds brings `client_ready`
back. After the last delay it gives up until the instance is started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram import Message, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import AuthStatus, MessageView, Status, iso

from ..engine import EngineHost

SOURCE = "telegram-provider"
MAX_TEXT = 4096
_MEDIA_TYPES = ("photo", "video", "document", "audio", "voice", "sticker", "animation", "video_note",
                "location", "contact", "poll")
# After the 1st, 2nd... Conflict in a row: about 15 minutes in all, then the engine gives up.
CONFLICT_RETRY_DELAYS = (30.0, 60.0, 120.0, 240.0, 480.0)
# Conflicts further apart than this are a new episode: the retries start over.
CONFLICT_MEMORY_S = 3600.0
MAX_POLL_BACKOFF_S = 30.0


class _ObservedRequest(HTTPXRequest):
    """Sees every Bot API answer: network failures mean disconnected, an answer means connected
    again (but for 401 and 409, which the polling loop handles as what they are)."""

    def __init__(self, engine: TelegramEngine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._engine = engine

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except NetworkError:
            self._engine.connection_changed(ok=False)
            raise
        if code < 500 and code not in (401, 409):
            self._engine.connection_changed(ok=True)
        return code, payload


class TelegramEngine:
    name = "telegram"
    capabilities = frozenset({"send_text", "receive"})

    def __init__(self, token: str, api_root: str, getme_timeout: float = 10.0, poll_timeout: int = 10,
                 conflict_retry_delays: tuple[float, ...] = CONFLICT_RETRY_DELAYS,
                 conflict_memory: float = CONFLICT_MEMORY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token
        self._root = api_root.rstrip("/")
        self._getme_timeout = getme_timeout
        self._poll_timeout = poll_timeout
        self._conflict_delays = conflict_retry_delays
        self._conflict_memory = conflict_memory
        self._clock = clock
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._host: EngineHost | None = None
        self._ready = False
        self._connected = True
        self._signals: set[asyncio.Task[None]] = set()
        self._offset = 0  # the next update to ask for; those before it were handed to the application
        self._asked = 0  # the offset of the last getUpdates sent: what Telegram knows to be handled
        self._conflicts = 0
        self._last_conflict: float | None = None
        self._conflicted = False

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        return (
            ApplicationBuilder()
            .updater(None)
            .token(self._token)
            .base_url(f"{self._root}/bot")
            .base_file_url(f"{self._root}/file/bot")
            .request(_ObservedRequest(self, connect_timeout=5.0, read_timeout=10.0))
            .get_updates_request(_ObservedRequest(self, connect_timeout=5.0, read_timeout=self._poll_timeout + 10.0))
            .build()
        )

    async def run(self, host: EngineHost) -> None:
        self._host = host
        app = self._app = self._build()
        app.add_handler(TypeHandler(Update, self._on_update))
        await host.set_state(status=Status.START, auth_status=AuthStatus.PENDING)
        if not await self._log_in(app, host):
            return
        account = f"@{app.bot.username}"
        await host.set_state(status=Status.AUTHENTICATED, auth_status=AuthStatus.AUTHENTICATED, account=account)
        host.log("info", f"Bot token accepted: logged in as {account}", SOURCE)
        await app.start()
        try:
            self._ready = True
            await host.set_state(status=Status.CLIENT_READY)
            host.log("info", "Polling for updates: client ready", SOURCE)
            await self._poll(app, host)
        finally:
            await self._shut_down(app)

    async def _poll(self, app: Application[Any, Any, Any, Any, Any, Any], host: EngineHost) -> None:
        """Until cancelled, or until polling cannot go on (a revoked token, a Conflict that lasts)."""
        webhook_cleared, backoff = False, 1.0
        while True:
            try:
                if not webhook_cleared:  # getUpdates and a webhook exclude each other
                    await app.bot.delete_webhook()
                    webhook_cleared = True
                self._asked = self._offset
                updates = await app.bot.get_updates(offset=self._offset, timeout=self._poll_timeout,
                                                    allowed_updates=Update.ALL_TYPES)
            except Conflict as exc:
                delay = await self._on_conflict(host, exc)
                if delay is None:
                    return
                await asyncio.sleep(delay)
                continue
            except InvalidToken:
                host.log("error", "Telegram rejected the bot token (revoked?): stopped polling; "
                         "give the instance a valid token and start it again", SOURCE)
                await host.set_state(status=Status.ERROR, auth_status=AuthStatus.FAILED)
                return
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except TelegramError as exc:  # the network, or a 5xx: the library's polling retried the same way
                host.log("warn", f"Polling error: {type(exc).__name__}: {exc}; retrying in {backoff:.0f} s", SOURCE)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_POLL_BACKOFF_S)
                continue
            backoff = 1.0
            if self._conflicted:
                await self._conflict_over(host)
            for update in updates:
                await app.update_queue.put(update)
            if updates:
                self._offset = updates[-1].update_id + 1

    async def _on_conflict(self, host: EngineHost, exc: Conflict) -> float | None:
        """Reports the Conflict; the delay before polling again, or None to give up."""
        now = self._clock()
        if self._last_conflict is None or now - self._last_conflict > self._conflict_memory:
            self._conflicts = 0
        self._last_conflict, self._conflicts, self._conflicted = now, self._conflicts + 1, True
        reason = (f"Telegram answered 409 Conflict ({exc.message}): another client receives this bot's updates "
                  "(another instance with the same bot token, the bot running elsewhere, or a webhook). "
                  "One bot token can serve one poller")
        tries = len(self._conflict_delays)
        await host.set_state(status=Status.ERROR)
        if self._conflicts > tries:
            host.log("error", f"{reason}. Still so after {tries} retries: stopped polling; stop the other client, "
                     "then start this instance again (POST .../start)", SOURCE)
            return None
        delay = self._conflict_delays[self._conflicts - 1]
        host.log("error", f"{reason}. Not polling, not to take the updates back; polling again in {delay:.0f} s "
                 f"(retry {self._conflicts} of {tries})", SOURCE)
        return delay

    async def _conflict_over(self, host: EngineHost) -> None:
        self._conflicted = False
        host.log("info", "Polling works again (the other client stopped): client ready", SOURCE)
        await host.set_state(status=Status.CLIENT_READY, auth_status=AuthStatus.AUTHENTICATED)

    async def _log_in(self, app: Application[Any, Any, Any, Any, Any, Any], host: EngineHost) -> bool:
        """getMe under our own timeout; a rejected token ends in `failed`, with no crash loop."""
        delay = 1.0
        while True:
            try:
                await asyncio.wait_for(app.initialize(), self._getme_timeout)
                return True
            except InvalidToken as exc:
                host.log("error", f"Telegram rejected the bot token: {exc}. Create the instance with a valid token", SOURCE)
                await host.set_state(status=Status.ERROR, auth_status=AuthStatus.FAILED)
                return False
            except (TimeoutError, NetworkError, TimedOut, TelegramError) as exc:
                reason = str(exc) or type(exc).__name__
                host.log("warn", f"Telegram Bot API at {self._root} not reachable ({reason}); retrying in {delay:.0f} s", SOURCE)
                await host.set_state(status=Status.ERROR, auth_status=AuthStatus.PENDING)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _shut_down(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self._ready = False
        if self._offset > self._asked and not self._conflicted:
            # Updates handed over but not yet confirmed: confirmed now, or the next start gets them again.
            # Not while in conflict: this call would take the polls from the other client once more.
            try:
                await asyncio.wait_for(app.bot.get_updates(offset=self._offset, timeout=0, limit=1), 5.0)
            except Exception as exc:  # shutting down anyway
                if self._host:
                    self._host.log("debug", f"Could not confirm the last updates: {type(exc).__name__}: {exc}", SOURCE)
        for step in (app.stop if app.running else None, app.shutdown):
            if step is None:
                continue
            try:
                await step()
            except Exception as exc:  # shutting down anyway; a revoked token makes updater.stop raise
                if self._host:
                    self._host.log("debug", f"While stopping: {type(exc).__name__}: {exc}", SOURCE)

    async def send_text(self, chat_id: str, text: str) -> str:
        if not self._ready or self._app is None:
            raise InstanceManagerError(ErrorCode.INSTANCE_NOT_READY, "The Telegram client is not ready: see auth-status and logs")
        if len(text) > MAX_TEXT:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, f"text is longer than Telegram's {MAX_TEXT} characters")
        try:
            sent = await self._app.bot.send_message(chat_id=chat_id, text=text)
        except (BadRequest, Forbidden) as exc:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, f"Telegram refused the message: {exc}") from exc
        except RetryAfter as exc:
            raise InstanceManagerError(ErrorCode.PROVIDER_ERROR, f"Telegram rate limit: retry after {exc.retry_after} s") from exc
        except TelegramError as exc:
            raise InstanceManagerError(ErrorCode.PROVIDER_ERROR, f"Telegram error: {exc}") from exc
        if self._host is not None:  # accepted by Telegram's servers: the only ack the Bot API gives
            self._signal(self._host.emit_ack(message_id(sent), str(sent.chat.id), "server"))
        return message_id(sent)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or self._host is None:
            return
        bot_id = self._app.bot.id if self._app else None
        await self._host.emit_message(normalize(message, bot_id))

    def connection_changed(self, ok: bool) -> None:
        if not self._ready or ok == self._connected or self._host is None:
            return
        self._connected = ok
        host = self._host
        if ok:
            host.log("info", "Connection to the Telegram Bot API is back", SOURCE)
            # In a Conflict the status stays `error` until a poll succeeds (the polling loop says so).
            status = None if self._conflicted else Status.CLIENT_READY
            self._signal(host.set_state(status=status, auth_status=AuthStatus.AUTHENTICATED))
        else:
            host.log("warn", "Lost the connection to the Telegram Bot API; the library retries", SOURCE)
            self._signal(host.set_state(status=Status.AUTHENTICATED, auth_status=AuthStatus.DISCONNECTED))

    def _signal(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


def message_id(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"


def normalize(message: Message, bot_id: int | None) -> MessageView:
    kind = "text" if message.text is not None else next((t for t in _MEDIA_TYPES if getattr(message, t, None)), "other")
    body = message.text or message.caption or ""
    if kind == "location" and message.location:
        body = body or f"{message.location.latitude},{message.location.longitude}"
    user = message.from_user
    if user is not None:
        contact = f"{user.full_name} (@{user.username})" if user.username else f"{user.full_name} ({user.id})"
    else:
        contact = message.chat.title or str(message.chat.id)
    view = MessageView(
        id=message_id(message),
        body=body,
        fromMe=bool(user and bot_id is not None and user.id == bot_id),
        timestamp=iso(message.date) or "",
        contact=contact,
        type=kind,
        chatId=str(message.chat.id),
    )
    return view
