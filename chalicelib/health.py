"""The deep health check: every backend probed at once, the answer bounded by a deadline.

A probe runs in its own daemon thread, so one that hangs past the deadline is reported as
unavailable and left to its client's own timeouts, never waited for. Standard library only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

from .core.errors import InstanceManagerError

DEADLINE_SECONDS = 3.0


class BackendStatus(TypedDict):
    name: str
    status: Literal["ok", "unavailable"]
    latency_ms: int
    error: NotRequired[str]


@dataclass(frozen=True)
class Backend:
    key: str  # e.g. "dynamodb": the answer's key
    name: str  # e.g. "DynamoDB": what a person reads
    probe: Callable[[], None]  # raises when the backend cannot serve


def check_backends(backends: Sequence[Backend], deadline: float = DEADLINE_SECONDS,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, BackendStatus]:
    results: dict[str, BackendStatus] = {}
    finished = threading.Condition()

    def run(backend: Backend) -> None:
        started = clock()
        try:
            backend.probe()
            status = BackendStatus(name=backend.name, status="ok", latency_ms=_millis(clock() - started))
        except Exception as exc:
            status = BackendStatus(name=backend.name, status="unavailable", latency_ms=_millis(clock() - started),
                                   error=_describe(exc))
        with finished:
            results[backend.key] = status
            finished.notify_all()

    for backend in backends:
        threading.Thread(target=run, args=(backend,), name=f"health-{backend.key}", daemon=True).start()
    with finished:
        finished.wait_for(lambda: len(results) == len(backends), timeout=deadline)
        answered = dict(results)
    return {b.key: answered.get(b.key) or BackendStatus(name=b.name, status="unavailable", latency_ms=_millis(deadline),
                                                        error=f"no answer within {deadline:g} s")
            for b in backends}


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _describe(exc: Exception) -> str:
    if isinstance(exc, InstanceManagerError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:300]
