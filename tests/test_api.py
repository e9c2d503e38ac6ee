"""The HTTP API through the real Chalice app (chalice.test.Client) over moto: the seed's shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from chalice.test import Client, HTTPResponse

from chalicelib import wiring
from chalicelib.core.types import AuthStatus, Status
from tests.aws import moto_environment

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
JSON = {"Content-Type": "application/json"}
TOKEN = "123456789:AABBCCDDEEFFgghhiijjkkll"
HEADER_SECRET = "Bearer very-secret-webhook-token"
TELEGRAM: dict[str, Any] = {
    "company_id": "user-002",
    "provider": "telegram",
    "type_instance": ["api"],
    "config": {"bot_token": TOKEN},
    "api_webhook_schema": {
        "url": "https://webhook.example.com/telegram",
        "headers": {"Authorization": HEADER_SECRET},
        "enabled": True,
    },
}
WHATSAPP: dict[str, Any] = {
    "company_id": "user-001",
    "provider": "whatsappweb",
    "type_instance": ["api"],
    "api_webhook_schema": {"url": "https://webhook.example.com/whatsapp", "headers": {"Authorization": HEADER_SECRET}},
}
SEED_INSTANCE_FIELDS = {"id", "company_id", "provider", "type_instance", "status", "auth_status", "ports", "account",
                        "created_at", "updated_at"}


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    tables: list[Any]
    ecs: Any


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One moto deployment for the module (a deployment costs about a second); tables emptied per test."""
    for env in moto_environment():
        wiring.reset()
        dynamodb = boto3.resource("dynamodb")
        tables = [dynamodb.Table(env["INSTANCES_TABLE"]), dynamodb.Table(env["LEASES_TABLE"])]
        yield Stack(env, tables, boto3.client("ecs"))
    wiring.reset()


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    for table in stack.tables:
        keys = [k["AttributeName"] for k in table.key_schema]
        with table.batch_writer() as batch:
            for item in table.scan()["Items"]:
                batch.delete_item(Key={k: item[k] for k in keys})
    import app

    with Client(app.app) as test_client:
        yield test_client


@pytest.fixture
def reset_after() -> Iterator[None]:
    """For tests that change the environment: the container is rebuilt from it on next use."""
    wiring.reset()
    yield
    wiring.reset()


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, headers={**JSON, **(headers or {})}, body=raw)


def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = post(client, "/api/v1/instances", body)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def listed_ids(client: Client) -> list[str]:
    return sorted(i["id"] for i in client.http.get("/api/v1/instances").json_body["data"])


