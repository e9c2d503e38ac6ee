"""Files that survive a SIGKILL (and a power cut) at any instant: an append-only journal with
group commit, and whole-file replacement.

A journal record is a length, a CRC-32 and a pickle. A record cut short by a crash (written, not yet
answered) or damaged is where reading stops: nothing after it was ever acknowledged."""

from __future__ import annotations

import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">II")  # length, crc32 of the payload
# An appended record needs its data and the file's new size on disk, not its times: fdatasync.
_sync_data = getattr(os, "fdatasync", os.fsync)


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one, complete."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Records appended under the caller's lock (so their order is the order of the changes), made
    durable with `sync` outside it: one fsync covers every record appended before it, so concurrent
    writers share one. `rotate` starts the next file (generation) and makes the current one durable."""

    def __init__(self, directory: Path, prefix: str, generation: int) -> None:
        self._directory, self._prefix = directory, prefix
        self._sync_lock = threading.Lock()
        self._appended = 0
        self._synced = 0
        self.generation = generation
        self.records = 0  # in the current generation
        self._fd = self._open(generation)

    def _open(self, generation: int) -> int:
        fd = os.open(journal_path(self._directory, self._prefix, generation), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        sync_directory(self._directory)
        return fd

    def append(self, record: Any) -> int:
        """Call under the lock that orders the changes; returns the ticket to `sync` on."""
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(self._fd, _HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._appended += 1
        self.records += 1
        return self._appended

    def sync(self, ticket: int) -> None:
        """Return once record `ticket` is on disk. A SIGKILL after `append` already keeps it (it is in the
        kernel); the fsync is for a crash of the machine."""
        with self._sync_lock:
            if self._synced >= ticket:
                return
            upto = self._appended
            _sync_data(self._fd)
            self._synced = max(self._synced, upto)

    def rotate(self) -> int:
        """Call under the ordering lock. Makes this generation durable, starts the next; returns the old one."""
        with self._sync_lock:
            os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._appended
            old = self.generation
            self.generation += 1
            self.records = 0
            self._fd = self._open(self.generation)
            return old

    def close(self) -> None:
        with self._sync_lock:
            os.fsync(self._fd)
            os.close(self._fd)


def journal_path(directory: Path, prefix: str, generation: int) -> Path:
    return directory / f"{prefix}.{generation:08d}"


def journal_generations(directory: Path, prefix: str) -> list[int]:
    found = []
    for path in directory.glob(f"{prefix}.*"):
        suffix = path.name.rsplit(".", 1)[1]
        if suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)


def read_journal(path: Path) -> Iterator[Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size: offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield pickle.loads(payload)
        offset += _HEADER.size + length
