"""The API's wire shapes, as the OpenAPI document (GET /openapi.json) describes them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Provider = Literal["whatsappweb", "telegram"]
Status = Literal["start", "qr_ready", "authenticated", "client_ready", "stopped", "error"]
AuthStatus = Literal["pending", "qr_ready", "authenticated", "failed", "disconnected"]
DesiredState = Literal["running", "stopped"]
DeliveryState = Literal["pending", "failed", "delivered", "dead"]


class Webhook(TypedDict):
    """`api_webhook_schema` of a create request."""

    url: str
    headers: NotRequired[dict[str, str]]
    enabled: NotRequired[bool]
    events: NotRequired[list[str]]
    """Event types to deliver; default ["message"]."""


class WebhookUpdate(TypedDict, total=False):
    """PATCH .../webhook: the fields sent replace the current ones (headers as a whole)."""

    url: str
    headers: dict[str, str]
    enabled: bool
    events: list[str]


class TelegramConfig(TypedDict):
    bot_token: str


class CreateInstanceRequest(TypedDict):
    company_id: str
    provider: Provider
    type_instance: NotRequired[list[str]]
    config: NotRequired[TelegramConfig | dict[str, str]]
    api_webhook_schema: NotRequired[Webhook]


class ProcessDetails(TypedDict):
    ports: dict[str, int]
    api_key: str
    webhook_secret: str | None
    """Verifies the webhook-signature header of the webhooks (Standard Webhooks)."""


class ProcessResult(TypedDict):
    success: bool
    details: ProcessDetails


class CreateInstanceResponse(TypedDict):
    success: bool
    instance_id: str
    message: str
    process_result: ProcessResult


class WebhookView(TypedDict):
    url: str
    enabled: bool
    headers: list[str]
    """Header names only: their values are secrets."""
    events: list[str]


class Instance(TypedDict):
    id: str
    company_id: str
    provider: Provider
    type_instance: list[str]
    status: Status
    auth_status: AuthStatus
    desired_state: DesiredState
    ports: dict[str, int]
    account: str | None
    host: str | None
    webhook: WebhookView | None
    created_at: str
    updated_at: str


class ApiKeyInfo(TypedDict):
    api_key: str
    generated_at: str
    last_use: str | None
    usage_count: int


class QRCode(TypedDict):
    qr_url: str
    """data:image/png;base64,..."""
    url: str
    """A page that shows the current QR to a person."""
    qr: str
    updated_at: str | None


class PairingCode(TypedDict):
    pairing_code: str
    phone_number: str


class SentMessage(TypedDict):
    id: str


class AuthStatusInfo(TypedDict):
    status: AuthStatus
    authenticated: bool
    account: str | None
    instance_status: Status


class LogLine(TypedDict):
    timestamp: str
    level: str
    message: str
    source: str


class InstanceLogs(TypedDict):
    logs: list[LogLine]
    total_lines: int
    tail: int


class ActionResult(TypedDict):
    success: bool
    message: str


class WebhookSettings(TypedDict):
    webhook: WebhookView | None
    previous_secret_valid_until: str | None


class WebhookSecret(TypedDict):
    webhook_secret: str
    previous_secret_valid_until: str | None


class DeliveryId(TypedDict):
    delivery_id: str


class Delivery(TypedDict):
    id: str
    event: str
    state: DeliveryState
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str


class DeliveryDetail(Delivery):
    payload: dict[str, Any]
    """What was POSTed."""


class DeliveryRetry(TypedDict):
    delivery_id: str
    state: DeliveryState


class Health(TypedDict):
    status: str
    timestamp: str


OpenApiDocument = dict[str, Any]
