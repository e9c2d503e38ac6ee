"""moto's DynamoDB and CloudWatch Logs state and the messages waiting in its SQS queues, kept in
DATA_DIR across restarts and kills (moto keeps nothing on disk by itself).

Durable writes (the default; LOCAL_DURABLE_WRITES=false turns them off): a change moto answered is
on disk before its answer leaves (stack/moto_server.py asks `changed` for what to wait on).
- A DynamoDB or CloudWatch Logs write goes to a journal of requests, replayed through moto at the
  next start: given the same state, moto handles them the same way, and a journal record costs the
  size of the request, where a snapshot costs the size of everything stored.
- An SQS write replaces a small file holding the queues' messages: SQS changes cannot be replayed
  (message ids and receipt handles are random), and queues hold few messages.
- Every 10 s after a change, the whole state is snapshotted and the journal starts a new file (the
  old ones go once the snapshot is on disk): this bounds the replay at start, and a snapshot holds
  the lock while it pickles, so it is not taken more often than that.
Without durable writes only the periodic snapshot remains, every 2 s: a kill loses up to 2 s of writes.

One lock (`STATE_LOCK`) orders every request moto serves against the snapshots, so a snapshot never
pickles a table while a write changes it."""

from __future__ import annotations

import pickle
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .durability import Journal, journal_generations, journal_path, read_journal, replace_file

ACCOUNT = "123456789012"
STATE_LOCK = threading.RLock()
SNAPSHOT = "moto-state.pickle"
SQS_FILE = "moto-sqs.pickle"
JOURNAL = "moto-journal"
RECEIVE_PAUSE_S = 0.05


def keep_fifo_order() -> None:
    """moto (5.2.5) releases a FIFO group's timed-out in-flight messages one at a time while it walks
    the queue, and during a long poll it never looks at the group locks again: a later message of a
    group can go out before an earlier one that had timed out. Real SQS releases them together.
    So: release every timed-out message first, and long-poll as a series of short receives, each
    under STATE_LOCK (a receive changes messages; a long poll must not hold the lock while it waits)."""
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    if getattr(original, "keeps_fifo_order", False):
        return

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with STATE_LOCK:
                queue = self.get_queue(queue_name)
                if queue.fifo_queue:
                    for message in [m for m in queue.pending_messages if m.visible]:
                        queue.pending_messages.discard(message)
                result = original(self, queue_name, count, 0, *args, **kwargs)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(RECEIVE_PAUSE_S)

    receive_message.keeps_fifo_order = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def _backends(region: str) -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.logs.models import logs_backends

    return {"dynamodb": dynamodb_backends[ACCOUNT][region], "logs": logs_backends[ACCOUNT][region]}


def _queues(region: str) -> dict[str, Any]:
    from moto.sqs.models import sqs_backends

    return dict(sqs_backends[ACCOUNT][region].queues)


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with open(path, "rb") as f:
        return dict(pickle.load(f))


