"""The fuzzing pass's webhook reproductions, through the real Chalice app on moto: what create and
PATCH .../webhook refuse (400, nothing written), and that what they accept is stored canonical."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from tests.core.test_url_policy import AMBIGUOUS_OR_MALFORMED, NON_PUBLIC_ADDRESSES

JSON = {"Content-Type": "application/json"}
GOOD = "https://hooks.example.com/hook"  # does not resolve here: accepted, delivery would retry
REPRODUCTIONS = [
    "http://127.0.0.1:5797\\@hooks.example.com/hook",
    "http://169.254.169.254\\@hooks.example.com/hook",
    "http://[::1]\\@hooks.example.com/hook",
    "http://10.0.0.1:8080\\@hooks.example.com/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[64:ff9b::127.0.0.1]/hook",
    "https://user:pass@hooks.example.com/hook",
    "http://localhost:5797/hook",
]
BAD_HEADERS = [
    ({"X-Euro": "price \u20ac"}, "'X-Euro' contains '\u20ac' (U+20AC)"),
    ({"X-Evil\n": "v"}, "'X-Evil\\n' is not a valid HTTP header name"),
    ({"X-Evil": "a\r\nInjected: 1"}, "contains '\\r'"),
    ({"X-Nul": "a\x00b"}, "contains '\\x00'"),
    ({"X-Latin": "caf\u00e9"}, "printable ASCII"),
    ({"X-A": "1", "x-a": "2"}, "given twice"),
    ({"Host": "127.0.0.1"}, "set by the HTTP client"),
    ({"Transfer-Encoding": "chunked"}, "set by the HTTP client"),
    ({"Content-Length": "0"}, "set by the HTTP client"),
    ({"X-Long": "v" * 5000}, "longer than 4096"),
    ({"X \u0661": "v"}, "not a valid HTTP header name"),
]


@pytest.fixture
def client(aws: dict[str, str]) -> Iterator[Client]:
    import app

    with Client(app.app) as test_client:
        yield test_client


def create(client: Client, webhook: dict[str, Any]) -> Any:
    body = {"company_id": "acme", "provider": "whatsappweb", "api_webhook_schema": webhook}
    return client.http.post("/api/v1/instances", headers=JSON, body=json.dumps(body))


def instances(client: Client) -> list[dict[str, Any]]:
    return list(client.http.get("/api/v1/instances").json_body["data"])


@pytest.mark.parametrize("url", REPRODUCTIONS + AMBIGUOUS_OR_MALFORMED[:20] + NON_PUBLIC_ADDRESSES[:12])
def test_create_refuses_the_url_and_writes_nothing(client: Client, url: str) -> None:
    answer = create(client, {"url": url, "headers": {"Authorization": "Bearer x"}})
    assert answer.status_code == 400, answer.body
    assert answer.json_body["success"] is False and answer.json_body["code"] == "VALIDATION_ERROR"
    assert "api_webhook_schema.url" in answer.json_body["error"]
    assert instances(client) == []


@pytest.mark.parametrize("url", REPRODUCTIONS)
def test_patch_refuses_the_url_and_keeps_the_webhook(client: Client, url: str) -> None:
    instance_id = create(client, {"url": GOOD}).json_body["instance_id"]
    answer = client.http.patch(f"/api/v1/instances/{instance_id}/webhook", headers=JSON, body=json.dumps({"url": url}))
    assert answer.status_code == 400 and answer.json_body["code"] == "VALIDATION_ERROR", answer.body
    assert client.http.get(f"/api/v1/instances/{instance_id}/webhook").json_body["data"]["webhook"]["url"] == GOOD


def test_credentials_in_the_url_point_to_headers(client: Client) -> None:
    answer = create(client, {"url": "https://alice:s3cr3t@hooks.example.com/"})
    assert "send them as a header" in answer.json_body["error"] and "s3cr3t" not in answer.json_body["error"]


@pytest.mark.parametrize(("headers", "message"), BAD_HEADERS)
def test_headers_outside_what_http_allows_are_refused_naming_the_header(client: Client, headers: dict[str, str],
                                                                         message: str) -> None:
    answer = create(client, {"url": GOOD, "headers": headers})
    assert answer.status_code == 400 and answer.json_body["code"] == "VALIDATION_ERROR", answer.body
    assert message in answer.json_body["error"], answer.json_body["error"]
    assert instances(client) == []
    instance_id = create(client, {"url": GOOD, "headers": {"X-Ok": "fine"}}).json_body["instance_id"]
    patched = client.http.patch(f"/api/v1/instances/{instance_id}/webhook", headers=JSON,
                                body=json.dumps({"headers": headers}))
    assert patched.status_code == 400 and message in patched.json_body["error"]
    webhook = client.http.get(f"/api/v1/instances/{instance_id}/webhook").json_body["data"]["webhook"]
    assert webhook["headers"] == ["X-Ok"]


def test_what_is_accepted_is_stored_and_listed_canonical(client: Client) -> None:
    answer = create(client, {"url": "HTTPS://Hooks.Example.COM:443/Hook?x=1",
                             "headers": {"Content-Type": "application/json", "X-Tab": "a\tb"}})
    assert answer.status_code == 200, answer.body
    [listed] = instances(client)
    assert listed["webhook"]["url"] == "https://hooks.example.com/Hook?x=1"


def test_a_url_with_credentials_stored_before_they_were_refused_is_listed_without_them(client: Client) -> None:
    from chalicelib import wiring
    from chalicelib.core.types import WebhookConfig

    instance_id = create(client, {"url": GOOD}).json_body["instance_id"]
    wiring.container().repository.set_webhook(instance_id, WebhookConfig("https://alice:s3cr3t@hooks.example.com/", {}, True))
    listed = client.http.get("/api/v1/instances").body.decode()
    assert "s3cr3t" not in listed and "https://***@hooks.example.com/" in listed
    got = client.http.get(f"/api/v1/instances/{instance_id}/webhook").body.decode()
    assert "s3cr3t" not in got
