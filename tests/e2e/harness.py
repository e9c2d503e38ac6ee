"""Drives the real local stack (`python -m stack`) as a user would: over HTTP, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

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
    def __init__(self, data_dir: Path, port: int, extra_env: dict[str, str]) -> None:
        self.port = port
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
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        return requests.request(method, self.base + path, data=data, timeout=30, **kwargs)

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


class WebhookReceiver:
    """A user's webhook endpoint: records every POST (headers and JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.status == 200:
                    receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def messages(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]

    def close(self) -> None:
        self._server.shutdown()