def assert_error(response: HTTPResponse, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.body
    body = response.json_body
    assert set(body) == {"success", "error", "code"}
    assert body["success"] is False and body["code"] == code
    for word in words:
        assert word in body["error"]


def ecs_tasks(stack: Stack, instance_id: str) -> list[dict[str, Any]]:
    cluster = stack.env["ECS_CLUSTER"]
    arns = stack.ecs.list_tasks(cluster=cluster, startedBy=instance_id)["taskArns"]
    if not arns:
        return []
    return list(stack.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"])


def stored_items(stack: Stack) -> int:
    return sum(table.scan(Select="COUNT")["Count"] for table in stack.tables)


def states(stack: Stack, instance_id: str) -> list[str]:
    return sorted(t["lastStatus"] for t in ecs_tasks(stack, instance_id))


# --- success paths ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [WHATSAPP, TELEGRAM], ids=["whatsappweb", "telegram"])
def test_create_answers_the_seed_shape_and_starts_a_task(client, stack, body):
    created = create(client, body)

    # The seed's fields, exactly named; the design allows more beside them.
    assert set(created) >= {"success", "instance_id", "message", "process_result"}
    assert created["success"] is True and created["message"] == "Instance created successfully"
    result = created["process_result"]
    assert result["success"] is True and set(result["details"]) >= {"ports", "api_key"}
    assert result["details"]["ports"] == {"api": 8080}
    assert len(result["details"]["api_key"]) >= 32
    assert states(stack, created["instance_id"]) == ["RUNNING"]


def test_ports_are_handed_out_in_order(client):
    ports = [create(client, WHATSAPP)["process_result"]["details"]["ports"]["api"] for _ in range(3)]
    assert ports == [8080, 8081, 8082]


def test_list_and_get_show_the_seed_instance_shape(client):
    whatsapp = create(client, WHATSAPP)["instance_id"]
    telegram = create(client, TELEGRAM)["instance_id"]

    listing = client.http.get("/api/v1/instances").json_body
    assert listing["success"] is True
    assert sorted(i["id"] for i in listing["data"]) == sorted([whatsapp, telegram])
    one = client.http.get(f"/api/v1/instances/{telegram}").json_body
    assert one["success"] is True
    data = one["data"]
    assert set(data) >= SEED_INSTANCE_FIELDS
    assert data in listing["data"]
    assert (data["id"], data["company_id"], data["provider"]) == (telegram, "user-002", "telegram")
    assert (data["type_instance"], data["ports"], data["account"]) == (["api"], {"api": 8081}, None)
    assert (data["status"], data["auth_status"]) == ("start", "pending")
    assert ISO.match(data["created_at"]) and ISO.match(data["updated_at"])


def test_list_filters_by_company(client):
    whatsapp = create(client, WHATSAPP)["instance_id"]
    create(client, TELEGRAM)

    data = client.http.get("/api/v1/instances?company_id=user-001").json_body["data"]
    assert [i["id"] for i in data] == [whatsapp]
    assert client.http.get("/api/v1/instances?company_id=nobody").json_body == {"success": True, "data": []}


def test_listing_never_shows_the_api_key_bot_token_or_header_values(client):
    created = create(client, TELEGRAM)
    instance_id, details = created["instance_id"], created["process_result"]["details"]
    secrets = [details["api_key"], TOKEN, HEADER_SECRET, "very-secret"]
    if details.get("webhook_secret"):
        secrets.append(details["webhook_secret"])

    for path in ("/api/v1/instances", f"/api/v1/instances/{instance_id}"):
        text = client.http.get(path).body.decode()
        for secret in secrets:
            assert secret not in text
    webhook = client.http.get(f"/api/v1/instances/{instance_id}").json_body["data"]["webhook"]
    assert (webhook["url"], webhook["enabled"]) == ("https://webhook.example.com/telegram", True)
    assert webhook["headers"] == ["Authorization"], "header names only"


def test_current_api_key_counts_its_use(client):
    created = create(client, WHATSAPP)
    instance_id = created["instance_id"]
    path = f"/api/v1/instances/{instance_id}/current-api-key"

    first = client.http.get(path).json_body
    assert first["success"] is True
    assert set(first["data"]) == {"api_key", "generated_at", "last_use", "usage_count"}
    assert first["data"]["api_key"] == created["process_result"]["details"]["api_key"]
    assert ISO.match(first["data"]["generated_at"])
    assert (first["data"]["last_use"], first["data"]["usage_count"]) == (None, 0)

    for _ in range(2):  # what the provider runtime does on each call authenticated with the key
        wiring.container().repository.count_key_use(instance_id)
    used = client.http.get(path).json_body["data"]
    assert used["usage_count"] == 2 and ISO.match(used["last_use"])
    assert used["last_use"] >= used["generated_at"]


def test_stop_start_and_restart_move_the_desired_state_and_the_task(client, stack):
    instance_id = create(client, WHATSAPP)["instance_id"]
    path = f"/api/v1/instances/{instance_id}"

    def state() -> tuple[str, str]:
        data = client.http.get(path).json_body["data"]
        return data["desired_state"], data["status"]

    assert client.http.post(path + "/stop").json_body == {"success": True, "message": "Instance stopped successfully"}
    assert state() == ("stopped", "stopped")
    assert states(stack, instance_id) == ["STOPPED"]

    assert client.http.post(path + "/start").json_body == {"success": True, "message": "Instance started successfully"}
    assert state() == ("running", "start")
    assert states(stack, instance_id) == ["RUNNING", "STOPPED"]

    running = [t["taskArn"] for t in ecs_tasks(stack, instance_id) if t["lastStatus"] == "RUNNING"]
    restarted = client.http.post(path + "/restart").json_body
    assert restarted == {"success": True, "message": "Instance restarted successfully"}
    assert state() == ("running", "start")
    by_arn = {t["taskArn"]: t["lastStatus"] for t in ecs_tasks(stack, instance_id)}
    assert by_arn[running[0]] == "STOPPED"
    assert sorted(by_arn.values()) == ["RUNNING", "STOPPED", "STOPPED"]


def test_start_leaves_a_running_task_alone(client, stack):
    instance_id = create(client, WHATSAPP)["instance_id"]
    assert client.http.post(f"/api/v1/instances/{instance_id}/start").status_code == 200
    assert states(stack, instance_id) == ["RUNNING"]


def test_qr_is_not_available_for_telegram_nor_before_whatsapp_asks_for_one(client):
    telegram = create(client, TELEGRAM)["instance_id"]
    whatsapp = create(client, WHATSAPP)["instance_id"]
    assert_error(client.http.get(f"/api/v1/instances/{telegram}/qr"), 409, "QR_NOT_AVAILABLE", "bot token")
    assert_error(client.http.get(f"/api/v1/instances/{whatsapp}/qr"), 409, "QR_NOT_AVAILABLE", "pending")


def test_qr_is_served_as_the_seed_shape_once_whatsapp_asks_for_a_scan(client):
    instance_id = create(client, WHATSAPP)["instance_id"]
    repository = wiring.container().repository  # what the provider runtime writes when WhatsApp sends a QR
    repository.set_qr(instance_id, "2@QR-REFERENCE,PUBLIC-KEY,IDENTITY,ADV")
    repository.report(instance_id, status=Status.QR_READY, auth_status=AuthStatus.QR_READY)

    body = client.http.get(f"/api/v1/instances/{instance_id}/qr").json_body
    assert body["success"] is True and set(body["data"]) >= {"qr_url", "url"}
    prefix = "data:image/png;base64,"
    assert body["data"]["qr_url"].startswith(prefix)
    assert base64.b64decode(body["data"]["qr_url"][len(prefix):]).startswith(b"\x89PNG\r\n")
    assert isinstance(body["data"]["url"], str) and body["data"]["url"]


def test_auth_status_follows_what_the_provider_reports(client):
    instance_id = create(client, WHATSAPP)["instance_id"]
    path = f"/api/v1/instances/{instance_id}/auth-status"
    pending = client.http.get(path).json_body
    assert pending["success"] is True
    assert {k: pending["data"][k] for k in ("status", "authenticated", "account")} == {
        "status": "pending", "authenticated": False, "account": None}

    wiring.container().repository.report(instance_id, auth_status=AuthStatus.AUTHENTICATED, account="+1234567890")
    data = client.http.get(path).json_body["data"]
    assert (data["status"], data["authenticated"], data["account"]) == ("authenticated", True, "+1234567890")


def test_logs_tail_gives_the_last_lines_in_the_seed_shape(client):
    instance_id = create(client, WHATSAPP)["instance_id"]
    client.http.post(f"/api/v1/instances/{instance_id}/stop")

    everything = client.http.get(f"/api/v1/instances/{instance_id}/logs").json_body["data"]
    assert everything["tail"] == 100
    assert everything["total_lines"] == len(everything["logs"]) >= 4
    assert "Instance created" in everything["logs"][0]["message"]
    body = client.http.get(f"/api/v1/instances/{instance_id}/logs?tail=2").json_body
    assert body["success"] is True
    assert (body["data"]["tail"], body["data"]["total_lines"]) == (2, everything["total_lines"])
    assert body["data"]["logs"] == everything["logs"][-2:]
    for line in body["data"]["logs"]:
        assert set(line) == {"timestamp", "level", "message", "source"}
        assert ISO.match(line["timestamp"]) and line["level"] in {"debug", "info", "warn", "error"}


def test_delete_stops_the_task_forgets_the_instance_and_frees_its_port(client, stack):
    first = create(client, WHATSAPP)["instance_id"]
    create(client, TELEGRAM)

    deleted = client.http.delete(f"/api/v1/instances/{first}")
    assert deleted.json_body == {"success": True, "message": "Instance deleted successfully"}
    assert_error(client.http.get(f"/api/v1/instances/{first}"), 404, "INSTANCE_NOT_FOUND", first)
    assert first not in listed_ids(client)
    assert states(stack, first) == ["STOPPED"]
    assert create(client, WHATSAPP)["process_result"]["details"]["ports"] == {"api": 8080}


def test_health_is_open_and_answers_the_seed_shape(client):
    body = client.http.get("/api/health").json_body
    assert set(body) == {"status", "timestamp"} and body["status"] == "healthy"
    assert ISO.match(body["timestamp"])


def test_curl_style_form_label_is_still_read_as_json(client):
    response = client.http.post("/api/v1/instances", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body=json.dumps(WHATSAPP))
    assert response.status_code == 200 and response.json_body["success"] is True


# --- bad input ----------------------------------------------------------------------------


def with_webhook(**changes: Any) -> dict[str, Any]:
    return {**WHATSAPP, "api_webhook_schema": {**WHATSAPP["api_webhook_schema"], **changes}}


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("malformed json", '{"company_id": ', "not valid JSON"),
    ("empty body", "", "empty"),
    ("not an object", "[1, 2]", "JSON object"),
    ("string body", '"hello"', "JSON object"),
    ("missing company", {"provider": "whatsappweb"}, "company_id"),
    ("company not a string", {**WHATSAPP, "company_id": 42}, "company_id"),
    ("company with spaces", {**WHATSAPP, "company_id": "a b"}, "company_id"),
    ("unknown field", {**WHATSAPP, "owner": "me"}, "owner"),
    ("unknown provider", {**WHATSAPP, "provider": "signal"}, "provider"),
    ("provider missing", {"company_id": "c"}, "provider"),
    ("type_instance a string", {**WHATSAPP, "type_instance": "api"}, "type_instance"),
    ("type_instance empty", {**WHATSAPP, "type_instance": []}, "type_instance"),
    ("unknown type_instance", {**WHATSAPP, "type_instance": ["bot"]}, "type_instance"),
    ("config not an object", {**TELEGRAM, "config": "x"}, "config"),
    ("telegram without config", {k: v for k, v in TELEGRAM.items() if k != "config"}, "config.bot_token"),
    ("telegram without token", {**TELEGRAM, "config": {}}, "config.bot_token"),
    ("token not a string", {**TELEGRAM, "config": {"bot_token": 123}}, "config.bot_token"),
    ("malformed token", {**TELEGRAM, "config": {"bot_token": "not-a-token"}}, "config.bot_token"),
    ("unknown config field", {**WHATSAPP, "config": {"bot_token": TOKEN}}, "config"),
    ("webhook not an object", {**WHATSAPP, "api_webhook_schema": "https://x.example"}, "api_webhook_schema"),
    ("webhook unknown field", with_webhook(secret="x"), "secret"),
    ("webhook url missing", {**WHATSAPP, "api_webhook_schema": {"enabled": True}}, "api_webhook_schema.url"),
    ("webhook url ftp", with_webhook(url="ftp://example.com/hook"), "api_webhook_schema.url"),
    ("webhook url relative", with_webhook(url="/hook"), "api_webhook_schema.url"),
    ("headers a list", with_webhook(headers=["Authorization"]), "api_webhook_schema.headers"),
    ("header value a number", with_webhook(headers={"X-Id": 1}), "api_webhook_schema.headers"),
    ("header name with space", with_webhook(headers={"Bad Name": "v"}), "Bad Name"),
    ("header value with newline", with_webhook(headers={"X-A": "v\r\nX-B: injected"}), "X-A"),
    ("enabled a string", with_webhook(enabled="yes"), "api_webhook_schema.enabled"),
    ("webhook on loopback", with_webhook(url="http://127.0.0.1:9000/hook"), "WEBHOOK_ALLOW_PRIVATE"),
    ("webhook on a private network", with_webhook(url="http://10.1.2.3/hook"), "WEBHOOK_ALLOW_PRIVATE"),
]


@pytest.mark.parametrize(("body", "words"), [(b, w) for _, b, w in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES])
def test_bad_create_bodies_are_refused_and_write_nothing(client, stack, body, words):
    assert_error(post(client, "/api/v1/instances", body), 400, "VALIDATION_ERROR", words)
    assert listed_ids(client) == []
    assert stored_items(stack) == 0, "no instance, company slot or port lease"


def test_a_body_that_is_not_json_by_its_label_is_refused(client, stack):
    response = client.http.post("/api/v1/instances", headers={"Content-Type": "text/xml"}, body="<a/>")
    assert_error(response, 400, "VALIDATION_ERROR", "Content-Type: application/json")
    assert stored_items(stack) == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3"])
def test_private_webhook_urls_are_accepted_when_allowed(client, monkeypatch, reset_after, host):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    created = create(client, with_webhook(url=f"http://{host}:9000/hook"))
    data = client.http.get(f"/api/v1/instances/{created['instance_id']}").json_body["data"]
    assert data["webhook"]["url"] == f"http://{host}:9000/hook"


@pytest.mark.parametrize("tail", ["0", "-1", "abc", "1001", "1.5", "%C2%B2"])
def test_bad_log_tails_are_refused(client, tail):
    instance_id = create(client, WHATSAPP)["instance_id"]
    assert_error(client.http.get(f"/api/v1/instances/{instance_id}/logs?tail={tail}"), 400, "VALIDATION_ERROR", "tail")


INSTANCE_ROUTES = [("GET", ""), ("DELETE", ""), ("GET", "/current-api-key"), ("POST", "/start"), ("POST", "/stop"),
                   ("POST", "/restart"), ("GET", "/qr"), ("GET", "/auth-status"), ("GET", "/logs?tail=5"),
                   ("GET", "/webhook"), ("GET", "/deliveries")]


@pytest.mark.parametrize(("method", "suffix"), INSTANCE_ROUTES, ids=[f"{m} {s or '/'}" for m, s in INSTANCE_ROUTES])
def test_unknown_instance_ids_are_404_on_every_instance_route(client, stack, method, suffix):
    unknown = "00000000-0000-4000-8000-000000000000"
    response = client.http.request(method, f"/api/v1/instances/{unknown}{suffix}")
    assert_error(response, 404, "INSTANCE_NOT_FOUND", unknown)
    assert stored_items(stack) == 0


@pytest.mark.parametrize("path", ["/api/v2/instances", "/nothing", "/api/v1/instances/x/y/z", "/api/v1/instances/x/qr/extra"])
def test_unknown_routes_are_404_in_the_error_shape(client, path):
    assert_error(client.http.get(path), 404, "ROUTE_NOT_FOUND", path)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/api/v1/instances"), ("DELETE", "/api/v1/instances"),
                                               ("GET", "/api/v1/instances/x/start"), ("POST", "/api/health")])
