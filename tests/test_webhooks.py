"""The SQS fan-out (`app.deliver_webhooks`) against real HTTP receivers on 127.0.0.1 and moto's SQS."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.core import signing
from chalicelib.core.events import Envelope, envelope
from chalicelib.core.types import iso
from chalicelib.webhooks import MAX_BACKOFF_SECONDS, RECEIVE_BACKSTOP, backoff_seconds, is_retryable, retry_after_seconds
from tests.aws import moto_environment
from tests.peers.webhook_receiver import WebhookReceiver

HEADERS = {"Authorization": "Bearer hook-header-secret", "X-Tenant": "acme"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.close()


@pytest.fixture
def other_receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/hook"


@dataclass(frozen=True)
class Queues:
    sqs: Any
    events: str
    dead: str


@pytest.fixture(scope="module")
def queues() -> Iterator[Queues]:
    """One moto deployment for the module (a deployment costs about a second), so each test reads only
    its own instances' messages (SQS allows one purge a minute). Receivers listen on 127.0.0.1, so
    private webhook URLs are allowed; retries come back after 1 s."""
    for env in moto_environment():
        os.environ.update({"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_BASE_SECONDS": "1"})  # restored after
        wiring.reset()
        sqs = boto3.client("sqs")
        yield Queues(sqs, sqs.get_queue_url(QueueName=env["EVENTS_QUEUE_NAME"])["QueueUrl"],
                     sqs.get_queue_url(QueueName=env["EVENTS_DLQ_NAME"])["QueueUrl"])
    wiring.reset()


@pytest.fixture
def client(queues: Queues) -> Iterator[Client]:
    import app

    with Client(app.app) as test_client:
        yield test_client


def create_instance(client: Client, url: str, enabled: bool = True) -> dict[str, Any]:
    # A company each: the module shares one deployment, and a company holds at most 10 instances.
    body = {"company_id": f"acme-{uuid.uuid4().hex[:8]}", "provider": "whatsappweb",
            "api_webhook_schema": {"url": url, "headers": HEADERS, "enabled": enabled}}
    response = client.http.post("/api/v1/instances", headers={"Content-Type": "application/json"}, body=json.dumps(body))
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def seed_message(instance_id: str, chat: str = "1234567890@c.us", **changes: Any) -> Envelope:
    """The seed's webhook payload, published the way the provider runtime publishes it."""
    payload = {"instance_id": instance_id, "provider": "whatsappweb", "message": {
        "id": "message-123", "body": "Hello, World!", "fromMe": False, "timestamp": "2024-01-01T12:00:00Z",
        "contact": "John Doe (+1234567890)", "type": "text", "chatId": chat}}
    event = cast(Envelope, {**envelope("message", instance_id, payload, group=f"{instance_id}:{chat}"), **changes})
    wiring.container().publisher.publish(event)
    return event


def receive(queues: Queues, *instance_ids: str, queue_url: str | None = None) -> list[dict[str, Any]]:
    """Receive as Lambda's event source mapping does, and shape the records as Lambda hands them over;
    only the messages of the given instances (earlier tests' messages may come back meanwhile)."""
    records: list[dict[str, Any]] = []
    while messages := queues.sqs.receive_message(QueueUrl=queue_url or queues.events, MaxNumberOfMessages=10,
                                                 AttributeNames=["All"]).get("Messages", []):
        records += [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                     "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                     "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                     "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:instance-manager-events.fifo"}
                    for m in messages if json.loads(m["Body"])["instance_id"] in instance_ids]
    return records


def deliver(client: Client, records: list[dict[str, Any]]) -> list[str]:
    """Invoke the fan-out Lambda; the ids it reports as failed."""
    answer = client.lambda_.invoke("deliver_webhooks", {"Records": records}).payload
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def log_messages(client: Client, instance_id: str) -> list[str]:
    return [line["message"] for line in client.http.get(f"/api/v1/instances/{instance_id}/logs").json_body["data"]["logs"]]


