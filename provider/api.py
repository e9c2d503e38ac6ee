"""The instance API, served on the instance's own port and guarded by the instance's key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web

from chalicelib.core.errors import ErrorCode, InstanceManagerError, error_body

from .engine import Engine, PairingEngine

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/api/health"}
MAX_BODY = 64 * 1024


def _error(code: ErrorCode, message: str) -> web.Response:
    exc = InstanceManagerError(code, message)
    return web.json_response(exc.body(), status=exc.http_status)


def presented_key(request: web.Request) -> str:
    key = request.headers.get("x-api-key", "")
    auth = request.headers.get("Authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


def make_app(
    *,
    api_key: str,
    engine: Engine,
    status: Callable[[], dict[str, Any]],
    count_use: Callable[[], None],
) -> web.Application:
    # Compared as digests in constant time: the length of the key leaks nothing either.
    key_sha256 = hashlib.sha256(api_key.encode()).hexdigest()

    @web.middleware
    async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            digest = hashlib.sha256(presented_key(request).encode()).hexdigest()
            if not hmac.compare_digest(digest, key_sha256):
                return _error(ErrorCode.UNAUTHORIZED,
                              "Missing or wrong instance API key: send it as x-api-key or Authorization: Bearer")
            count_use()
        try:
            return await handler(request)
        except InstanceManagerError as exc:
            return web.json_response(exc.body(), status=exc.http_status)
        except web.HTTPNotFound:
            return _error(ErrorCode.ROUTE_NOT_FOUND, f"No route {request.method} {request.path} on the instance API")
        except web.HTTPMethodNotAllowed:
            return _error(ErrorCode.METHOD_NOT_ALLOWED, f"Method {request.method} is not allowed on {request.path}")
        except web.HTTPRequestEntityTooLarge:
            return _error(ErrorCode.VALIDATION_ERROR, f"Request body is larger than {MAX_BODY} bytes")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def get_status(request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": status()})

    async def send_message(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                       "Request body is not valid JSON (or nested too deeply)") from None
        chat_id, text = _parse_message(body)
        message_id = await engine.send_text(chat_id, text)
        return web.json_response({"success": True, "data": {"id": message_id}})

    async def pairing_code(request: web.Request) -> web.Response:
        if "pairing_code" not in engine.capabilities:
            raise InstanceManagerError(ErrorCode.QR_NOT_AVAILABLE, f"The {engine.name} engine has no pairing codes")
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                       "Request body is not valid JSON (or nested too deeply)") from None
        phone = body.get("phone_number") if isinstance(body, dict) else None
        if not isinstance(phone, str):
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, "phone_number is required")
        code = await cast(PairingEngine, engine).pairing_code(phone)
        return web.json_response({"success": True, "data": {"code": code}})

    app = web.Application(middlewares=[errors_and_auth], client_max_size=MAX_BODY)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/v1/status", get_status)
    app.router.add_post("/api/v1/messages", send_message)
    app.router.add_post("/api/v1/pairing-code", pairing_code)
    return app


def _parse_message(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, 'Send a JSON object: {"chatId": "...", "text": "..."}')
    chat_id, text = body.get("chatId"), body.get("text")
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        chat_id = str(chat_id)
    if not isinstance(chat_id, str) or not chat_id.strip():
        raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                   "chatId is required: the chat to send to, as in the webhook's message.chatId")
    if not isinstance(text, str) or not text:
        raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, "text is required: a non-empty string")
    return chat_id.strip(), text


__all__ = ["error_body", "make_app"]
