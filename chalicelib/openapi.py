"""The manager API's OpenAPI 3.1 document, built from the one error table and the route list below,
and a self-contained page to browse it (no CDN: the page must work where only this service is reachable).

Standard library, `chalicelib.core` and `chalicelib.health` only, so building the document never imports chalice or boto3.
`tests/sdk/test_openapi.py` checks ROUTES against the Chalice app's real routes."""

from __future__ import annotations

import html
import re
import typing
from dataclasses import dataclass
from typing import Any

from .core.errors import HTTP_STATUS, ErrorCode
from .core.events import DEFAULT_EVENTS, EVENT_TYPES
from .core.types import INSTANCE_TYPES, AuthStatus, DesiredState, LogLine, MessageEvent, MessageView, Provider, Status
from .core.validation import _BOT_TOKEN, _COMPANY_ID, DEFAULT_LOG_TAIL, MAX_HEADERS, MAX_LOG_TAIL
from .health import DEADLINE_SECONDS

E = ErrorCode
INSTANCE = "/api/v1/instances/{instanceId}"
JSON = "application/json"
HTML = "text/html"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    response: str  # a schema in components, or "" for a page or a file (of the types in `media`)
    errors: tuple[ErrorCode, ...] = ()
    request: str = ""
    query: tuple[dict[str, Any], ...] = ()
    open: bool = False  # served without the admin key
    description: str = ""
    media: tuple[str, ...] = (HTML,)  # what a response without a schema is


_COMPANY_QUERY = {"name": "company_id", "in": "query", "required": False, "schema": {"type": "string"},
                  "description": "Only this company's instances (through a DynamoDB index)."}
_TAIL_QUERY = {"name": "tail", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LOG_TAIL, "default": DEFAULT_LOG_TAIL},
               "description": f"How many of the last lines to return (1-{MAX_LOG_TAIL})."}
