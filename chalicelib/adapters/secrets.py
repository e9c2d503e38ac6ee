"""Envelope encryption of secrets at rest: AES-256-GCM data keys wrapped by KMS (or, on a laptop,
by a key file that survives restarts of moto, whose KMS keys do not)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .outages import KEY_FILE, KMS, reaching

_PREFIX = "v1:"
_DATA_KEY_LIFETIME_S = 300.0


class KeyWrapper(Protocol):
    def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh (plaintext, wrapped) data key."""

    def unwrap(self, wrapped: bytes) -> bytes: ...


class KmsKeyWrapper:
    backend = KMS

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    @reaching(KMS)
    def new_data_key(self) -> tuple[bytes, bytes]:
        answer = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256")
        return answer["Plaintext"], answer["CiphertextBlob"]

    @reaching(KMS)
    def unwrap(self, wrapped: bytes) -> bytes:
        return bytes(self._kms.decrypt(CiphertextBlob=wrapped)["Plaintext"])

    @reaching(KMS)
    def probe(self) -> None:
        self.new_data_key()  # what sealing needs (and a grant the roles have; DescribeKey is not one)


class FileKeyWrapper:
    """A master key kept in a file (created with mode 0600 on first use)."""

    backend = KEY_FILE

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._aead = AESGCM(self._load_or_create(self._path))

    def probe(self) -> None:
        if len(self._path.read_bytes()) != 32:
            raise RuntimeError(f"{self._path} does not hold a 256-bit key")

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(AESGCM.generate_key(bit_length=256))
        return path.read_bytes()

    def new_data_key(self) -> tuple[bytes, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        return key, nonce + self._aead.encrypt(nonce, key, b"data-key")

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], b"data-key")


class EnvelopeBox:
    """SecretBox: one data key is reused for a few minutes, so sealing costs one KMS call per
    process and period rather than one per secret; unwrapped keys are cached for opening."""

    def __init__(self, wrapper: KeyWrapper, clock: Any = time.monotonic) -> None:
        self._wrapper = wrapper
        self._clock = clock
        self._lock = threading.Lock()
        self._current: tuple[bytes, bytes, float] | None = None
        self._opened: dict[bytes, bytes] = {}

    def seal(self, plaintext: str) -> str:
        key, wrapped = self._data_key()
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
        envelope = {"k": _b64(wrapped), "n": _b64(nonce), "c": _b64(sealed)}
        return _PREFIX + _b64(json.dumps(envelope, separators=(",", ":")).encode())

    def open(self, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed secret")
        envelope = json.loads(base64.b64decode(sealed[len(_PREFIX):]))
        wrapped = base64.b64decode(envelope["k"])
        with self._lock:
            key = self._opened.get(wrapped)
        if key is None:
            key = self._wrapper.unwrap(wrapped)
            with self._lock:
                self._opened[wrapped] = key
        return AESGCM(key).decrypt(base64.b64decode(envelope["n"]), base64.b64decode(envelope["c"]), None).decode()

    def _data_key(self) -> tuple[bytes, bytes]:
        with self._lock:
            now = self._clock()
            if self._current is None or now - self._current[2] > _DATA_KEY_LIFETIME_S:
                key, wrapped = self._wrapper.new_data_key()
                self._current = (key, wrapped, now)
                self._opened[wrapped] = key
            return self._current[0], self._current[1]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