def test_wrong_methods_are_405_in_the_error_shape(client, method, path):
    assert_error(client.http.request(method, path), 405, "METHOD_NOT_ALLOWED", method)


# --- admin key ----------------------------------------------------------------------------

ADMIN_KEY = "admin-key-for-tests"


@pytest.fixture
def guarded(client: Client, monkeypatch: pytest.MonkeyPatch, reset_after: None) -> Client:
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    return client


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": ADMIN_KEY}, {"x-api-key": ADMIN_KEY[:-1]}])
def test_without_the_admin_key_every_route_is_401(guarded, headers):
    assert_error(guarded.http.get("/api/v1/instances", headers=headers), 401, "UNAUTHORIZED", "x-api-key")
    assert_error(post(guarded, "/api/v1/instances", WHATSAPP, headers), 401, "UNAUTHORIZED")
    assert_error(guarded.http.get("/api/nowhere", headers=headers), 401, "UNAUTHORIZED")
    assert guarded.http.get("/api/v1/instances", headers={"x-api-key": ADMIN_KEY}).json_body["data"] == []


@pytest.mark.parametrize("headers", [{"x-api-key": ADMIN_KEY}, {"Authorization": f"Bearer {ADMIN_KEY}"}],
                         ids=["x-api-key", "bearer"])