def test_a_message_arrives_as_the_seed_payload_with_the_configured_headers(client, queues, receiver):
    created = create_instance(client, receiver.url)
    event = seed_message(created["instance_id"])

    assert deliver(client, receive(queues, created["instance_id"])) == []

    [(path, headers, body)] = receiver.posts
    assert path == "/hook"
    assert json.loads(body) == event["payload"]
    assert set(json.loads(body)["message"]) >= {"id", "body", "fromMe", "timestamp", "contact", "type", "chatId"}
    assert headers["Content-Type"] == "application/json"
    assert (headers["Authorization"], headers["X-Tenant"]) == (HEADERS["Authorization"], HEADERS["X-Tenant"])
    secret = created["process_result"]["details"].get("webhook_secret")
    if secret:  # signed per Standard Webhooks when the instance has a signing secret
        assert headers["webhook-id"] == event["event_id"]
        assert signing.verify(secret, headers, body)


def test_a_disabled_webhook_is_not_called_and_not_a_failure(client, queues, receiver):
    instance_id = create_instance(client, receiver.url, enabled=False)["instance_id"]
    seed_message(instance_id)

    assert deliver(client, receive(queues, instance_id)) == []
    assert receiver.posts == []


@pytest.mark.parametrize("failure", ["answers 500", "is down"])
def test_a_failed_delivery_is_retried_alone_and_later(client, queues, receiver, other_receiver, failure):
    if failure == "answers 500":
        receiver.status = 500
        failing = create_instance(client, receiver.url)["instance_id"]
    else:
        failing = create_instance(client, closed_port_url())["instance_id"]
    healthy = create_instance(client, other_receiver.url)["instance_id"]
    seed_message(failing)
    seed_message(healthy)
    records = receive(queues, failing, healthy)
    assert len(records) == 2
    [failing_id] = [r["messageId"] for r in records if json.loads(r["body"])["instance_id"] == failing]

    failed = deliver(client, records)

    assert failed == [failing_id]
    assert len(other_receiver.posts) == 1
    assert receive(queues, failing, healthy) == [], "both are in flight: the visibility timeout is the queue's 60 s"
    time.sleep(1.3)  # the failed one was made visible again after its backoff (1 s here)
    [again] = receive(queues, failing, healthy)
    assert again["messageId"] == failing_id
    assert again["attributes"]["ApproximateReceiveCount"] == "2"

    lines = [m for m in log_messages(client, failing) if "Webhook delivery" in m]
    assert lines and ("HTTP 500" in lines[-1] if failure == "answers 500" else "Connection refused" in lines[-1])
    assert all(HEADERS["Authorization"] not in m and "hook-header-secret" not in m for m in log_messages(client, failing))


def test_a_refusal_the_receiver_means_goes_to_the_dead_letter_queue(client, queues, receiver):
    receiver.status = 404
    instance_id = create_instance(client, receiver.url)["instance_id"]
    event = seed_message(instance_id)

    assert deliver(client, receive(queues, instance_id)) == [], "not retried: SQS may delete it"
    [dead] = receive(queues, instance_id, queue_url=queues.dead)
    assert json.loads(dead["body"])["event_id"] == event["event_id"]
    assert any("dead-letter" in m for m in log_messages(client, instance_id))


@pytest.mark.parametrize("hopeless", ["too old", "received too often"])
def test_hopeless_events_go_to_the_dead_letter_queue_without_a_post(client, queues, receiver, hopeless):
    instance_id = create_instance(client, receiver.url)["instance_id"]
    old = iso(datetime.now(UTC) - timedelta(days=2)) or ""
    event = seed_message(instance_id, occurred_at=old) if hopeless == "too old" else seed_message(instance_id)
    records = receive(queues, instance_id)
    if hopeless == "received too often":
        records[0]["attributes"]["ApproximateReceiveCount"] = str(RECEIVE_BACKSTOP)

    assert deliver(client, records) == []
    assert receiver.posts == []
    assert [json.loads(r["body"])["event_id"] for r in receive(queues, instance_id, queue_url=queues.dead)] == [
        event["event_id"]]