_FOUND = (E.INSTANCE_NOT_FOUND,)
# As chalicelib/webhook_service.py has them (a test compares): not imported, it is no core module.
DELIVERY_STATES = ("pending", "failed", "delivered", "dead")
MAX_DELIVERIES, DEFAULT_DELIVERIES = 100, 50
_DELIVERY_QUERY = (
    {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": list(DELIVERY_STATES)}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES, "default": DEFAULT_DELIVERIES}},
)
DELIVERY = INSTANCE + "/deliveries/{deliveryId}"
_DEEP_QUERY = {"name": "deep", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
               "description": "Probe every backend too (needs the admin key)."}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/health", "health", "Health check; with deep=true, of every backend too", "Monitoring",
              "Health", (E.VALIDATION_ERROR, E.UNAUTHORIZED, E.BACKEND_UNAVAILABLE), query=(_DEEP_QUERY,), open=True,
              description="Open and cheap: no backend is called. With `deep=true` (which needs the admin key: 401 "
                          "without) DynamoDB, SQS, CloudWatch Logs, KMS (or the key file) and the launcher (ECS or "
                          f"the local launcher) are probed concurrently, within {DEADLINE_SECONDS:g} s: 200 with "
                          "`backends` when every one is `ok`, else 503 BACKEND_UNAVAILABLE with `status` "
                          "`unavailable` and the same `backends`."),
    Operation("POST", "/api/v1/instances", "createInstance", "Create a WhatsApp or Telegram instance", "Instances",
              "CreateInstanceResponse", (E.VALIDATION_ERROR, E.INSTANCE_LIMIT_REACHED, E.PORTS_EXHAUSTED),
              request="CreateInstanceRequest",
              description="Answers without waiting for the login or for the task to be running: follow it with "
                          "auth-status. At most MAX_INSTANCES_PER_COMPANY (10 by default) instances per company."),
    Operation("GET", "/api/v1/instances", "listInstances", "List instances (all, or one company's)", "Instances",
              "InstanceList", query=(_COMPANY_QUERY,)),
    Operation("GET", INSTANCE, "getInstance", "Get one instance", "Instances", "InstanceResponse", _FOUND),
    Operation("DELETE", INSTANCE, "deleteInstance", "Delete an instance and stop its task", "Instances",
              "ActionResult", _FOUND),
    Operation("GET", INSTANCE + "/current-api-key", "getInstanceApiKey", "The instance API's key and its usage",
              "Instances", "ApiKeyResponse", _FOUND),
    Operation("POST", INSTANCE + "/start", "startInstance", "Start (desired state running)", "Lifecycle",
              "ActionResult", _FOUND),
    Operation("POST", INSTANCE + "/stop", "stopInstance", "Stop (desired state stopped)", "Lifecycle",
              "ActionResult", _FOUND),
    Operation("POST", INSTANCE + "/restart", "restartInstance", "Restart the instance's task", "Lifecycle",
              "ActionResult", _FOUND),
    Operation("GET", INSTANCE + "/qr", "getQRCode", "The pending WhatsApp QR code", "WhatsApp login",
              "QRCodeResponse", (*_FOUND, E.QR_NOT_AVAILABLE),
              description="409 QR_NOT_AVAILABLE for a Telegram instance, and for a WhatsApp instance with no QR "
                          "pending (still starting, already logged in, or in error: POST start for a new one)."),
    Operation("POST", INSTANCE + "/pairing-code", "requestPairingCode", "Log WhatsApp in with a pairing code",
              "WhatsApp login", "PairingCodeResponse",
              (E.VALIDATION_ERROR, *_FOUND, E.QR_NOT_AVAILABLE, E.INSTANCE_NOT_READY, E.PROVIDER_ERROR),
              request="PairingCodeRequest",
              description="The code is typed on the phone (Linked devices → Link with phone number)."),
    Operation("POST", INSTANCE + "/messages", "sendMessage", "Send a text through the instance", "Messages",
              "SendMessageResponse",
              (E.VALIDATION_ERROR, *_FOUND, E.INSTANCE_NOT_READY, E.PROVIDER_ERROR), request="SendMessageRequest",
              description="Forwarded to the instance's own API (POST /api/v1/messages on its port), which is "
                          "reachable only from the service in AWS. Counts as a use of the instance key."),
    Operation("GET", INSTANCE + "/auth-status", "getAuthStatus", "Authentication status", "Instances",
              "AuthStatusResponse", _FOUND),
    Operation("GET", INSTANCE + "/logs", "getInstanceLogs", "The instance's last log lines", "Logs",
              "LogsResponse", (E.VALIDATION_ERROR, *_FOUND), query=(_TAIL_QUERY,)),
    Operation("GET", INSTANCE + "/webhook", "getWebhook", "The webhook's configuration", "Webhooks",
              "WebhookSettingsResponse", _FOUND),
    Operation("PATCH", INSTANCE + "/webhook", "updateWebhook", "Change the webhook (the fields sent replace the current "
              "ones; headers as a whole)", "Webhooks", "WebhookSettingsResponse", (E.VALIDATION_ERROR, *_FOUND),
              request="WebhookUpdate"),
    Operation("POST", INSTANCE + "/webhook/rotate-secret", "rotateWebhookSecret", "A new signing secret", "Webhooks",
              "WebhookSecretResponse", _FOUND,
              description="The previous secret keeps signing too until previous_secret_valid_until."),
    Operation("POST", INSTANCE + "/webhook/test", "sendTestEvent", "Send a webhook.test event", "Webhooks",
              "DeliveryIdResponse", (E.VALIDATION_ERROR, *_FOUND),
              description="400 VALIDATION_ERROR when the instance has no webhook. Follow it in the delivery log."),
    Operation("GET", INSTANCE + "/deliveries", "listDeliveries", "The delivery log, newest first", "Webhooks",
              "DeliveryList", (E.VALIDATION_ERROR, *_FOUND), query=_DELIVERY_QUERY),
    Operation("GET", DELIVERY, "getDelivery", "One delivery, with its payload", "Webhooks", "DeliveryResponse",
              (E.DELIVERY_NOT_FOUND,)),
    Operation("POST", DELIVERY + "/retry", "retryDelivery", "Queue a delivery that has not succeeded again", "Webhooks",
              "DeliveryRetryResponse", (E.VALIDATION_ERROR, *_FOUND, E.DELIVERY_NOT_FOUND),
              description="400 VALIDATION_ERROR for a delivery that already succeeded."),
    Operation("GET", "/qr-page/{instanceId}", "qrPage", "A page that shows the current QR to a person",
              "WhatsApp login", "", open=True,
              description="HTML. Its script (/static/qr.js) fetches the QR, with the admin key read from the "
                          "URL's fragment (#key=...), which browsers never send to a server."),
    Operation("GET", "/openapi.json", "getOpenApiDocument", "This document", "Monitoring", "OpenApiDocument",
              open=True),
    Operation("GET", "/docs", "docsPage", "A page to browse this document", "Monitoring", "", open=True,
              description="HTML with its script and style under /static (no CDN). Add #key=ADMIN_KEY if "
                          "/openapi.json needs the admin key."),
    Operation("GET", "/static/{name}", "getStaticFile", "A script or stylesheet of the HTML pages", "Monitoring", "",
              (E.ROUTE_NOT_FOUND,), open=True, media=("text/javascript", "text/css"),
              description="qr.js, qr.css, docs.js or docs.css; any other name is 404 ROUTE_NOT_FOUND."),
)

