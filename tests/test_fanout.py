"""The webhook fan-out against moto's SQS and DynamoDB and a real HTTP receiver: signatures, retries,
Retry-After, dead-lettering, per-chat order, the rate limit, truncation and the delivery log."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.core import signing
from chalicelib.core.events import Envelope, envelope, fit_payload
from chalicelib.core.types import iso, utc_now
from tests.peers.webhook_receiver import WebhookReceiver

TOKEN = "123456:AAHfanoutTestsOnly"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.close()


@pytest.fixture
def fanout(aws: dict[str, str], receiver: WebhookReceiver) -> Iterator[dict[str, Any]]:
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "true"
    wiring.reset()
    c = wiring.container()
    created = c.instances.create({
        "company_id": "fanout", "provider": "telegram", "config": {"bot_token": TOKEN},
        "api_webhook_schema": {"url": receiver.url, "headers": {"Authorization": "Bearer custom"}},
    })
    yield {"c": c, "instance": created, "sqs": c.client("sqs")}


def publish(fanout: dict[str, Any], chat: str, body: str, kind: str = "message", age: timedelta | None = None) -> Envelope:
    instance = fanout["instance"]
    payload = {"instance_id": instance.id, "provider": "telegram",
               "message": {"id": f"{chat}:{body}", "body": body, "fromMe": False, "timestamp": iso(utc_now()),
                           "contact": "Alice (@alice)", "type": "text", "chatId": chat}}
    event = envelope(kind, instance.id, payload, group=f"{instance.id}:{chat}")
    if age is not None:
        event = Envelope(**{**event, "occurred_at": iso(utc_now() - age) or ""})
    fanout["c"].publisher.publish(event)
    return event


def receive(fanout: dict[str, Any], queue_url: str | None = None) -> list[dict[str, Any]]:
    """What Lambda would hand the handler: a batch of records with real receipt handles."""
    url = queue_url or fanout["c"].publisher.queue_url
    answer = fanout["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {})} for m in answer.get("Messages", [])]


def deliver(fanout: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    import app

    result = app.deliver_webhooks({"Records": [{**r, "eventSource": "aws:sqs", "messageAttributes": {},
                                                 "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                                                 "awsRegion": "us-east-1"} for r in records]}, None)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    for record in records:  # as Lambda does with ReportBatchItemFailures: the rest is deleted
        if record["messageId"] not in failed:
            fanout["sqs"].delete_message(QueueUrl=fanout["c"].publisher.queue_url, ReceiptHandle=record["receiptHandle"])
    return failed


def delivery(fanout: dict[str, Any], event: Envelope) -> dict[str, Any]:
    return dict(fanout["c"].webhook_settings.get(fanout["instance"].id, event["event_id"]))


def test_a_delivery_is_signed_with_the_instance_secret_and_keeps_custom_headers(fanout, receiver):
    event = publish(fanout, "1001", "hello")
    assert deliver(fanout, receive(fanout)) == []
    _, headers, body = receiver.posts[0]
    secret = fanout["instance"].signing.current
    assert headers["webhook-id"] == event["event_id"]
    assert signing.verify(secret, headers, body)
    assert headers["Authorization"] == "Bearer custom" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == event["payload"]
    assert delivery(fanout, event)["state"] == "delivered" and delivery(fanout, event)["attempts"] == 1


def test_a_rotated_secret_signs_alongside_the_new_one(fanout, receiver):
    old = fanout["instance"].signing.current
    rotated = fanout["c"].webhook_settings.rotate_secret(fanout["instance"].id)
    publish(fanout, "1001", "after rotation")
    deliver(fanout, receive(fanout))
    _, headers, body = receiver.posts[0]
    assert signing.verify(old, headers, body) and signing.verify(rotated["webhook_secret"], headers, body)


def test_a_5xx_is_retried_later_and_recorded(fanout, receiver):
    receiver.plan = [(500, {})]
    event = publish(fanout, "1001", "retry me")
    records = receive(fanout)
    assert deliver(fanout, records) == [records[0]["messageId"]]
    record = delivery(fanout, event)
    assert record["state"] == "failed" and record["last_status"] == 500 and record["attempts"] == 1
    assert record["next_attempt_at"] is not None
    assert receive(fanout) == []  # invisible until its retry time
    logs = [line["message"] for line in fanout["c"].instances.logs(fanout["instance"].id, 100)[0]]
    assert any("failed (attempt 1)" in line for line in logs) and all("Bearer custom" not in line for line in logs)


def test_retry_after_is_honoured_on_429(fanout, receiver):
    receiver.plan = [(429, {"Retry-After": "120"})]
    event = publish(fanout, "1001", "slow down")
    deliver(fanout, receive(fanout))
    record = delivery(fanout, event)
    due = datetime.fromisoformat(record["next_attempt_at"].replace("Z", "+00:00")) - utc_now()
    assert timedelta(seconds=110) < due <= timedelta(seconds=121)


def test_a_refusing_4xx_goes_to_the_dead_letter_queue_and_can_be_retried(fanout, receiver):
    receiver.plan = [(400, {})]
    event = publish(fanout, "1001", "refused")
    assert deliver(fanout, receive(fanout)) == []  # done with: not retried by SQS
    assert delivery(fanout, event)["state"] == "dead"
    dead = receive(fanout, fanout["sqs"].get_queue_url(QueueName=os.environ["EVENTS_DLQ_NAME"])["QueueUrl"])
    assert [json.loads(r["body"])["event_id"] for r in dead] == [event["event_id"]]
    dead_list = fanout["c"].webhook_settings.list(fanout["instance"].id, "dead", None)
    assert [d["id"] for d in dead_list] == [event["event_id"]]

    fanout["c"].webhook_settings.retry(fanout["instance"].id, event["event_id"])
    assert delivery(fanout, event)["state"] == "pending"
    assert deliver(fanout, receive(fanout)) == []
    assert delivery(fanout, event)["state"] == "delivered"
    assert receiver.posts[-1].headers["webhook-id"] == event["event_id"]  # the same id: a receiver can dedupe


def test_an_event_past_its_maximum_age_is_dead_lettered_without_a_post(fanout, receiver):
    event = publish(fanout, "1001", "too old", age=timedelta(hours=25))
    assert deliver(fanout, receive(fanout)) == []
    assert receiver.posts == [] and delivery(fanout, event)["state"] == "dead"
    assert "WEBHOOK_MAX_AGE_SECONDS" in delivery(fanout, event)["last_error"]


def test_a_failed_event_holds_back_the_rest_of_its_chat_but_not_other_chats(fanout, receiver):
    receiver.plan = [(503, {})]
    first = publish(fanout, "1001", "first")
    publish(fanout, "1001", "second")
    other = publish(fanout, "2002", "other chat")
    records = receive(fanout)
    groups = [json.loads(r["body"])["group"] for r in records]
    assert len(records) == 3, groups
    failed = deliver(fanout, records)
    assert len(failed) == 2  # first (503) and second (held back, never posted)
    assert [b["message"]["body"] for b in receiver.bodies()] == ["first", "other chat"]
    assert delivery(fanout, first)["state"] == "failed" and delivery(fanout, other)["state"] == "delivered"


def test_the_rate_limit_defers_the_excess_without_dropping_it(fanout, receiver):
    os.environ["WEBHOOK_RATE_PER_SECOND"] = "2"
    wiring.reset()
    events = [publish(fanout, str(3000 + n), f"burst {n}") for n in range(5)]
    records = receive(fanout)
    failed = deliver(fanout, records)
    sent = len(receiver.posts)
    assert sent + len(failed) == 5
    assert 2 <= sent <= 4  # 2 a second; 4 only if the batch straddled a second boundary
    states = sorted(delivery(fanout, e)["state"] for e in events)
    assert states == sorted(["delivered"] * sent + ["pending"] * (5 - sent))
    deferred = [e for e in events if delivery(fanout, e)["state"] == "pending"]
    assert all(delivery(fanout, e)["attempts"] == 0 for e in deferred)


def test_a_disabled_webhook_gets_no_messages_but_a_test_event_still_goes(fanout, receiver):
    settings = fanout["c"].webhook_settings
    settings.update(fanout["instance"].id, {"enabled": False})
    publish(fanout, "1001", "not sent")
    test = settings.send_test(fanout["instance"].id)
    assert deliver(fanout, receive(fanout)) == []
    assert [b.get("event") for b in receiver.bodies()] == ["webhook.test"]
    assert receiver.posts[0].headers["webhook-id"] == test["delivery_id"]


def test_opt_in_events_are_filtered_by_subscription(fanout, receiver):
    publish(fanout, "status", "ignored", kind="instance.status")
    deliver(fanout, receive(fanout))
    assert receiver.posts == []
    fanout["c"].webhook_settings.update(fanout["instance"].id, {"events": ["message", "instance.status"]})
    publish(fanout, "status", "wanted", kind="instance.status")
    deliver(fanout, receive(fanout))
    assert len(receiver.posts) == 1


def test_redirects_are_not_followed(fanout, receiver):
    receiver.plan = [(302, {"Location": "http://169.254.169.254/latest/meta-data"})]
    event = publish(fanout, "1001", "redirected")
    deliver(fanout, receive(fanout))
    assert len(receiver.posts) == 1 and delivery(fanout, event)["last_status"] == 302


def test_private_addresses_are_refused_at_delivery_unless_allowed(fanout, receiver):
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "false"
    wiring.reset()
    event = publish(fanout, "1001", "to loopback")
    assert deliver(fanout, receive(fanout)) == []  # an address literal cannot change: dead-lettered, not retried
    record = delivery(fanout, event)
    assert receiver.posts == [] and record["state"] == "dead"
    assert "non-public address (127.0.0.1)" in record["last_error"]


def test_a_payload_over_1_mb_is_cut_with_a_flag() -> None:
    payload = {"instance_id": "i", "provider": "telegram", "message": {"id": "1", "body": "x" * 1_500_000}}
    fitted = fit_payload(payload)
    assert len(json.dumps(fitted).encode()) <= 1_000_000
    assert fitted["message"]["truncated"] is True and fitted["message"]["original_size"] == 1_500_000


def test_webhook_configuration_is_validated(fanout):
    from chalicelib.core.errors import InstanceManagerError

    settings = fanout["c"].webhook_settings
    for bad in ({"url": "ftp://x"}, {"events": ["nope"]}, {"headers": {"webhook-signature": "v1,forged"}},
                {"enabled": "yes"}, {"colour": "red"}):
        with pytest.raises(InstanceManagerError) as error:
            settings.update(fanout["instance"].id, bad)
        assert error.value.code == "VALIDATION_ERROR"
    assert settings.view(fanout["instance"].id)["webhook"]["events"] == ["message"]


def test_a_batch_out_of_time_hands_the_rest_back_at_once_untouched(fanout, receiver):
    publish(fanout, "1001", "late one")
    publish(fanout, "2002", "late two")
    fanout["c"].webhooks.batch_budget_seconds = -1.0  # already out of time
    records = receive(fanout)
    assert len(deliver(fanout, records)) == 2 and receiver.posts == []
    again = receive(fanout)  # visible again at once, not after the visibility timeout
    assert sorted(json.loads(r["body"])["payload"]["message"]["body"] for r in again) == ["late one", "late two"]


def test_delivery_log_entries_expire_through_dynamodb_ttl(fanout, receiver):
    event = publish(fanout, "1001", "kept for a week")
    deliver(fanout, receive(fanout))
    table = fanout["c"].tables.deliveries
    item = table.get(fanout["instance"].id, event["event_id"])
    assert timedelta(days=6, hours=23) < item.expires_at - utc_now() <= timedelta(days=7)
    # moto's CloudFormation does not apply TimeToLiveSpecification; the template AWS gets does.
    from tests.infra.templates import resources_template

    table_properties = resources_template()["Resources"]["DeliveriesTable"]["Properties"]
    assert table_properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
