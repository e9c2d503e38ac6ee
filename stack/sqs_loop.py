"""Locally, nothing triggers Lambdas from SQS: this loop receives messages and hands them to the
same handler Lambda would call, with a Lambda SQS event, honouring batchItemFailures the way
Lambda does with ReportBatchItemFailures.

It runs as its own process (`python -m stack.sqs_loop`, started and restarted by the stack), as a
Lambda runs apart from SQS: killing it mid-batch loses nothing, the undeleted messages come back
after their visibility timeout (LOCAL_SQS_VISIBILITY_SECONDS)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("stack.sqs_loop")


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class SqsLoop(threading.Thread):
    def __init__(self, sqs: Any, queue_url: str, handler: Callable[[dict[str, Any], Any], Any], region: str,
                 visibility_seconds: int | None = None) -> None:
        super().__init__(name="sqs-loop", daemon=True)
        self._sqs = sqs
        self._url = queue_url
        self._handler = handler
        self._region = region
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._stopped = threading.Event()
        self._visibility = visibility_seconds

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep going: the messages stay in the queue
                _log.warning("%s: %s", type(exc).__name__, exc)
                self._stopped.wait(1.0)

    def poll_once(self) -> int:
        params: dict[str, Any] = {"QueueUrl": self._url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1,
                                  "AttributeNames": ["All"], "MessageAttributeNames": ["All"]}
        if self._visibility is not None:
            params["VisibilityTimeout"] = self._visibility
        answer = self._sqs.receive_message(**params)
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        result = self._handler(lambda_event(messages, self._arn, self._region), None) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def stop(self) -> None:
        self._stopped.set()


def main() -> int:
    from .console import configure_child_logging

    configure_child_logging()
    import boto3

    import app
    from chalicelib import wiring

    settings = wiring.container().settings
    sqs = boto3.session.Session(region_name=settings.region).client("sqs")
    visibility = os.environ.get("LOCAL_SQS_VISIBILITY_SECONDS")
    loop = SqsLoop(sqs, wiring.container().publisher.queue_url, app.deliver_webhooks, settings.region,
                   int(visibility) if visibility else None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop())
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
