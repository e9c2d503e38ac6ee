"""The per-company limit and port uniqueness hold under concurrent creates."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto.core.botocore_stubber import BotocoreStubber

from chalicelib import wiring
from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import Instance

LIMIT = 10


@pytest.fixture
def serialized_moto(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's TransactWriteItems snapshots whole tables and restores them when a condition fails, so
    concurrent transactions undo each other's writes; DynamoDB serializes transactions. One lock
    around moto's request handling gives the stand-in that guarantee; the code under test is untouched."""
    lock = threading.Lock()
    handle = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return handle(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)


def run_concurrently(calls: list[Callable[[], Instance]]) -> list[Instance | InstanceManagerError]:
    """Start every call at once (a barrier), in its own thread; the results in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[Instance | InstanceManagerError | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except InstanceManagerError as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in results), "a create neither returned nor raised a domain error"
    return [r for r in results if r is not None]


def creator(company_id: str) -> Callable[[], Instance]:
    return lambda: wiring.container().instances.create({"company_id": company_id, "provider": "whatsappweb"})


def lease(env: dict[str, str], lease_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(env["LEASES_TABLE"])
    return dict(table.get_item(Key={"lease_id": lease_id}, ConsistentRead=True).get("Item", {}))


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.http.post("/api/v1/instances", headers={"Content-Type": "application/json"}, body=json.dumps(body))


def test_eleven_concurrent_creates_give_ten_instances_on_distinct_ports_and_one_409(aws, serialized_moto):
    service = wiring.container().instances  # built once, as each Lambda process would have it
    results = run_concurrently([creator("acme") for _ in range(LIMIT + 1)])

    created = [r for r in results if isinstance(r, Instance)]
    refused = [r for r in results if isinstance(r, InstanceManagerError)]
    assert len(created) == LIMIT
    assert [(e.code, e.http_status) for e in refused] == [(ErrorCode.INSTANCE_LIMIT_REACHED, 409)]
    ports = [i.ports["api"] for i in created]
    assert len(set(ports)) == LIMIT
    assert sorted(i.id for i in service.list_instances("acme")) == sorted(i.id for i in created)
    assert lease(aws, "company#acme")["used_slots"] == LIMIT
    assert set(lease(aws, "ports")["used"]) == set(ports)

    import app

    with Client(app.app) as client:
        full = post(client, {"company_id": "acme", "provider": "whatsappweb"})
        assert full.status_code == 409
        assert full.json_body == {"success": False, "code": "INSTANCE_LIMIT_REACHED", "error": full.json_body["error"]}
        assert "acme" in full.json_body["error"] and "10" in full.json_body["error"]
        assert len(service.list_instances("acme")) == LIMIT

        other = post(client, {"company_id": "globex", "provider": "whatsappweb"})
        assert other.status_code == 200, "another company is not held back by acme's limit"
        assert other.json_body["process_result"]["details"]["ports"]["api"] not in ports

        lowest = min(created, key=lambda i: i.ports["api"])
        assert client.http.delete(f"/api/v1/instances/{lowest.id}").status_code == 200
        again = post(client, {"company_id": "acme", "provider": "whatsappweb"})
        assert again.status_code == 200
        assert again.json_body["process_result"]["details"]["ports"] == lowest.ports, "the freed port is reused"
    assert len(service.list_instances("acme")) == LIMIT
    assert lease(aws, "company#acme")["used_slots"] == LIMIT


def test_creates_stop_when_every_port_in_the_range_is_taken(aws, monkeypatch):
    monkeypatch.setenv("INSTANCE_PORT_RANGE", "8080-8081")
    wiring.reset()
    first, second = creator("acme")(), creator("globex")()
    with pytest.raises(InstanceManagerError) as exhausted:
        creator("initech")()

    assert (first.ports, second.ports) == ({"api": 8080}, {"api": 8081})
    assert (exhausted.value.code, exhausted.value.http_status) == (ErrorCode.PORTS_EXHAUSTED, 409)
    assert "INSTANCE_PORT_RANGE" in exhausted.value.message
    assert wiring.container().instances.list_instances("initech") == []


def telegram_creator(company_id: str, token: str) -> Callable[[], Instance]:
    body = {"company_id": company_id, "provider": "telegram", "config": {"bot_token": token}}
    return lambda: wiring.container().instances.create(body)


def test_two_concurrent_creates_with_one_bot_token_give_one_instance_and_one_409(aws, serialized_moto):
    token = "424242:AAconcurrentCreatesShareThisToken"
    results = run_concurrently([telegram_creator("acme", token), telegram_creator("globex", token)])

    created = [r for r in results if isinstance(r, Instance)]
    refused = [r for r in results if isinstance(r, InstanceManagerError)]
    assert len(created) == 1
    assert [(e.code, e.http_status) for e in refused] == [(ErrorCode.BOT_TOKEN_IN_USE, 409)]
    assert created[0].id in refused[0].message, "the message names the instance that holds the token"
    loser = "globex" if created[0].company_id == "acme" else "acme"
    service = wiring.container().instances
    assert service.list_instances(loser) == [], "the refused create wrote nothing"
    assert lease(aws, f"company#{loser}").get("used_slots", 0) == 0
    assert set(lease(aws, "ports")["used"]) == set(created[0].ports.values())
    claims = [item for item in boto3.resource("dynamodb").Table(aws["LEASES_TABLE"]).scan()["Items"]
              if str(item["lease_id"]).startswith("bot-token#")]
    assert [claim["owner"] for claim in claims] == [created[0].id]

    service.delete(created[0].id)
    again = telegram_creator(loser, token)()
    assert again.secrets == {"bot_token": token}, "deleting the holder freed its token"
