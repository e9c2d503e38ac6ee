"""Webhook fan-out: turns a batch of SQS records into POSTs to each instance's webhook.

A failed record is reported in `batchItemFailures` (the rest of the batch is not redelivered) and
made invisible for a growing delay; after the queue's maxReceiveCount SQS moves it to the
dead-letter queue."""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from .core.errors import invalid
from .core.types import Instance
from .instance_log import InstanceLog
from .ports import InstanceRepository

SOURCE = "webhook"
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_BACKOFF_SECONDS = 900


class Poster(Protocol):
    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST without following redirects; returns the HTTP status."""


class VisibilityChanger(Protocol):
    def __call__(self, receipt_handle: str, seconds: int) -> None: ...


def requests_poster() -> Poster:
    import requests

    session = requests.Session()

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        return session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False).status_code

    return post


def is_private_host(hostname: str, resolve: Callable[[str], list[str]] | None = None) -> bool:
    resolve = resolve or _resolve
    try:
        addresses = [hostname] if _is_ip(hostname) else resolve(hostname)
    except OSError:
        return False  # unresolvable now: delivery fails and retries rather than creation
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified:
            return True
    return False


def check_webhook_url(url: str, allow_private: bool) -> None:
    hostname = urlsplit(url).hostname or ""
    if not allow_private and is_private_host(hostname):
        raise invalid(
            f"api_webhook_schema.url points to a loopback, private or link-local address ({hostname}): "
            "use a public URL, or set WEBHOOK_ALLOW_PRIVATE=true on a trusted network"
        )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("%")[0])
        return True
    except ValueError:
        return False


def _resolve(hostname: str) -> list[str]:
    return list({str(info[4][0]) for info in socket.getaddrinfo(hostname, None)})


def backoff_seconds(attempt: int, base: int) -> int:
    """Exponential with jitter: base, 2*base, 4*base... capped, each +-20%."""
    delay = min(MAX_BACKOFF_SECONDS, base * (2 ** max(0, attempt - 1)))
    return max(1, int(delay * random.uniform(0.8, 1.2)))


@dataclass
class WebhookDeliverer:
    repo: InstanceRepository
    log: InstanceLog
    post: Poster
    change_visibility: VisibilityChanger
    allow_private: bool = False
    timeout: float = 10.0
    retry_base_seconds: int = 2
    max_attempts: int = 8
    _instances: dict[str, Instance | None] = field(default_factory=dict)

    def handle_batch(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        self._instances = {}
        failures = []
        for record in records:
            if not self._deliver(record):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _deliver(self, record: dict[str, Any]) -> bool:
        try:
            event = json.loads(record["body"])
            instance_id = str(event["instance_id"])
        except (ValueError, KeyError, TypeError):
            return True  # not an event of ours: retrying cannot help
        instance = self._instance(instance_id)
        if instance is None or instance.webhook is None or not instance.webhook.enabled:
            return True
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        url = instance.webhook.url
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**instance.webhook.headers, "Content-Type": "application/json", "User-Agent": "instance-manager"}
        error = self._post(url, body, headers)
        if error is None:
            return True
        final = attempt >= self.max_attempts
        self.log.write(
            instance_id,
            "error" if final else "warn",
            f"Webhook delivery failed (attempt {attempt}/{self.max_attempts}): {error}"
            + (" — moved to the dead-letter queue" if final else ""),
            SOURCE,
        )
        if not final:
            self.change_visibility(record["receiptHandle"], backoff_seconds(attempt, self.retry_base_seconds))
        return False

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        hostname = urlsplit(url).hostname or ""
        if not self.allow_private and is_private_host(hostname):
            return f"{hostname} resolves to a private address"
        try:
            status = self.post(url, body, headers, self.timeout)
        except Exception as exc:  # connection refused, timeout, TLS: all retried
            return f"{type(exc).__name__}: {exc}"
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def _instance(self, instance_id: str) -> Instance | None:
        if instance_id not in self._instances:
            self._instances[instance_id] = self.repo.get(instance_id)
        return self._instances[instance_id]