ROUTES: list[tuple[str, str]] = [(op.method, op.path) for op in OPERATIONS]


def _whole(pattern: re.Pattern[str]) -> str:
    """A JSON Schema pattern matches anywhere: anchor the one validation matches whole (fullmatch)."""
    return f"^(?:{pattern.pattern})$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties) if required is None else required,
            "properties": properties, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _enum(values: Any, description: str) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values], "description": description}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return _obj({"success": {"const": True}, "data": data})


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}
_PY_TYPES = {str: _STR, bool: _BOOL, int: _INT}


def _from_typed_dict(shape: Any) -> dict[str, Any]:
    """The schema of a TypedDict from chalicelib.core.types: one definition of each wire shape."""
    fields = typing.get_type_hints(shape)
    schema = _obj({name: _PY_TYPES.get(kind) or _ref(kind.__name__) for name, kind in fields.items()})
    if shape.__doc__:
        schema["description"] = " ".join(shape.__doc__.split())
    return schema


def _schemas() -> dict[str, Any]:
    webhook_fields = {
        "url": {"type": "string", "format": "uri", "maxLength": 2048, "description": "http:// or https://"},
        "headers": {"type": "object", "additionalProperties": _STR, "maxProperties": MAX_HEADERS,
                    "description": "Sent with every delivery; stored encrypted, never listed back."},
        "enabled": {"type": "boolean", "default": True},
        "events": {"type": "array", "minItems": 1, "default": list(DEFAULT_EVENTS),
                   "items": {"type": "string", "enum": [e for e in EVENT_TYPES if e != "webhook.test"]},
                   "description": "The event types to deliver"},
    }
    common = {
        "company_id": {"type": "string", "pattern": _whole(_COMPANY_ID)},
        "type_instance": {"type": "array", "minItems": 1, "default": list(INSTANCE_TYPES),
                          "items": {"type": "string", "enum": list(INSTANCE_TYPES)}},
        "api_webhook_schema": _ref("WebhookConfig"),
    }
    delivery = _obj({
        "id": _STR, "event": {**_STR, "description": "The event type"},
        "state": {"type": "string", "enum": list(DELIVERY_STATES)}, "attempts": _INT,
        "last_status": _nullable(_INT), "last_error": _nullable(_STR), "next_attempt_at": _nullable(_TIME),
        "created_at": _TIME, "updated_at": _TIME,
    })
    instance = _obj({
        "id": _STR, "company_id": _STR, "provider": _ref("Provider"),
        "type_instance": {"type": "array", "items": _STR}, "status": _ref("Status"),
        "auth_status": _ref("AuthStatus"), "desired_state": _ref("DesiredState"),
        "ports": {"type": "object", "additionalProperties": _INT, "description": 'Keyed by type: {"api": 8080}'},
        "account": _nullable(_STR), "host": _nullable({**_STR, "description": "Where the instance API listens"}),
        "webhook": _nullable(_ref("WebhookView")), "created_at": _TIME, "updated_at": _TIME,
    })
    schemas: dict[str, Any] = {
        "Error": _obj({"success": {"const": False}, "error": {**_STR, "description": "What to fix"},
                       "code": _ref("ErrorCode")}),
        "ErrorCode": {"type": "string", "enum": [c.value for c in ErrorCode], "x-http-status": _error_table(),
                      "description": "The one error table: code → HTTP status (x-http-status)."},
        "Provider": _enum(Provider, "whatsappweb or telegram"),
        "Status": _enum(Status, "The instance's observed status"),
        "AuthStatus": _enum(AuthStatus, "The login's status"),
        "DesiredState": _enum(DesiredState, "What start and stop asked for"),
        "WebhookConfig": _obj(webhook_fields, ["url"], additionalProperties=False),
        "WebhookUpdate": _obj(webhook_fields, [], additionalProperties=False,
                              description="url is required when the instance has no webhook yet"),
        "WebhookSettingsResponse": _envelope(_obj({"webhook": _nullable(_ref("WebhookView")),
                                                   "previous_secret_valid_until": _nullable(_TIME)})),
        "WebhookSecretResponse": _envelope(_obj({
            "webhook_secret": {**_STR, "description": "whsec_<base64>: verifies the webhook-signature header"},
            "previous_secret_valid_until": _nullable(_TIME)})),
        "DeliveryIdResponse": _envelope(_obj({"delivery_id": _STR})),
        "Delivery": delivery,
        "DeliveryList": _obj({"success": {"const": True}, "data": {"type": "array", "items": _ref("Delivery")}}),
        "DeliveryResponse": _envelope({**delivery, "required": [*delivery["required"], "payload"],
                                       "properties": {**delivery["properties"],
                                                      "payload": {"type": "object", "description": "What was POSTed"}}}),
        "DeliveryRetryResponse": _envelope(_obj({"delivery_id": _STR, "state": {"const": "pending"}})),
        "WebhookView": _obj({"url": _STR, "enabled": _BOOL,
                             "headers": {"type": "array", "items": _STR, "description": "Header names only"},
                             "events": {"type": "array", "items": _STR}}),
        "CreateInstanceRequest": {"oneOf": [_ref("CreateWhatsAppInstanceRequest"), _ref("CreateTelegramInstanceRequest")],
                                  "discriminator": {"propertyName": "provider"}},
        "CreateWhatsAppInstanceRequest": _obj({
            **common, "provider": {"const": Provider.WHATSAPPWEB.value},
            "config": {"type": "object", "maxProperties": 0}}, ["company_id", "provider"], additionalProperties=False),
        "CreateTelegramInstanceRequest": _obj({
            **common, "provider": {"const": Provider.TELEGRAM.value},
            "config": _obj({"bot_token": {"type": "string", "pattern": _whole(_BOT_TOKEN),
                                          "description": "The token from @BotFather"}},
                           additionalProperties=False)},
            ["company_id", "provider", "config"], additionalProperties=False),
        "CreateInstanceResponse": _obj({
            "success": {"const": True}, "instance_id": _STR, "message": _STR,
            "process_result": _obj({"success": _BOOL, "details": _obj({
                "ports": {"type": "object", "additionalProperties": _INT},
                "api_key": {**_STR, "description": "The instance API's key"},
                "webhook_secret": _nullable({**_STR, "description": "Signs the webhooks (webhook-signature)"}),
            })})}),
        "Instance": instance,
        "InstanceList": _obj({"success": {"const": True}, "data": {"type": "array", "items": _ref("Instance")}}),
        "InstanceResponse": _envelope(_ref("Instance")),
        "ApiKeyResponse": _envelope(_obj({"api_key": _STR, "generated_at": _TIME, "last_use": _nullable(_TIME),
                                          "usage_count": _INT})),
        "ActionResult": _obj({"success": {"const": True}, "message": _STR}),
        "QRCodeResponse": _envelope(_obj({
            "qr_url": {**_STR, "description": "data:image/png;base64,..."},
            "url": {**_STR, "description": "A page that shows the current QR"},
            "qr": {**_STR, "description": "The raw QR string"}, "updated_at": _nullable(_TIME)})),
        "PairingCodeRequest": _obj({"phone_number": {**_STR, "description": "International format, 7-15 digits",
                                                     "examples": ["+15551234567"]}}, additionalProperties=False),
        "PairingCodeResponse": _envelope(_obj({"pairing_code": _STR, "phone_number": _STR})),
        "SendMessageRequest": _obj({"chatId": {**_STR, "description": "message.chatId of a webhook, e.g. 1001, "
                                                                      "15551234567@c.us or 1203...@g.us"},
                                    "text": _STR}, additionalProperties=False),
        "SendMessageResponse": _envelope(_obj({"id": {**_STR, "description": "The sent message's id"}})),
        "AuthStatusResponse": _envelope(_obj({"status": _ref("AuthStatus"), "authenticated": _BOOL,
                                              "account": _nullable(_STR), "instance_status": _ref("Status")})),
        "LogLine": _from_typed_dict(LogLine),
        "LogsResponse": _envelope(_obj({"logs": {"type": "array", "items": _ref("LogLine")},
                                        "total_lines": _INT, "tail": _INT})),
        "Health": _obj({"status": {"const": "healthy"}, "timestamp": _TIME,
                        "backends": {"type": "object", "additionalProperties": _ref("BackendStatus"),
                                     "description": "deep=true only: dynamodb, sqs, logs, secrets, launcher"}},
                       ["status", "timestamp"]),
        "BackendStatus": _obj({"name": {**_STR, "description": "e.g. DynamoDB, KMS, the local launcher"},
                               "status": {"type": "string", "enum": ["ok", "unavailable"]},
                               "latency_ms": _INT, "error": {**_STR, "description": "Why, when unavailable"}},
                              ["name", "status", "latency_ms"]),
        "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]},
        "MessageView": _from_typed_dict(MessageView),
        "MessageEvent": _from_typed_dict(MessageEvent),
        "InstanceEvent": _obj({"instance_id": _STR, "provider": _ref("Provider"),
                               "event": {"type": "string", "enum": [e for e in EVENT_TYPES if e != "message"]},
                               "data": {"type": "object"}}),
    }
    return schemas


