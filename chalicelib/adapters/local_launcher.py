"""Launcher that asks the local stack's process supervisor (stack/supervisor.py) over HTTP.

`chalice local` must not own the provider processes (it may reload), so it delegates. The
supervisor answers only callers that hold its secret: the stack writes it to a private file at
each start and gives `chalice local` the file's path (LOCAL_LAUNCHER_SECRET_FILE), never the secret."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.types import Instance
from ..ports import TaskInfo, TaskState


class SupervisorLauncher:
    def __init__(self, base_url: str, timeout: float = 10.0, secret_file: str | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._secret_file = os.environ.get("LOCAL_LAUNCHER_SECRET_FILE", "") if secret_file is None else secret_file

    def launch(self, instance: Instance) -> str:
        answer = self._call("POST", "/tasks", {"instance_id": instance.id})
        return str(answer["handle"])

    def stop(self, handle: str) -> None:
        self._call("DELETE", f"/tasks/{quote(handle, safe='')}")

    def describe(self, handle: str) -> TaskInfo:
        answer = self._call("GET", f"/tasks/{quote(handle, safe='')}")
        return TaskInfo(handle, TaskState(answer["state"]), str(answer.get("detail", "")))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._secret_file:
            # Read at each call: the stack writes a new secret when it starts again.
            try:
                headers["Authorization"] = "Bearer " + Path(self._secret_file).read_text().strip()
            except OSError as exc:
                raise RuntimeError(f"the local launcher's secret file cannot be read: {exc.strerror}") from exc
        return headers

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._base + path, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"local launcher answered {exc.code}: {exc.read()[:200]!r}") from exc
        except urllib.error.URLError as exc:
            raise RuntimeError(f"local launcher at {self._base} is not reachable: {exc.reason}") from exc
