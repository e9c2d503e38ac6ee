"""Drives the real local stack (`python -m stack`) as a user would: over HTTP, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from stack.data_dir import processes_with_env

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


class LocalStack:
    def __init__(self, data_dir: Path, port: int, extra_env: dict[str, str],
                 headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = dict(headers or {})  # sent with every `call` (e.g. the admin key)
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PORT": str(port),
            "MOTO_PORT": str(port + 1000),
            "LAUNCHER_PORT": str(port + 1001),
            "DATA_DIR": str(data_dir),
            **extra_env,
        }
        self.env.pop("AWS_ENDPOINT_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "stack.log"
        self.data_dir = data_dir

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "stack"], cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._healthy, 60, f"the local stack on port {self.port} (log: {self.log_path})")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the stack exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(self.base + "/api/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int:
        """Ctrl-C, as a person would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        leftovers = processes_with_env("DATA_DIR", str(self.data_dir))
        assert not leftovers, f"processes left behind by the stack: {leftovers}"
        for port in (self.port, self.port + 1000, self.port + 1001):
            assert not port_open(port), f"port {port} still open after the stack stopped"
        return code

    def kill(self) -> None:
        """SIGKILL to the stack's own process, as a crash or the OOM killer would; its children are not told."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, data=data, timeout=30, headers=headers, **kwargs)

    def instance(self, instance_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/v1/instances/{instance_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["data"])

    def wait_status(self, instance_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        return dict(wait_for(lambda: (i := self.instance(instance_id))["status"] == status and i,
                             timeout, f"status {status} of {instance_id}"))

    def logs(self, instance_id: str, tail: int = 1000) -> list[dict[str, Any]]:
        answer = self.call("GET", f"/api/v1/instances/{instance_id}/logs?tail={tail}")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"]["logs"])

    def provider_pid(self, instance_id: str) -> int:
        """The pid of the instance's current provider process, from the launcher's log line."""
        pids = [int(m.group(1)) for line in self.logs(instance_id)
                if (m := re.search(r"Provider task started: local:[^:]+:(\d+)", line["message"]))]
        assert pids, "no provider task in the logs"
        return pids[-1]
