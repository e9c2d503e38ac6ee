"""The webhook delivery log and the per-instance rate limiter, on DynamoDB."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from ..core.events import Envelope, fit_payload
from ..core.types import iso, utc_now
from .dynamo import Tables
from .outages import DYNAMODB, reaching

MAX_STORED_ENVELOPE = 300_000  # DynamoDB items stop at 400 KB


def _pack(event: Envelope) -> bytes:
    packed = zlib.compress(json.dumps(event).encode())
    if len(packed) > MAX_STORED_ENVELOPE:
        cut = Envelope(**{**event, "payload": fit_payload(event["payload"], MAX_STORED_ENVELOPE)})
        packed = zlib.compress(json.dumps(cut).encode())
    return packed


class DynamoDeliveryLog:
    def __init__(self, tables: Tables, retention_days: int) -> None:
        self._m = tables.deliveries
        self._retention = timedelta(days=retention_days)

    @reaching(DYNAMODB)
    def record(self, event: Envelope, state: str, *, attempted: bool = False, status: int | None = None,
               error: str | None = None, next_attempt_at: datetime | None = None) -> int:
        """Write the delivery's new state; returns its number of attempts so far."""
        m, now = self._m, utc_now()
        item = m(event["instance_id"], event["event_id"])
        actions = [
            m.state.set(state),
            m.instance_state.set(f"{event['instance_id']}#{state}"),
            m.event_type.set(event["type"]),
            m.envelope_z.set(m.envelope_z | _pack(event)),
            m.created_at.set(m.created_at | now),
            m.updated_at.set(now),
            m.expires_at.set(now + self._retention),
            m.attempts.add(1 if attempted else 0),
        ]
        if status is not None:
            actions.append(m.last_status.set(status))
        if error is not None:
            actions.append(m.last_error.set(error[:1000]))
        actions.append(m.next_attempt_at.set(next_attempt_at) if next_attempt_at else m.next_attempt_at.remove())
        item.update(actions=actions)
        return int(item.attempts or 0)

    @reaching(DYNAMODB)
    def list(self, instance_id: str, state: str | None, limit: int) -> list[dict[str, Any]]:
        if state:
            items = self._m.by_state.query(f"{instance_id}#{state}", scan_index_forward=False, limit=limit)
        else:
            items = self._m.query(instance_id, scan_index_forward=False, limit=limit)
        return [self._view(item) for item in items]

    @reaching(DYNAMODB)
    def get(self, instance_id: str, delivery_id: str) -> tuple[dict[str, Any], Envelope] | None:
        try:
            item = self._m.get(instance_id, delivery_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._view(item), json.loads(zlib.decompress(item.envelope_z))

    @reaching(DYNAMODB)
    def forget(self, instance_id: str) -> None:
        with self._m.batch_write() as batch:
            for item in self._m.query(instance_id, attributes_to_get=["instance_id", "delivery_id"]):
                batch.delete(item)

    @staticmethod
    def _view(item: Any) -> dict[str, Any]:
        return {
            "id": item.delivery_id,
            "event": item.event_type,
            "state": item.state,
            "attempts": int(item.attempts or 0),
            "last_status": int(item.last_status) if item.last_status is not None else None,
            "last_error": item.last_error,
            "next_attempt_at": iso(item.next_attempt_at),
            "created_at": iso(item.created_at),
            "updated_at": iso(item.updated_at),
        }


class DynamoRateLimiter:
    """At most `limit` deliveries per instance and wall-clock second, across every concurrent Lambda."""

    def __init__(self, tables: Tables) -> None:
        self._m = tables.deliveries

    @reaching(DYNAMODB)
    def acquire(self, instance_id: str, limit: int) -> bool:
        m, now = self._m, utc_now()
        second = int(now.timestamp())
        item = m(f"rate#{instance_id}", str(second))
        try:
            item.update(actions=[m.hits.add(1), m.expires_at.set(now + timedelta(minutes=5))],
                        condition=m.hits.does_not_exist() | (m.hits < limit))
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
