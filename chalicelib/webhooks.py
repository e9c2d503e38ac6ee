"""Webhook fan-out: turns a batch of SQS records (event envelopes) into signed POSTs.

Per record: the instance's webhook and subscriptions decide whether it goes out at all; the rate
limiter may defer it; then one POST, signed per Standard Webhooks, redirects not followed. A failure
is retried by making the record invisible for a while (exponential backoff with jitter, or the
receiver's Retry-After on 429/503) and reporting it in `batchItemFailures`, so the rest of the batch
is not delivered again. Events of one chat share a FIFO message group; once one of them fails, the
later ones of that group in the batch are handed back untouched, so the chat's order holds. A
4xx other than 408/429, or an event older than the maximum age, goes to the dead-letter queue.
Every outcome is written to the delivery log."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from .core import signing
from .core.errors import InstanceManagerError
from .core.events import Envelope, encode
from .core.types import Instance, utc_now
from .core.urls import AddressPolicy, HttpUrl, parse_http_url
from .instance_log import InstanceLog
from .outbound import PostResult
from .ports import DeliveryLog, InstanceRepository, RateLimiter

SOURCE = "webhook"
MAX_BACKOFF_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200  # SQS's ceiling
RECEIVE_BACKSTOP = 900  # the queue's maxReceiveCount is 1000: we move it ourselves first, with a record


class Poster(Protocol):
    def __call__(self, url: HttpUrl, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
        """POST to an address the URL policy checked, without following redirects, verifying TLS."""


class Queue(Protocol):
    def retry_later(self, receipt_handle: str, seconds: int) -> None: ...

    def dead_letter(self, event: Envelope, reason: str) -> None: ...


def check_webhook_url(url: str, allow_private: bool) -> None:
    """At configuration time, for a URL that parse_webhook has made canonical."""
    AddressPolicy(allow_private).check_configured(parse_http_url(url, "api_webhook_schema.url"),
                                                  "api_webhook_schema.url")


def backoff_seconds(attempt: int, base: int) -> int:
    """Exponential with jitter: base, 2*base, 4*base... capped, each +-20%."""
    delay = min(MAX_BACKOFF_SECONDS, base * (2 ** max(0, attempt - 1)))
    return max(1, int(delay * random.uniform(0.8, 1.2)))


def retry_after_seconds(value: str | None, now: datetime) -> int | None:
    """Retry-After as seconds or as an HTTP date."""
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    try:
        return max(0, int((parsedate_to_datetime(value) - now).total_seconds()))
    except (TypeError, ValueError):
        return None


def is_retryable(status: int | None) -> bool:
    return status is None or status >= 500 or status in (408, 429)


def _parse(record: dict[str, Any]) -> Envelope | None:
    try:
        event = json.loads(record["body"])
    except (ValueError, KeyError, TypeError):
        return None
    required = ("event_id", "type", "instance_id", "group", "occurred_at", "payload")
    if not isinstance(event, dict) or not all(k in event for k in required):
        return None
    return Envelope(**event)  # type: ignore[typeddict-item]


@dataclass
class WebhookDeliverer:
    repo: InstanceRepository
    log: InstanceLog
    deliveries: DeliveryLog
    limiter: RateLimiter
    queue: Queue
    post: Poster
    timeout: float = 10.0
    retry_base_seconds: int = 2
    max_age_seconds: int = 86_400
    rate_per_second: int = 100
    batch_budget_seconds: float = 40.0  # under the Lambda's timeout and the queue's visibility (60 s)
    clock: Callable[[], datetime] = utc_now
    _instances: dict[str, Instance | None] = field(default_factory=dict)

    def handle_batch(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        self._instances = {}
        started = time.monotonic()
        failures: list[dict[str, str]] = []
        held: dict[str, int] = {}  # message group -> seconds until its first failed record comes back
        for record in records:
            event = _parse(record)
            if event is None:
                continue  # not an envelope of ours: retrying cannot help
            group = event["group"]
            if group not in held and time.monotonic() - started > self.batch_budget_seconds:
                held[group] = 0  # out of time: hand it back at once, untouched, rather than be cut off mid-POST
            if group in held:  # behind an earlier event of its chat: comes back with it, in order
                self.queue.retry_later(record["receiptHandle"], held[group])
                failures.append({"itemIdentifier": record["messageId"]})
                continue
            delay = self._deliver_isolated(event, record)
            if delay is not None:
                held[group] = delay
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _deliver(self, event: Envelope, record: dict[str, Any]) -> int | None:
        """None when the record is done with (delivered, not wanted, or dead-lettered); otherwise the
        seconds after which it comes back (its visibility has been set)."""
        instance = self._instance(event["instance_id"])
        webhook = instance.webhook if instance else None
        test = event["type"] == "webhook.test"
        if instance is None or webhook is None or (not webhook.enabled and not test):
            return None
        if not test and event["type"] not in webhook.events:
            return None
        now = self.clock()
        age = (now - datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))).total_seconds()
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        if age > self.max_age_seconds or receives >= RECEIVE_BACKSTOP:
            self._dead(event, f"gave up after {int(age)} s (WEBHOOK_MAX_AGE_SECONDS {self.max_age_seconds})")
            return None
        if not self.limiter.acquire(instance.id, self.rate_per_second):
            self.deliveries.record(event, "pending", next_attempt_at=now + timedelta(seconds=1))
            self.queue.retry_later(record["receiptHandle"], 1)
            return 1
        result = self._post(instance, event)
        if result.status is not None and 200 <= result.status < 300:
            self.deliveries.record(event, "delivered", attempted=True, status=result.status)
            return None
        error = result.error or f"HTTP {result.status}"
        if not result.retryable:
            self.deliveries.record(event, "dead", attempted=True, error=error)
            self._dead(event, f"{error}: fix the webhook configuration, then retry the delivery", recorded=True)
            return None
        if not is_retryable(result.status):
            self.deliveries.record(event, "dead", attempted=True, status=result.status, error=error)
            self._dead(event, f"{error}: not retried (only 408, 429 and 5xx are)", recorded=True)
            return None
        delay = backoff_seconds(receives, self.retry_base_seconds)
        if result.status in (429, 503):
            delay = retry_after_seconds(result.retry_after, now) or delay
        return self._retry(event, record, error, delay, status=result.status)

    def _retry(self, event: Envelope, record: dict[str, Any], error: str, delay: int, status: int | None) -> int:
        delay = min(delay, MAX_VISIBILITY_SECONDS)
        attempts = self.deliveries.record(event, "failed", attempted=True, status=status, error=error,
                                          next_attempt_at=self.clock() + timedelta(seconds=delay))
        self.log.write(event["instance_id"], "warn", f"Webhook delivery {event['event_id']} failed (attempt "
                       f"{attempts}): {error}; retrying in {delay} s", SOURCE)
        self.queue.retry_later(record["receiptHandle"], delay)
        return delay

    def _deliver_isolated(self, event: Envelope, record: dict[str, Any]) -> int | None:
        """Whatever one record raises is that record's failure, recorded and retried, never the batch's."""
        try:
            return self._deliver(event, record)
        except Exception as exc:
            error = f"delivery failed inside the service: {type(exc).__name__}: {exc}"
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            delay = backoff_seconds(receives, self.retry_base_seconds)
            try:
                return self._retry(event, record, error, delay, status=None)
            except Exception:  # the delivery log or the queue is down too: SQS brings it back after its timeout
                print(f"[webhook] {event['event_id']}: {error}; could not record it", file=sys.stderr, flush=True)
                return delay

    def _post(self, instance: Instance, event: Envelope) -> PostResult:
        webhook = instance.webhook
        assert webhook is not None
        try:  # stored canonical; one stored before the policy was strict may not parse
            url = parse_http_url(webhook.url, "webhook url")
        except InstanceManagerError as exc:
            return PostResult(None, f"refused by the URL policy: {exc.message}", retryable=False)
        body = encode(event["payload"])
        secrets_in_use = instance.signing.in_use(self.clock()) if instance.signing else []
        ours = {
            "Content-Type": "application/json",
            **(signing.headers(secrets_in_use, event["event_id"], body) if secrets_in_use else {}),
        }
        taken = {name.lower() for name in ours}
        custom = {name: value for name, value in webhook.headers.items() if name.lower() not in taken}
        return self.post(url, body, {**custom, **ours}, self.timeout)

    def _dead(self, event: Envelope, reason: str, recorded: bool = False) -> None:
        if not recorded:
            self.deliveries.record(event, "dead", error=reason)
        self.queue.dead_letter(event, reason)
        self.log.write(event["instance_id"], "error", f"Webhook delivery {event['event_id']} moved to the dead-letter "
                       f"queue: {reason}. Retry it with POST .../deliveries/{event['event_id']}/retry", SOURCE)

    def _instance(self, instance_id: str) -> Instance | None:
        if instance_id not in self._instances:
            self._instances[instance_id] = self.repo.get(instance_id)
        return self._instances[instance_id]
