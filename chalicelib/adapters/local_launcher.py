"""Launcher that asks the local stack's process supervisor (stack/supervisor.py) over HTTP.

`chalice local` must not own the provider processes (it may reload), so it delegates."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from ..core.types import Instance
from ..ports import TaskInfo, TaskState


class SupervisorLauncher:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def launch(self, instance: Instance) -> str:
        answer = self._call("POST", "/tasks", {"instance_id": instance.id})
        return str(answer["handle"])

    def stop(self, handle: str) -> None:
        self._call("DELETE", f"/tasks/{quote(handle, safe='')}")

    def describe(self, handle: str) -> TaskInfo:
        answer = self._call("GET", f"/tasks/{quote(handle, safe='')}")
        return TaskInfo(handle, TaskState(answer["state"]), str(answer.get("detail", "")))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"local launcher answered {exc.code}: {exc.read()[:200]!r}") from exc
        except urllib.error.URLError as exc:
            raise RuntimeError(f"local launcher at {self._base} is not reachable: {exc.reason}") from exc
