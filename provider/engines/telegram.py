"""The Telegram engine: python-telegram-bot against Telegram's Bot API (or any server at
TELEGRAM_API_ROOT: a self-hosted Bot API server, or the fake one in tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Message, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import AuthStatus, MessageView, Status, iso

from ..engine import EngineHost

SOURCE = "telegram-provider"
MAX_TEXT = 4096
_MEDIA_TYPES = ("photo", "video", "document", "audio", "voice", "sticker", "animation", "video_note",
                "location", "contact", "poll")


class _ObservedRequest(HTTPXRequest):
    """Sees every Bot API answer: a 401 after login means the token was revoked, which the
    library's polling loop only logs (see the notes); network failures mean disconnected."""

    def __init__(self, engine: TelegramEngine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._engine = engine

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except NetworkError:
            self._engine.connection_changed(ok=False)
            raise
        if code == 401:
            self._engine.token_rejected()
        elif code < 500:
            self._engine.connection_changed(ok=True)
        return code, payload


class TelegramEngine:
    name = "telegram"
    capabilities = frozenset({"send_text", "receive"})

    def __init__(self, token: str, api_root: str, getme_timeout: float = 10.0, poll_timeout: int = 10) -> None:
        self._token = token
        self._root = api_root.rstrip("/")
        self._getme_timeout = getme_timeout
        self._poll_timeout = poll_timeout
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._host: EngineHost | None = None
        self._ready = False
        self._connected = True
        self._failed = asyncio.Event()
        self._signals: set[asyncio.Task[None]] = set()

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        return (
            ApplicationBuilder()
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
        assert app.updater is not None
        await app.updater.start_polling(timeout=self._poll_timeout, error_callback=self._on_poll_error,
                                        allowed_updates=Update.ALL_TYPES)
        self._ready = True
        await host.set_state(status=Status.CLIENT_READY)
        host.log("info", "Polling for updates: client ready", SOURCE)
        try:
            await self._failed.wait()
            self._ready = False
            host.log("error", "Telegram rejected the bot token (revoked?): stopped polling; "
                     "give the instance a valid token and start it again", SOURCE)
            await host.set_state(status=Status.ERROR, auth_status=AuthStatus.FAILED)
        finally:
            await self._shut_down(app)

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
        for step in (app.updater.stop if app.updater and app.updater.running else None,
                     app.stop if app.running else None, app.shutdown):
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

    def _on_poll_error(self, error: TelegramError) -> None:
        if self._host:
            self._host.log("warn", f"Polling error: {type(error).__name__}: {error}", SOURCE)

    def token_rejected(self) -> None:
        if self._ready:
            self._failed.set()

    def connection_changed(self, ok: bool) -> None:
        if not self._ready or ok == self._connected or self._host is None:
            return
        self._connected = ok
        host = self._host
        if ok:
            host.log("info", "Connection to the Telegram Bot API is back", SOURCE)
            self._signal(host.set_state(status=Status.CLIENT_READY, auth_status=AuthStatus.AUTHENTICATED))
        else:
            host.log("warn", "Lost the connection to the Telegram Bot API; the library retries", SOURCE)
            self._signal(host.set_state(status=Status.AUTHENTICATED, auth_status=AuthStatus.DISCONNECTED))

    def _signal(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)


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
