"""moto in server mode, with its DynamoDB and CloudWatch Logs state and the messages waiting in its
SQS queues kept in DATA_DIR across restarts (moto keeps nothing on disk by itself)."""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import time
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"


def keep_fifo_order() -> None:
    """moto (5.2.5) releases a FIFO group's timed-out in-flight messages one at a time while it walks
    the queue, and during a long poll it never looks at the group locks again: a later message of a
    group can go out before an earlier one that had timed out. Real SQS releases them together.
    So: release every timed-out message first, and long-poll as a series of short receives."""
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    if getattr(original, "keeps_fifo_order", False):
        return

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue:
            return original(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            for message in [m for m in queue.pending_messages if m.visible]:
                queue.pending_messages.discard(message)
            result = original(self, queue_name, count, 0, *args, **kwargs)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(0.05)

    receive_message.keeps_fifo_order = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def start_server(port: int) -> Any:
    from moto.server import ThreadedMotoServer

    keep_fifo_order()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per AWS call drowns the rest
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def _backends(region: str) -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.logs.models import logs_backends

    return {"dynamodb": dynamodb_backends[ACCOUNT][region], "logs": logs_backends[ACCOUNT][region]}


def _queues(region: str) -> dict[str, Any]:
    from moto.sqs.models import sqs_backends

    return dict(sqs_backends[ACCOUNT][region].queues)


class StateKeeper:
    """Snapshots the backends' state every few seconds and at shutdown; restores it at start."""

    def __init__(self, path: Path, region: str, interval: float = 2.0) -> None:
        self._path = path
        self._region = region
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="moto-snapshots", daemon=True)

    def restore(self) -> bool:
        """Call after the queues were created again (the SQS backend itself does not pickle)."""
        if not self._path.exists():
            return False
        with open(self._path, "rb") as f:
            saved: dict[str, dict[str, Any]] = pickle.load(f)
        for name, backend in _backends(self._region).items():
            if name in saved:
                backend.__dict__.update(saved[name])
        queues = _queues(self._region)
        for queue_name, messages in saved.get("sqs_messages", {}).items():
            if queue_name in queues:
                queues[queue_name]._messages = messages
        return True

    def snapshot(self) -> None:
        state: dict[str, Any] = {name: dict(b.__dict__) for name, b in _backends(self._region).items()}
        state["sqs_messages"] = {name: list(q._messages) for name, q in _queues(self._region).items()}
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.snapshot()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.snapshot()
            except Exception as exc:  # a write racing a snapshot: the next round catches up
                print(f"[moto] snapshot failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
