"""The one error table: every error code with its HTTP status.

InstanceManagerError
 ├── raised by use cases and validation with a code from ErrorCode
 └── turned into {"success": false, "error": message, "code": code} by the HTTP edges
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
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


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INSTANCE_NOT_FOUND: 404,
    ErrorCode.ROUTE_NOT_FOUND: 404,
    ErrorCode.DELIVERY_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INSTANCE_LIMIT_REACHED: 409,
    ErrorCode.BOT_TOKEN_IN_USE: 409,
    ErrorCode.PORTS_EXHAUSTED: 409,
    ErrorCode.QR_NOT_AVAILABLE: 409,
    ErrorCode.INSTANCE_NOT_READY: 409,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.BACKEND_UNAVAILABLE: 503,
}


class InstanceManagerError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = HTTP_STATUS[code]

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"success": False, "error": message, "code": code.value}


def not_found(instance_id: str) -> InstanceManagerError:
    return InstanceManagerError(ErrorCode.INSTANCE_NOT_FOUND, f"Instance not found: {instance_id}")


def invalid(message: str) -> InstanceManagerError:
    return InstanceManagerError(ErrorCode.VALIDATION_ERROR, message)