def test_the_admin_key_opens_the_api_either_way(guarded, headers):
    created = post(guarded, "/api/v1/instances", WHATSAPP, headers).json_body
    assert created["success"] is True
    assert [i["id"] for i in guarded.http.get("/api/v1/instances", headers=headers).json_body["data"]] == [
        created["instance_id"]]


def test_health_stays_open_with_an_admin_key(guarded):
    response = guarded.http.get("/api/health")
    assert response.status_code == 200 and response.json_body["status"] == "healthy"


# --- one bot token, one instance ----------------------------------------------------------


def all_items(stack: Stack) -> list[dict[str, Any]]:
    return [item for table in stack.tables for item in table.scan()["Items"]]


def test_a_bot_token_in_use_is_refused_with_409_and_nothing_is_written(client, stack):
    holder = create(client, TELEGRAM)["instance_id"]
    before, tasks_before = all_items(stack), len(stack.ecs.list_tasks(cluster=stack.env["ECS_CLUSTER"])["taskArns"])

    second = post(client, "/api/v1/instances", {**TELEGRAM, "company_id": "another-company"})
    assert_error(second, 409, "BOT_TOKEN_IN_USE", holder, "one token drives one instance", "@BotFather")
    assert TOKEN not in second.json_body["error"]
    assert all_items(stack) == before, "no instance, company slot, port or claim"
    assert len(stack.ecs.list_tasks(cluster=stack.env["ECS_CLUSTER"])["taskArns"]) == tasks_before, "no task"

    other_bot = create(client, {**TELEGRAM, "config": {"bot_token": "987654321:ZZYYXXWWVVUUttssrrqqppoo"}})
    assert other_bot["success"] is True, "another token is free"
    assert_error(post(client, "/api/v1/instances", TELEGRAM), 409, "BOT_TOKEN_IN_USE")  # the same company too


