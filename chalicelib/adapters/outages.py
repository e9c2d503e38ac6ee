"""A backend that does not answer becomes BACKEND_UNAVAILABLE (503), at the adapters' edge.

Each adapter knows which backend it calls; the exception does not: botocore's errors carry only an
endpoint URL, the same for every service when AWS_ENDPOINT_URL points at one stand-in. So every
adapter method that calls out runs inside `reaching(<backend>)`:

    botocore ConnectionError   (EndpointConnectionError, ConnectTimeoutError, ...)
    botocore HTTPClientError   (ReadTimeoutError, ConnectionClosedError, ...)
    urllib's URLError (not an HTTPError: that is an answer), TimeoutError, a refused or reset connection
      found on the exception itself, on PynamoDB's `.cause`, or on the `raise ... from` chain
    └── InstanceManagerError(BACKEND_UNAVAILABLE, "<Backend> is not reachable (<why>): try again ...")

Anything else (an answer, even an error answer, or a bug) goes through unchanged, and so does an
InstanceManagerError: an outage named by an inner adapter (KMS while sealing for DynamoDB) keeps its name.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager

from botocore import exceptions as boto

from ..core.errors import ErrorCode, InstanceManagerError
from ..core.types import Instance
from ..ports import Launcher, TaskInfo

DYNAMODB = "DynamoDB"
SQS = "SQS"
LOGS = "CloudWatch Logs"
KMS = "KMS"
KEY_FILE = "the key file"
ECS = "ECS"
LOCAL_LAUNCHER = "the local launcher"


@contextmanager
def reaching(backend: str) -> Iterator[None]:
    """Also a decorator: `@reaching(DYNAMODB)`."""
    try:
        yield
    except InstanceManagerError:
        raise
    except Exception as exc:
        reason = unreachable_reason(exc)
        if reason is None:
            raise
        raise backend_unavailable(backend, reason) from exc


def backend_unavailable(backend: str, reason: str) -> InstanceManagerError:
    return InstanceManagerError(ErrorCode.BACKEND_UNAVAILABLE,
                                f"{backend[:1].upper()}{backend[1:]} is not reachable ({reason}): "
                                "try again in a few seconds")


def unreachable_reason(exc: BaseException) -> str | None:
    """Why the backend was not reached, or None when `exc` is no such failure."""
    for link in _chain(exc):
        reason = _reason(link)
        if reason is not None:
            return reason
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        cause = getattr(link, "cause", None)  # PynamoDB wraps botocore's error without `from`
        link = cause if isinstance(cause, BaseException) else link.__cause__


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, boto.ReadTimeoutError | TimeoutError):
        return "no answer in time"
    if isinstance(exc, boto.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, boto.ConnectionClosedError | ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "connection closed"
    if isinstance(exc, boto.EndpointConnectionError | ConnectionRefusedError):
        return "could not connect"
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        return "connection failed"
    if isinstance(exc, urllib.error.HTTPError):
        return None  # an answer
    if isinstance(exc, urllib.error.URLError):
        return (_reason(exc.reason) if isinstance(exc.reason, BaseException) else None) or "could not connect"
    return None


class ReachableLauncher:
    """A Launcher whose client does not name its outages itself (the local launcher's raises RuntimeError)."""

    def __init__(self, inner: Launcher, backend: str) -> None:
        self._inner = inner
        self.backend = backend

    def launch(self, instance: Instance) -> str:
        with reaching(self.backend):
            return self._inner.launch(instance)

    def stop(self, handle: str) -> None:
        with reaching(self.backend):
            self._inner.stop(handle)

    def describe(self, handle: str) -> TaskInfo:
        with reaching(self.backend):
            return self._inner.describe(handle)

    def probe(self) -> None:
        self.describe("health-check")  # any answer will do: an unknown handle is a stopped task