def test_the_fan_out_dead_letters_before_sqs_redrives_silently(queues):
    attributes = queues.sqs.get_queue_attributes(QueueUrl=queues.events, AttributeNames=["All"])["Attributes"]
    dead_arn = queues.sqs.get_queue_attributes(QueueUrl=queues.dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.loads(attributes["RedrivePolicy"])
    template = (Path(__file__).parent.parent / "infra" / "resources.yaml").read_text()
    default = re.search(r"WebhookReceiveBackstop:\s*\n\s*Type: Number\s*\n\s*Default: (\d+)", template)

    assert policy["deadLetterTargetArn"] == dead_arn
    assert default is not None and int(policy["maxReceiveCount"]) == int(default.group(1))
    assert int(policy["maxReceiveCount"]) > RECEIVE_BACKSTOP


# --- retry timing -------------------------------------------------------------------------


@pytest.mark.parametrize("base", [1, 2, 5])
def test_backoff_doubles_with_jitter_and_is_capped(base):
    for attempt in range(1, 16):
        nominal = min(MAX_BACKOFF_SECONDS, base * 2 ** (attempt - 1))
        samples = [backoff_seconds(attempt, base) for _ in range(50)]
        assert all(max(1, int(nominal * 0.8)) <= s <= max(1, int(nominal * 1.2)) for s in samples), (attempt, samples)
    assert max(backoff_seconds(40, base) for _ in range(50)) <= MAX_BACKOFF_SECONDS * 1.2
    assert sum(backoff_seconds(5, base) for _ in range(50)) > sum(backoff_seconds(2, base) for _ in range(50))


def test_retry_after_is_read_as_seconds_or_a_date():
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 01 Jan 2024 12:01:00 GMT", now) == 60
    assert retry_after_seconds("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.mark.parametrize(("status", "retried"), [(None, True), (500, True), (503, True), (408, True), (429, True),
                                                 (400, False), (401, False), (404, False), (410, False)])
def test_which_answers_are_retried(status, retried):
    assert is_retryable(status) is retried


@pytest.mark.parametrize("headers", [{"X-Euro": "price \u20ac"}, {"X-Evil\n": "v"}, {"X-Split": "a\r\nInjected: 1"}])
def test_a_poison_header_stored_before_validation_fails_its_own_record_never_the_batch(client, queues, receiver,
                                                                                       other_receiver, headers):
    """Headers are validated when set now; one stored earlier (or anything else one record raises) is that
    record's failure: recorded in the delivery log and the instance's log, retried, and the batch goes on."""
    from chalicelib.core.types import WebhookConfig

    poisoned = create_instance(client, receiver.url)["instance_id"]
    healthy = create_instance(client, other_receiver.url)["instance_id"]
    wiring.container().repository.set_webhook(poisoned, WebhookConfig(receiver.url, headers, True))
    bad, good = seed_message(poisoned), seed_message(healthy)
    records = receive(queues, poisoned, healthy)
    [poisoned_id] = [r["messageId"] for r in records if json.loads(r["body"])["instance_id"] == poisoned]

    assert deliver(client, records) == [poisoned_id]
    assert len(other_receiver.posts) == 1 and receiver.posts == []
    record = client.http.get(f"/api/v1/instances/{poisoned}/deliveries/{bad['event_id']}").json_body["data"]
    assert record["state"] == "failed" and "delivery failed inside the service" in record["last_error"]
    assert client.http.get(f"/api/v1/instances/{healthy}/deliveries/{good['event_id']}").json_body["data"]["state"] \
        == "delivered"
    assert any(f"Webhook delivery {bad['event_id']} failed" in m for m in log_messages(client, poisoned))


def test_an_ambiguous_url_stored_before_the_policy_is_dead_lettered_unsent(client, queues, receiver):
    from chalicelib.core.types import WebhookConfig

    instance_id = create_instance(client, receiver.url)["instance_id"]
    port = receiver.url.split(":")[2].split("/")[0]
    stored = f"http://127.0.0.1:{port}\\@hooks.example.com/hook"
    wiring.container().repository.set_webhook(instance_id, WebhookConfig(stored, {}, True))
    event = seed_message(instance_id)

    assert deliver(client, receive(queues, instance_id)) == []
    assert receiver.posts == []
    record = client.http.get(f"/api/v1/instances/{instance_id}/deliveries/{event['event_id']}").json_body["data"]
    assert record["state"] == "dead" and "backslash" in record["last_error"]
    assert [json.loads(r["body"])["event_id"] for r in receive(queues, instance_id, queue_url=queues.dead)] == [
        event["event_id"]]
