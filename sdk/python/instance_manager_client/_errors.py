"""The one exception of the client.

InstanceManagerError (status, code, message, body)
 ├── status > 0: the API answered with an error: code is the API's (INSTANCE_NOT_FOUND, ...)
 └── status == 0: no usable answer: code is NETWORK_ERROR or TIMEOUT, or VALIDATION_ERROR for an
     argument the client refuses before sending (an empty instance id)
An answer that is not the API's JSON has code INVALID_RESPONSE and the HTTP status it came with.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # The API's error table (GET /openapi.json: components.schemas.ErrorCode).
    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    INSTANCE_NOT_FOUND = "INSTANCE_NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INSTANCE_LIMIT_REACHED = "INSTANCE_LIMIT_REACHED"
    BOT_TOKEN_IN_USE = "BOT_TOKEN_IN_USE"
    PORTS_EXHAUSTED = "PORTS_EXHAUSTED"
    QR_NOT_AVAILABLE = "QR_NOT_AVAILABLE"
    INSTANCE_NOT_READY = "INSTANCE_NOT_READY"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    # The client's own, with status 0 (INVALID_RESPONSE: the status received).
    NETWORK_ERROR = "NETWORK_ERROR"
    TIMEOUT = "TIMEOUT"
    INVALID_RESPONSE = "INVALID_RESPONSE"


HTTP_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "INSTANCE_NOT_FOUND": 404,
    "ROUTE_NOT_FOUND": 404,
    "DELIVERY_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "INSTANCE_LIMIT_REACHED": 409,
    "BOT_TOKEN_IN_USE": 409,
    "PORTS_EXHAUSTED": 409,
    "QR_NOT_AVAILABLE": 409,
    "INSTANCE_NOT_READY": 409,
    "PROVIDER_ERROR": 502,
    "INTERNAL_ERROR": 500,
    "BACKEND_UNAVAILABLE": 503,
}
"""The API's codes and their HTTP statuses."""


class InstanceManagerError(Exception):
    def __init__(self, message: str, *, status: int, code: str, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = str(code)  # a plain string: codes this client does not know yet still arrive
        self.body = body

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no answer"
        return f"{self.code} ({where}): {self.message}"

    def __repr__(self) -> str:
        return f"InstanceManagerError(status={self.status}, code={self.code!r}, message={self.message!r})"
