"""Parsing of untrusted input: what is accepted, and that every refusal names the field."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import Provider, WebhookConfig
from chalicelib.core.validation import (
    DEFAULT_LOG_TAIL,
    MAX_HEADERS,
    MAX_LOG_TAIL,
    parse_create_request,
    parse_json_object,
    parse_tail,
    parse_webhook,
)

TOKEN = "123456789:AABBCCDDEEFFgghhiijjkkll"


def refused(parse: Any, value: Any) -> str:
    """The message of the VALIDATION_ERROR that parsing `value` raises."""
    with pytest.raises(InstanceManagerError) as caught:
        parse(value)
    assert caught.value.code is ErrorCode.VALIDATION_ERROR
    return caught.value.message


# --- JSON bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"a": 1}', '{"a": 1}', ' {"a": 1}\n', '{"a": 1}'.encode("utf-16")])
def test_json_objects_parse_from_bytes_or_text(raw):
    assert parse_json_object(raw) == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "words"),
    [(None, "empty"), (b"", "empty"), ("", "empty"), (b"{", "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
     (b"[]", "JSON object"), (b"null", "JSON object"), (b"3", "JSON object")],
)
def test_bodies_that_are_not_json_objects_are_refused(raw, words):
    assert words in refused(parse_json_object, raw)


# --- create requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"company_id": "user-001", "provider": "whatsappweb"}, ("user-001", Provider.WHATSAPPWEB, ("api",), {})),
        ({"company_id": "a.b:c@d_e-1", "provider": "whatsappweb", "type_instance": ["api", "api"], "config": {}},
         ("a.b:c@d_e-1", Provider.WHATSAPPWEB, ("api",), {})),
        ({"company_id": "user-002", "provider": "telegram", "config": {"bot_token": TOKEN}},
         ("user-002", Provider.TELEGRAM, ("api",), {"bot_token": TOKEN})),
    ],
)
def test_create_requests_that_parse(body, expected):
    request = parse_create_request(body)
    assert (request.company_id, request.provider, request.type_instance, request.secrets) == expected
    assert request.webhook is None


def test_create_request_carries_its_webhook():
    webhook = {"url": "https://hooks.example.com/in", "headers": {"Authorization": "Bearer t"}, "enabled": False}
    request = parse_create_request({"company_id": "c", "provider": "whatsappweb", "api_webhook_schema": webhook})
    assert request.webhook == WebhookConfig("https://hooks.example.com/in", {"Authorization": "Bearer t"}, False)


VALID = {"company_id": "c", "provider": "telegram", "config": {"bot_token": TOKEN}}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"extra": 1}, "extra"),
        ({"company_id": None}, "company_id"),
        ({"company_id": ""}, "company_id"),
        ({"company_id": "x" * 129}, "company_id"),
        ({"company_id": "a/b"}, "company_id"),
        ({"company_id": ["c"]}, "company_id"),
        ({"provider": "Telegram"}, "provider"),
        ({"provider": None}, "provider"),
        ({"type_instance": []}, "type_instance"),
        ({"type_instance": "api"}, "type_instance"),
        ({"type_instance": [1]}, "type_instance"),
        ({"type_instance": ["api", "web"]}, "web"),
        ({"config": None}, "config.bot_token"),
        ({"config": []}, "config"),
        ({"config": {"bot_token": ""}}, "config.bot_token"),
        ({"config": {"bot_token": 42}}, "config.bot_token"),
        ({"config": {"bot_token": "12345"}}, "malformed"),
        ({"config": {"bot_token": "abc:def"}}, "malformed"),
        ({"config": {"bot_token": "1:has space"}}, "malformed"),
        ({"config": {"bot_token": TOKEN, "proxy": "x"}}, "proxy"),
        ({"api_webhook_schema": []}, "api_webhook_schema"),
    ],
)
def test_create_requests_refused_name_the_field(changes, words):
    assert words in refused(parse_create_request, {**VALID, **changes})


def test_whatsapp_takes_no_config_fields():
    assert "bot_token" in refused(parse_create_request, {"company_id": "c", "provider": "whatsappweb",
                                                         "config": {"bot_token": TOKEN}})


# --- webhooks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ({"url": "https://h.example"}, WebhookConfig("https://h.example/", {}, True)),  # stored canonical
        ({"url": "http://h.example:8080/p?q=1", "enabled": False}, WebhookConfig("http://h.example:8080/p?q=1", {}, False)),
        ({"url": "https://h.example", "headers": {"X-Token": "t", "Content-Type": "application/json"}},
         WebhookConfig("https://h.example/", {"X-Token": "t", "Content-Type": "application/json"}, True)),
    ],
)
def test_webhooks_that_parse(value, expected):
    assert parse_webhook(value) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://h.example", "api_webhook_schema"),
        ({"url": "https://h.example", "retries": 3}, "retries"),
        ({}, "api_webhook_schema.url"),
        ({"url": 5}, "api_webhook_schema.url"),
        ({"url": "ftp://h.example"}, "api_webhook_schema.url"),
        ({"url": "https://"}, "api_webhook_schema.url"),
        ({"url": "h.example/hook"}, "api_webhook_schema.url"),
        ({"url": "https://h.example/" + "a" * 2048}, "api_webhook_schema.url"),
        ({"url": "https://[::1"}, "api_webhook_schema.url"),
        ({"url": "https://h.example", "headers": "X: y"}, "api_webhook_schema.headers"),
        ({"url": "https://h.example", "headers": {"X": None}}, "api_webhook_schema.headers"),
        ({"url": "https://h.example", "headers": {"X Y": "v"}}, "'X Y'"),
        ({"url": "https://h.example", "headers": {"": "v"}}, "''"),
        ({"url": "https://h.example", "headers": {"X": "a\nb"}}, "line breaks"),
        ({"url": "https://h.example", "headers": {f"X-{i}": "v" for i in range(MAX_HEADERS + 1)}}, str(MAX_HEADERS)),
        ({"url": "https://h.example", "enabled": "true"}, "api_webhook_schema.enabled"),
        ({"url": "https://h.example", "enabled": 1}, "api_webhook_schema.enabled"),
    ],
)
def test_webhooks_refused_name_the_field(value, words):
    assert words in refused(parse_webhook, value)


def test_webhook_headers_are_copied_not_shared():
    headers = {"X-Token": "t"}
    webhook = parse_webhook({"url": "https://h.example", "headers": headers})
    headers["X-Token"] = "changed"
    assert webhook is not None and webhook.headers == {"X-Token": "t"}


# --- log tails ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tail"), [(None, DEFAULT_LOG_TAIL), ("", DEFAULT_LOG_TAIL), ("1", 1), ("100", 100), ("007", 7),
                      (str(MAX_LOG_TAIL), MAX_LOG_TAIL)]
)
def test_tails_that_parse(raw, tail):
    assert parse_tail(raw) == tail


@pytest.mark.parametrize(
    "raw", ["0", "-1", "abc", "1.5", " 5", "1e3", "²", "٣", str(MAX_LOG_TAIL + 1), "99999999999999999999"]
)
def test_tails_refused_name_the_field(raw):
    assert "tail" in refused(parse_tail, raw)