def test_deleting_the_instance_frees_its_bot_token(client, stack):
    first = create(client, TELEGRAM)["instance_id"]
    assert client.http.delete(f"/api/v1/instances/{first}").status_code == 200
    second = create(client, TELEGRAM)["instance_id"]
    assert_error(post(client, "/api/v1/instances", TELEGRAM), 409, "BOT_TOKEN_IN_USE", second)
    assert client.http.delete(f"/api/v1/instances/{second}").status_code == 200
    assert [item["lease_id"] for item in all_items(stack) if str(item.get("lease_id", "")).startswith("bot-token#")] == []


def test_only_a_keyed_digest_of_the_token_is_stored_and_every_process_derives_the_same(client, stack, reset_after):
    holder = create(client, TELEGRAM)["instance_id"]
    items = all_items(stack)
    assert TOKEN not in json.dumps(items, default=str), "the token in clear nowhere (the config is sealed)"
    claims = [item for item in items if str(item.get("lease_id", "")).startswith("bot-token#")]
    assert [(set(c), c["owner"]) for c in claims] == [({"lease_id", "owner"}, holder)]
    digest = str(claims[0]["lease_id"]).removeprefix("bot-token#")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest != hashlib.sha256(TOKEN.encode()).hexdigest(), "keyed: a list of leaked tokens cannot be matched"
    key_item = next(item for item in items if item.get("lease_id") == "digest-key#bot-token")
    assert str(key_item["sealed"]).startswith("v1:"), "the digest key is sealed by the secret box"
    key = base64.b64decode(wiring.container().secret_box.open(str(key_item["sealed"])))
    assert hmac.new(key, TOKEN.encode(), hashlib.sha256).hexdigest() == digest

    wiring.reset()  # another Lambda process: it reads the same key, so it sees the same claim
    assert_error(post(client, "/api/v1/instances", TELEGRAM), 409, "BOT_TOKEN_IN_USE", holder)