def _error_table() -> dict[str, int]:
    return {code.value: HTTP_STATUS[code] for code in ErrorCode}


def _error_response(codes: list[ErrorCode]) -> dict[str, Any]:
    schema = _obj({"success": {"const": False}, "error": _STR,
                   "code": {"type": "string", "enum": [c.value for c in codes]}})
    return {"description": " or ".join(c.value for c in codes),
            "content": {JSON: {"schema": schema, "example": {"success": False, "error": "…", "code": codes[0].value}}}}


def _operation(op: Operation) -> dict[str, Any]:
    errors = list(op.errors)
    if not op.open:
        errors.append(E.UNAUTHORIZED)
    if op.response:
        errors.append(E.INTERNAL_ERROR)
    responses: dict[str, Any] = {"200": (
        {"description": "OK", "content": {JSON: {"schema": _ref(op.response)}}} if op.response
        else {"description": "An HTML page" if op.media == (HTML,) else "A file",
              "content": {media: {"schema": _STR} for media in op.media}})}
    for status in sorted({HTTP_STATUS[c] for c in errors}):
        responses[str(status)] = _error_response([c for c in errors if HTTP_STATUS[c] == status])
    spec: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
                            "responses": responses}
    if op.description:
        spec["description"] = op.description
    parameters = [{"name": name, "in": "path", "required": True, "schema": _STR} for name in re.findall(r"{(\w+)}", op.path)]
    if parameters or op.query:
        spec["parameters"] = [*parameters, *op.query]
    if op.request:
        spec["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(op.request)}}}
    if op.open:
        spec["security"] = []
    return spec


_DESCRIPTION = """Creates and manages WhatsApp and Telegram instances. Every error answers
`{"success": false, "error": "<what to fix>", "code": "<CODE>"}` with the HTTP status of its code:

| code | HTTP |
|---|---|
""" + "".join(f"| `{code.value}` | {HTTP_STATUS[code]} |\n" for code in ErrorCode) + """
Unknown paths answer 404 ROUTE_NOT_FOUND, unknown methods 405 METHOD_NOT_ALLOWED. Every route but the open ones
needs the admin key (x-api-key or Authorization: Bearer) when the service has one (ADMIN_API_KEY)."""


_SIGNATURE_HEADERS = [
    {"name": name, "in": "header", "required": True, "schema": _STR, "description": description}
    for name, description in [
        ("webhook-id", "The event's id: the same on every retry of one event"),
        ("webhook-timestamp", "Unix seconds"),
        ("webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'> with the "
                              "instance's webhook_secret; space-separated while a rotated secret still signs"),
    ]
]


def _webhook(summary: str, schema: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary + ". POSTed to api_webhook_schema.url with its headers.",
        "parameters": _SIGNATURE_HEADERS,
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref(schema)}}},
        "responses": {"200": {"description": "Any 2xx: delivered. 408, 429 and 5xx are retried with backoff; "
                                             "other answers go to the dead-letter queue."}},
    }}


