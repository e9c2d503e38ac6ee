"""EventPublisher on SQS."""

from __future__ import annotations

import json
from typing import Any


class SqsEventPublisher:
    def __init__(self, sqs_client: Any, queue_name: str) -> None:
        self._sqs = sqs_client
        self._queue_name = queue_name
        self._url: str | None = None

    @property
    def queue_url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"])
        return self._url

    def publish(self, event: dict[str, Any]) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(event, separators=(",", ":")))
