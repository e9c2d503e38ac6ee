"""The OpenAPI document tells the truth about the Chalice app: every route is documented, every
documented route exists, the error table is the one in chalicelib.core.errors, and the documented
instance shape is what the code answers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import app
from chalicelib import openapi, wiring
from chalicelib.core.errors import HTTP_STATUS, ErrorCode, InstanceManagerError
from chalicelib.core.types import ApiKey, Instance, MessageEvent, Provider, WebhookConfig
from tests.sdk.conformance import operations, schema_errors

SERVER = "http://localhost:3000"
STATIC = Path(openapi.__file__).parent / "static"
CATCH_ALL = re.compile(r"^(/\{p\d+\})+$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi.document(SERVER)


def app_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, methods in app.app.routes.items() if not CATCH_ALL.match(path) for method in methods}


def test_every_route_of_the_app_is_documented_and_every_documented_route_exists(doc: dict[str, Any]) -> None:
    real = app_routes()
    documented = set(openapi.ROUTES)
    assert len(openapi.ROUTES) == len(documented), "a route is listed twice"
    assert real - documented == set(), "routes of app.py missing from chalicelib/openapi.py"
    assert documented - real == set(), "documented routes that app.py does not have"
    in_document = {(method.upper(), path) for path, methods in doc["paths"].items() for method in methods}
    assert in_document == documented
    assert open_paths() == app.OPEN_ROUTES, "the document says which routes need no admin key"


def open_paths() -> set[str]:
    return {op.path for op in openapi.OPERATIONS if op.open}


def test_the_document_and_the_docs_page_are_served(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.test import Client

    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    wiring.reset()
    with Client(app.app) as client:
        answer = client.http.get("/openapi.json")
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
        served = json.loads(answer.body)
        assert served == openapi.document(served["servers"][0]["url"])
        page = client.http.get("/docs")
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "openapi.json" in page.body.decode()
    wiring.reset()


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": SERVER}]
    assert openapi.document(SERVER + "/")["servers"] == [{"url": SERVER}]


def test_the_error_table_is_the_one_of_the_code(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["ErrorCode"]
    assert schema["x-http-status"] == {code.value: status for code, status in HTTP_STATUS.items()}
    assert schema["enum"] == [code.value for code in ErrorCode]
    for op_id, (_, _, op) in operations(doc).items():
        for status, answer in op["responses"].items():
            if status == "200":
                continue
            codes = answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
            assert {HTTP_STATUS[ErrorCode(code)] for code in codes} == {int(status)}, (op_id, status)


def test_operations_are_named_once_and_secured_unless_open(doc: dict[str, Any]) -> None:
    ids = [op.operation_id for op in openapi.OPERATIONS]
    assert len(ids) == len(set(ids))
    for op_id, (_, path, op) in operations(doc).items():
        is_open = op.get("security") == []
        assert is_open == (path in {"/api/health", "/qr-page/{instanceId}", "/openapi.json", "/docs", "/static/{name}"}), op_id
        # /api/health is open, but its deep check (deep=true) shows the infrastructure: that one needs the key.
        assert ("401" in op["responses"]) == (not is_open or op_id == "health"), op_id
        in_path = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert in_path == re.findall(r"{(\w+)}", path), op_id


def test_the_delivery_log_limits_are_the_services() -> None:
    from chalicelib import webhook_service

    assert openapi.DELIVERY_STATES == webhook_service.STATES and openapi.MAX_DELIVERIES == webhook_service.MAX_LIST
    assert webhook_service._limit(None) == openapi.DEFAULT_DELIVERIES


def instance(**changes: Any) -> Instance:
    moment = datetime(2024, 1, 1, 12, tzinfo=UTC)
    base = Instance(id="i-1", company_id="acme", provider=Provider.TELEGRAM, type_instance=("api",), ports={"api": 8080},
                    api_key=ApiKey("k", moment), created_at=moment, updated_at=moment)
    return base.replace(**changes)


@pytest.mark.parametrize("record", [
    instance(),
    instance(account="+15551234567", host="127.0.0.1", provider=Provider.WHATSAPPWEB,
             webhook=WebhookConfig("https://example.com/hook", {"Authorization": "Bearer t"})),
])
def test_the_instance_schema_is_the_public_view(doc: dict[str, Any], record: Instance) -> None:
    view = record.public_view()
    schema = doc["components"]["schemas"]["Instance"]
    assert set(schema["properties"]) == set(view), "public_view() and the Instance schema list different fields"
    if view["webhook"] is not None:
        webhook = doc["components"]["schemas"]["WebhookView"]["properties"]
        assert set(webhook) == set(view["webhook"]), "the webhook's view and the WebhookView schema differ"
    assert schema_errors(doc, {"$ref": "#/components/schemas/Instance"}, view) == []


def test_the_webhook_payload_is_the_core_message_shape(doc: dict[str, Any]) -> None:
    event: MessageEvent = {"instance_id": "i-1", "provider": "telegram", "message": {
        "id": "1001:5", "body": "Hello!", "fromMe": False, "timestamp": "2024-01-01T12:00:00.000Z",
        "contact": "Alice (@alice)", "type": "text", "chatId": "1001"}}
    schema = doc["webhooks"]["message"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema_errors(doc, schema, event) == []
    assert schema_errors(doc, schema, {**event, "message": {"id": "x"}}) != []


def test_request_schemas_follow_the_validation(doc: dict[str, Any]) -> None:
    from chalicelib.core.validation import parse_create_request

    create = {"$ref": "#/components/schemas/CreateInstanceRequest"}
    good: list[dict[str, Any]] = [{"company_id": "acme", "provider": "whatsappweb"},
            {"company_id": "acme", "provider": "telegram", "type_instance": ["api"], "config": {"bot_token": "1:AA"},
             "api_webhook_schema": {"url": "https://example.com/h", "headers": {"X": "y"}, "enabled": False}}]
    bad: list[dict[str, Any]] = [{"company_id": "acme", "provider": "telegram"}, {"company_id": "a b", "provider": "whatsappweb"},
           {"company_id": "acme", "provider": "whatsappweb", "extra": 1}, {"company_id": "acme", "provider": "viber"}]
    for body in good:
        parse_create_request(body)
        assert schema_errors(doc, create, body) == [], body
    for body in bad:
        with pytest.raises(InstanceManagerError) as refused:
            parse_create_request(body)
        assert refused.value.code is ErrorCode.VALIDATION_ERROR
        assert schema_errors(doc, create, body) != [], body


def test_the_docs_page_embeds_the_url_safely_and_its_script_parses() -> None:
    page = openapi.docs_page('/openapi.json?x="</script><script>alert(1)</script>')
    assert page.startswith("<!doctype html>") and "<script>alert" not in page and '"</' not in page
    assert "<script>" not in page, "the script is a file (chalicelib/static/docs.js): the CSP allows no inline one"
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    checked = subprocess.run(["node", "--check", str(STATIC / "docs.js")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
