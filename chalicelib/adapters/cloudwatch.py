"""LogStore on CloudWatch Logs: one stream per instance in one log group."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..core.types import LogLine
from .outages import LOGS, reaching

_PROBE_STREAM = "health-check"  # no instance has this id: theirs are UUIDs


class CloudWatchLogStore:
    def __init__(self, logs_client: Any, group: str) -> None:
        self._logs = logs_client
        self._group = group
        self._known_streams: set[str] = set()

    @reaching(LOGS)
    def append(self, instance_id: str, lines: list[LogLine]) -> None:
        events: list[dict[str, Any]] = [
            {"timestamp": _millis(line["timestamp"]), "message": json.dumps(line, separators=(",", ":"))}
            for line in lines
        ]
        events.sort(key=lambda e: e["timestamp"])
        try:
            self._put(instance_id, events)
        except self._logs.exceptions.ResourceNotFoundException:
            self._create_stream(instance_id)
            self._put(instance_id, events)

    def _put(self, stream: str, events: list[dict[str, Any]]) -> None:
        if stream not in self._known_streams:
            self._create_stream(stream)
        self._logs.put_log_events(logGroupName=self._group, logStreamName=stream, logEvents=events)

    def _create_stream(self, stream: str) -> None:
        try:
            self._logs.create_log_stream(logGroupName=self._group, logStreamName=stream)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._known_streams.add(stream)

    @reaching(LOGS)
    def tail(self, instance_id: str, count: int) -> list[LogLine]:
        try:
            answer = self._logs.get_log_events(
                logGroupName=self._group, logStreamName=instance_id, startFromHead=False, limit=count
            )
        except self._logs.exceptions.ResourceNotFoundException:
            return []
        return [_parse(e) for e in answer["events"]][-count:]

    @reaching(LOGS)
    def delete(self, instance_id: str) -> None:
        try:
            self._logs.delete_log_stream(logGroupName=self._group, logStreamName=instance_id)
        except self._logs.exceptions.ResourceNotFoundException:
            pass
        self._known_streams.discard(instance_id)

    @reaching(LOGS)
    def probe(self) -> None:
        """A read of a stream that does not exist (an action the roles have): its "not found" is an answer."""
        try:
            self._logs.get_log_events(logGroupName=self._group, logStreamName=_PROBE_STREAM, limit=1)
        except self._logs.exceptions.ResourceNotFoundException:
            pass


def _millis(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def _parse(event: dict[str, Any]) -> LogLine:
    try:
        data = json.loads(event["message"])
        return LogLine(timestamp=data["timestamp"], level=data["level"], message=data["message"], source=data["source"])
    except (ValueError, KeyError, TypeError):
        # A line written by something else (e.g. the container's stdout through awslogs).
        stamp = datetime.fromtimestamp(event["timestamp"] / 1000).isoformat() + "Z"
        return LogLine(timestamp=stamp, level="info", message=str(event["message"]), source="container")
