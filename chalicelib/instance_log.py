"""An instance's log: lines go to the log store, their count to the instance record, secrets never."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .core.types import LogLine, iso, utc_now
from .ports import LogStore

# Shapes of secrets that could slip into a message even when nobody registered them.
_TOKEN_SHAPES = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{30,}\b")
MASK = "***"


class Redactor:
    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = {s for s in known if s and len(s) >= 4}

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4:
            self._known.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._known, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _TOKEN_SHAPES.sub(MASK, text)


class InstanceLog:
    def __init__(self, store: LogStore, count_lines: Callable[[str, int], None], redactor: Redactor | None = None) -> None:
        self._store = store
        self._count_lines = count_lines
        self.redact = redactor or Redactor()
        self._local = threading.local()

    def line(self, level: str, message: str, source: str) -> LogLine:
        return LogLine(timestamp=iso(utc_now()) or "", level=level, message=self.redact(message), source=source)

    def write(self, instance_id: str, level: str, message: str, source: str) -> None:
        buffer = getattr(self._local, "buffers", {}).get(instance_id)
        if buffer is not None:
            buffer.append(self.line(level, message, source))
        else:
            self.write_many(instance_id, [self.line(level, message, source)])

    @contextmanager
    def batched(self, instance_id: str) -> Iterator[None]:
        """The lines one use case writes go out together: one PutLogEvents and one counter update."""
        buffers: dict[str, list[LogLine]] = self._local.__dict__.setdefault("buffers", {})
        if instance_id in buffers:
            yield
            return
        buffers[instance_id] = []
        try:
            yield
        finally:
            self.write_many(instance_id, buffers.pop(instance_id))

    def write_many(self, instance_id: str, lines: list[LogLine]) -> None:
        if not lines:
            return
        self._store.append(instance_id, lines)
        self._count_lines(instance_id, len(lines))

    def tail(self, instance_id: str, count: int) -> list[LogLine]:
        return self._store.tail(instance_id, count)

    def forget(self, instance_id: str) -> None:
        self._store.delete(instance_id)
