"""EventPublisher on SQS. A FIFO queue (name ending in .fifo) keeps each message group in order."""

from __future__ import annotations

import json
from typing import Any

from ..core.events import Envelope
from .outages import SQS, reaching


class SqsEventPublisher:
    def __init__(self, sqs_client: Any, queue_name: str) -> None:
        self._sqs = sqs_client
        self._queue_name = queue_name
        self._url: str | None = None

    @property
    @reaching(SQS)
    def queue_url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"])
        return self._url

    @reaching(SQS)
    def publish(self, event: Envelope, dedup_suffix: str = "") -> None:
        params: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": json.dumps(event, separators=(",", ":"))}
        if self._queue_name.endswith(".fifo"):
            params["MessageGroupId"] = event["group"][:128]
            params["MessageDeduplicationId"] = (event["event_id"] + dedup_suffix)[:128]
        self._sqs.send_message(**params)

    @reaching(SQS)
    def probe(self) -> None:
        self._sqs.get_queue_url(QueueName=self._queue_name)  # not the cached URL: the queue must still be there


class SqsDeliveryQueue:
    """The fan-out's side of the queue: defer a record, or move an event to the dead-letter queue."""

    def __init__(self, sqs_client: Any, events: SqsEventPublisher, dead_letter: SqsEventPublisher) -> None:
        self._sqs = sqs_client
        self._events = events
        self._dead_letter = dead_letter

    @reaching(SQS)
    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(QueueUrl=self._events.queue_url, ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=seconds)

    def dead_letter(self, event: Envelope, reason: str) -> None:
        self._dead_letter.publish(event, dedup_suffix=f":dead:{len(reason)}")