def test_deleting_an_instance_that_shares_a_token_without_holding_it_keeps_the_holders_claim(client, stack):
    """An instance made before claims existed may share its token with the one that holds the claim."""
    leases = stack.tables[1]
    legacy = create(client, TELEGRAM)["instance_id"]
    for item in all_items(stack):
        if str(item.get("lease_id", "")).startswith("bot-token#"):
            leases.delete_item(Key={"lease_id": item["lease_id"]})  # as it was stored before claims
    holder = create(client, TELEGRAM)["instance_id"]

    assert client.http.delete(f"/api/v1/instances/{legacy}").status_code == 200
    assert_error(post(client, "/api/v1/instances", TELEGRAM), 409, "BOT_TOKEN_IN_USE", holder)
    assert client.http.delete(f"/api/v1/instances/{holder}").status_code == 200
    assert create(client, TELEGRAM)["success"] is True


# Inputs a fuzzing pass got through (accepted, or answered 500): each is 400 in the error shape, nothing written.
DEEP = "[" * 2000 + "]" * 2000
FUZZED_CREATES = [
    ({**WHATSAPP, "company_id": "acme\n"}, "company_id"),
    ({**WHATSAPP, "company_id": "acme\u0661"}, "company_id"),
    ({**TELEGRAM, "config": {"bot_token": TOKEN + "\n"}}, "bot_token"),
    ({**TELEGRAM, "config": {"bot_token": "\u0661\u0662\u0663\u0664:AAfake"}}, "bot_token"),
    ({**TELEGRAM, "config": {"bot_token": "\uff11\uff12\uff13:AAfake"}}, "bot_token"),
    ({**WHATSAPP, "api_webhook_schema": {"url": "https://h.example/\nx"}}, "api_webhook_schema.url"),
    ({**WHATSAPP, "api_webhook_schema": {"url": "https://h.example/\x01"}}, "api_webhook_schema.url"),
    ({**WHATSAPP, "api_webhook_schema": {"url": "https://h.example/", "headers": {"X-Evil\n": "v"}}}, "X-Evil"),
]


