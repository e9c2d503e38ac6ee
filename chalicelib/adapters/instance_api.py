"""Calls an instance's own API (on its task) from the manager, with the instance's key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..core.errors import ErrorCode, InstanceManagerError
from ..core.types import Instance


class InstanceApiClient:
    def __init__(self, timeout: float = 25.0) -> None:
        self._timeout = timeout  # under API Gateway's 29 s

    def call(self, instance: Instance, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"http://{instance.host or '127.0.0.1'}:{instance.ports['api']}{path}"
        request = urllib.request.Request(
            url, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "x-api-key": instance.api_key.value},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
                raise InstanceManagerError(ErrorCode(error["code"]), error["error"]) from exc
            except (ValueError, KeyError):
                raise InstanceManagerError(ErrorCode.PROVIDER_ERROR, f"The instance answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise InstanceManagerError(ErrorCode.INSTANCE_NOT_READY,
                                       "The instance's task is not reachable: is it running? See auth-status and logs") from exc
