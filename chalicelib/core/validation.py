"""Parsing of untrusted input into domain values. Every failure names the field and what to send."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid
from .events import DEFAULT_EVENTS, EVENT_TYPES
from .signing import RESERVED_HEADERS
from .types import INSTANCE_TYPES, Provider, WebhookConfig
from .urls import parse_http_url

MAX_LOG_TAIL = 1000
DEFAULT_LOG_TAIL = 100
MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096
# Framing and routing headers: a configured one would contradict the request the client builds.
# (Content-Type stays allowed: the seed's own example sets it, to the value the service sends anyway.)
_TRANSPORT_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "te", "trailer", "upgrade",
                      "keep-alive", "expect", "proxy-authorization", "proxy-connection"}
# Matched with fullmatch: "$" would let a trailing newline through, and "\d" matches non-ASCII digits.
_COMPANY_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,100}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
_CREATE_FIELDS = {"company_id", "provider", "type_instance", "config", "api_webhook_schema"}
_CONFIG_FIELDS = {Provider.TELEGRAM: {"bot_token"}, Provider.WHATSAPPWEB: set[str]()}


@dataclass(frozen=True)
class CreateRequest:
    company_id: str
    provider: Provider
    type_instance: tuple[str, ...]
    secrets: dict[str, str] = field(default_factory=dict)
    webhook: WebhookConfig | None = None


def parse_json_object(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None or raw in (b"", ""):
        raise invalid("Request body is empty: send a JSON object")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"Request body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise invalid("Request body is nested too deeply: send a flat JSON object") from None
    if not isinstance(value, dict):
        raise invalid("Request body must be a JSON object")
    return value


def parse_create_request(body: dict[str, Any]) -> CreateRequest:
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise invalid(f"Unknown field(s) {unknown}: allowed are {sorted(_CREATE_FIELDS)}")
    company_id = body.get("company_id")
    if not isinstance(company_id, str) or not _COMPANY_ID.fullmatch(company_id):
        raise invalid("company_id is required: 1-128 characters of letters, digits and ._:@-")
    provider = _parse_provider(body.get("provider"))
    return CreateRequest(
        company_id=company_id,
        provider=provider,
        type_instance=_parse_types(body.get("type_instance", ["api"])),
        secrets=_parse_config(provider, body.get("config")),
        webhook=parse_webhook(body.get("api_webhook_schema")),
    )


def _parse_provider(value: Any) -> Provider:
    try:
        return Provider(value)
    except ValueError:
        allowed = [p.value for p in Provider]
        raise invalid(f"provider must be one of {allowed}, got {value!r}") from None


def _parse_types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid(f"type_instance must be a non-empty list of strings from {list(INSTANCE_TYPES)}")
    unknown = [v for v in value if v not in INSTANCE_TYPES]
    if unknown:
        raise invalid(f"Unknown type_instance {unknown}: allowed are {list(INSTANCE_TYPES)}")
    return tuple(dict.fromkeys(value))


def _parse_config(provider: Provider, value: Any) -> dict[str, str]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise invalid("config must be a JSON object")
    allowed = _CONFIG_FIELDS[provider]
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise invalid(f"Unknown config field(s) {unknown} for provider {provider.value}: allowed are {sorted(allowed)}")
    if provider is Provider.TELEGRAM:
        token = value.get("bot_token")
        if not isinstance(token, str) or not token:
            raise invalid("config.bot_token is required for provider telegram (the token from @BotFather)")
        if not _BOT_TOKEN.fullmatch(token):
            raise invalid("config.bot_token is malformed: expected '<digits>:<letters, digits, _ or ->'")
        return {"bot_token": token}
    return {}


def parse_webhook(value: Any) -> WebhookConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("api_webhook_schema must be a JSON object with url, headers and enabled")
    unknown = sorted(set(value) - {"url", "headers", "enabled", "events"})
    if unknown:
        raise invalid(f"Unknown api_webhook_schema field(s) {unknown}: allowed are ['enabled', 'events', 'headers', 'url']")
    url = str(parse_http_url(value.get("url"), "api_webhook_schema.url"))
    headers = parse_headers(value.get("headers", {}), "api_webhook_schema.headers")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise invalid("api_webhook_schema.enabled must be true or false")
    return WebhookConfig(url=url, headers=dict(headers), enabled=enabled, events=parse_events(value.get("events")))


def parse_webhook_update(body: dict[str, Any], current: WebhookConfig | None) -> WebhookConfig:
    """PATCH semantics: the fields sent replace the current ones (headers as a whole)."""
    merged: dict[str, Any] = {}
    if current is not None:
        merged = {"url": current.url, "headers": dict(current.headers), "enabled": current.enabled,
                  "events": list(current.events)}
    elif "url" not in body:
        raise invalid("This instance has no webhook yet: send at least its url")
    merged.update(body)
    webhook = parse_webhook(merged)
    assert webhook is not None
    return webhook


def parse_events(value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_EVENTS
    subscribable = [e for e in EVENT_TYPES if e != "webhook.test"]
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise invalid(f"api_webhook_schema.events must be a non-empty list from {subscribable}")
    unknown = [e for e in value if e not in subscribable]
    if unknown:
        raise invalid(f"Unknown webhook event(s) {unknown}: allowed are {subscribable}")
    return tuple(dict.fromkeys(value))


def parse_headers(value: Any, field: str) -> dict[str, str]:
    """Header names as RFC 9110 tokens; values printable ASCII, so every HTTP client can send them as given."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid(f"{field} must be an object of string values")
    if len(value) > MAX_HEADERS:
        raise invalid(f"{field} may hold at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, header_value in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise invalid(f"{field}: {name!r} is not a valid HTTP header name (1-128 letters, digits and "
                          "!#$%&'*+-.^_`|~; no spaces, colons or line breaks)")
        lowered = name.lower()
        if lowered in seen:
            raise invalid(f"{field}: {name!r} is given twice (header names are case-insensitive)")
        seen.add(lowered)
        if lowered in RESERVED_HEADERS:
            raise invalid(f"{field}: {name!r} is set by the service (webhook signatures) and cannot be replaced")
        if lowered in _TRANSPORT_HEADERS:
            raise invalid(f"{field}: {name!r} is set by the HTTP client for each request and cannot be configured")
        bad = next((c for c in header_value if not (c == "\t" or " " <= c <= "~")), None)
        if bad is not None:
            raise invalid(f"{field}: the value of {name!r} contains {bad!r} (U+{ord(bad):04X}): header values must "
                          "be printable ASCII without line breaks; encode other text (e.g. percent-encoding)")
        if len(header_value) > MAX_HEADER_VALUE:
            raise invalid(f"{field}: the value of {name!r} is longer than {MAX_HEADER_VALUE} characters")
    return dict(value)


def parse_tail(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LOG_TAIL
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise invalid(f"tail must be a positive integer (1-{MAX_LOG_TAIL}), got {raw!r}")
    tail = int(raw)
    if tail > MAX_LOG_TAIL:
        raise invalid(f"tail must be at most {MAX_LOG_TAIL}, got {tail}")
    return tail