@pytest.mark.parametrize(("body", "field"), FUZZED_CREATES)
def test_fuzzed_creates_are_refused_and_write_nothing(client, stack, body, field):
    assert_error(post(client, "/api/v1/instances", body), 400, "VALIDATION_ERROR", field)
    assert stored_items(stack) == 0 and listed_ids(client) == []


def test_a_deeply_nested_body_is_a_400_on_every_json_route(client, stack):
    instance_id = create(client, WHATSAPP)["instance_id"]
    before = stored_items(stack)
    for path in ("/api/v1/instances", f"/api/v1/instances/{instance_id}/pairing-code",
                 f"/api/v1/instances/{instance_id}/messages"):
        assert_error(post(client, path, DEEP), 400, "VALIDATION_ERROR", "nested too deeply")
    patched = client.http.patch(f"/api/v1/instances/{instance_id}/webhook", headers=JSON, body=DEEP)
    assert_error(patched, 400, "VALIDATION_ERROR", "nested too deeply")
    assert stored_items(stack) == before


@pytest.mark.parametrize("chat_id", [True, False])
def test_a_boolean_chat_id_is_no_chat(client, chat_id):
    instance_id = create(client, TELEGRAM)["instance_id"]
    answer = post(client, f"/api/v1/instances/{instance_id}/messages", {"chatId": chat_id, "text": "hi"})
    assert_error(answer, 400, "VALIDATION_ERROR", "chatId")


@pytest.mark.parametrize("limit", ["\u0661", "\uff11", "1\n", " 1", "+1", "0x1"])
def test_a_delivery_limit_in_other_digits_is_refused(client, limit):
    instance_id = create(client, WHATSAPP)["instance_id"]
    answer = client.http.get(f"/api/v1/instances/{instance_id}/deliveries?limit={quote(limit)}")
    assert_error(answer, 400, "VALIDATION_ERROR", "limit")


def test_a_pairing_phone_in_other_digits_is_refused(client):
    instance_id = create(client, WHATSAPP)["instance_id"]
    answer = post(client, f"/api/v1/instances/{instance_id}/pairing-code", {"phone_number": "+\u0661" * 11})
    assert_error(answer, 400, "VALIDATION_ERROR", "phone_number")