def document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with `server_url` (e.g. http://localhost:3000) as its one server."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Instance Manager API", "version": "1.0.0", "description": _DESCRIPTION},
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"adminKey": []}, {"bearerAuth": []}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "webhooks": {
            "message": _webhook("An incoming message (event type message): the seed's payload", "MessageEvent"),
            "event": _webhook("Any other subscribed event (instance.status, qr, message.ack) and webhook.test",
                              "InstanceEvent"),
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "adminKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The same admin key"},
            },
        },
    }


def docs_page(openapi_url: str) -> str:
    """A page that fetches the document and lists its operations and schemas. Its script and style are
    files (chalicelib/static/docs.*, linked relative to /docs so a stage prefix holds): the page's
    Content-Security-Policy allows no inline script. The URL reaches the script as an escaped attribute."""
    return _PAGE.replace("__TITLE__", html.escape("Instance Manager API")).replace(
        "__URL__", html.escape(openapi_url, quote=True))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="referrer" content="no-referrer">
<link rel="stylesheet" href="static/docs.css">
<script src="static/docs.js" defer></script>
</head><body data-openapi-url="__URL__">
<h1 id="title">__TITLE__</h1><p id="state">Loading the OpenAPI document…</p>
<div id="intro"></div><h2>Operations</h2><div id="ops"></div><h2>Schemas</h2><div id="schemas"></div>
</body></html>"""