class StateKeeper:
    lock = STATE_LOCK

    def __init__(self, data_dir: Path, region: str, durable: bool = True, interval: float | None = None) -> None:
        self._dir = data_dir
        self._region = region
        self.durable = durable
        self._interval = interval if interval is not None else (10.0 if durable else 2.0)
        self._armed = False  # nothing is recorded before the saved state is back
        self._dirty = False
        self._journal: Journal | None = None
        self._next_generation = 0
        self._sqs_version = 0
        self._sqs_written = 0
        self._sqs_write_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="moto-snapshots", daemon=True)
        self.replayed = 0
        self.replay_failures = 0

    def restore(self, replay: Callable[[dict[str, Any]], int]) -> bool:
        """Call once the queues exist again (the SQS backend itself does not pickle). `replay` hands a
        journal record to moto and gives the HTTP status it answered."""
        with self.lock:
            saved = _load(self._dir / SNAPSHOT)
            for name, backend in _backends(self._region).items():
                if name in saved:
                    backend.__dict__.update(saved[name])
            first = int(saved.get("journal", 0))
            generations = [g for g in journal_generations(self._dir, JOURNAL) if g >= first]
            for generation in generations:
                for record in read_journal(journal_path(self._dir, JOURNAL, generation)):
                    self.replayed += 1
                    if replay(record) >= 400:
                        self.replay_failures += 1
            sqs_saved = _load(self._dir / SQS_FILE)
            newest = max((saved, sqs_saved), key=lambda s: int(s.get("sqs_version", -1)))
            queues = _queues(self._region)
            for queue_name, messages in newest.get("sqs_messages", {}).items():
                if queue_name in queues:
                    queues[queue_name]._messages = messages
            self._sqs_version = self._sqs_written = int(newest.get("sqs_version", 0))
            self._next_generation = max([first, *generations]) + 1
            if self.durable:
                self._journal = Journal(self._dir, JOURNAL, self._next_generation)
            self._armed = True
        self.snapshot(force=True)  # what was replayed is in the snapshot now; the old journal files go
        return bool(saved) or self.replayed > 0

    def changed(self, service: str, request: Callable[[], dict[str, Any]]) -> Callable[[], None] | None:
        """Call under `lock`, right after moto answered a write to `service`; returns what to call, outside
        the lock, before the answer is sent (None: nothing to wait for)."""
        if not self._armed:
            return None
        self._dirty = True
        if service == "sqs":
            self._sqs_version += 1
        if not self.durable:
            return None
        if service == "sqs":
            version, data = self._sqs_version, pickle.dumps(self._sqs_state(), protocol=pickle.HIGHEST_PROTOCOL)
            return lambda: self._write_sqs(version, data)
        assert self._journal is not None
        journal, ticket = self._journal, self._journal.append(request())
        return lambda: journal.sync(ticket)

    def snapshot(self, force: bool = False) -> None:
        with self._snapshot_lock:
            with self.lock:
                if not (self._dirty or force):
                    return
                self._dirty = False
                if self._journal is not None and self._journal.records:
                    self._journal.rotate()
                    self._next_generation = self._journal.generation
                state = {name: b.__dict__ for name, b in _backends(self._region).items()}
                data = pickle.dumps({**state, **self._sqs_state(), "journal": self._next_generation},
                                    protocol=pickle.HIGHEST_PROTOCOL)
            replace_file(self._dir / SNAPSHOT, data)
            for generation in journal_generations(self._dir, JOURNAL):
                if generation < self._next_generation:
                    journal_path(self._dir, JOURNAL, generation).unlink(missing_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.snapshot(force=True)
        if self._journal is not None:
            self._journal.close()

    def _sqs_state(self) -> dict[str, Any]:
        return {"sqs_messages": {name: list(q._messages) for name, q in _queues(self._region).items()},
                "sqs_version": self._sqs_version}

    def _write_sqs(self, version: int, data: bytes) -> None:
        with self._sqs_write_lock:
            if self._sqs_written >= version:
                return  # a later file, written meanwhile, holds this change too
            replace_file(self._dir / SQS_FILE, data)
            self._sqs_written = version

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.snapshot()
            except Exception as exc:  # a full disk, say: the journal still holds the changes
                print(f"[moto] snapshot failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


class LogStreams:
    """The events written to one CloudWatch Logs group since the last look, read straight from moto's
    backend (the stack hosts moto): what the console shows of each instance's log (stack/console.py).
    What the group held when it was made (restored from DATA_DIR) counts as seen."""

    def __init__(self, region: str, group: str) -> None:
        self._region, self._group = region, group
        self._seen: dict[str, tuple[Any, int]] = {}
        self.new_events()

    def new_events(self) -> list[tuple[str, int, str]]:
        """(stream, timestamp in ms, message) of each new event, oldest first."""
        from moto.logs.models import logs_backends

        fresh: list[tuple[str, int, str]] = []
        seen: dict[str, tuple[Any, int]] = {}
        with STATE_LOCK:
            group = logs_backends[ACCOUNT][self._region].groups.get(self._group)
            for name, stream in (group.streams if group is not None else {}).items():
                known, count = self._seen.get(name, (None, 0))
                # A stream deleted and made again under the same name is another object: all of it is new.
                start = count if known is stream else 0
                fresh.extend((name, int(e.timestamp), str(e.message)) for e in stream.events[start:])
                seen[name] = (stream, len(stream.events))
            self._seen = seen
        return sorted(fresh, key=lambda event: event[1])
