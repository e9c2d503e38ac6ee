"""The local launcher: runs each instance's provider as a local process, and a reconcile loop
that keeps the processes in line with the desired states in DynamoDB (a crashed provider is back
within about a second; after a stack restart every running instance comes back).

`chalice local` reaches it over HTTP through chalicelib.adapters.local_launcher, with the secret the
stack wrote for this run (stack/guard.py); nothing else on the machine, and no web page, can start or
stop a provider."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chalicelib.core.types import Instance
from chalicelib.ports import TaskInfo, TaskState

from .children import Spawner
from .console import Outputs
from .guard import SECRET_HEADER, LoopbackGuard, Refusal, bearer_matches, foreign_peer

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 5.0


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    handle: str
    started: float = field(default_factory=time.monotonic)


class LocalProcessLauncher:
    """Launcher with one provider process per instance. `launch` is idempotent: it returns the live
    process's handle when there is one, so the reconcile loop and a user's call never start two."""

    def __init__(self, environment: Callable[[Instance], dict[str, str]], spawner: Spawner, outputs: Outputs) -> None:
        self._environment = environment
        self._spawner = spawner
        self._outputs = outputs  # DATA_DIR/providers/<id>.log
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()

    def launch(self, instance: Instance) -> str:
        with self._lock:
            current = self._procs.get(instance.id)
            if current is not None and current.popen.poll() is None:
                return current.handle
            popen = self._spawner.popen([sys.executable, "-m", "provider"], self._environment(instance), cwd=ROOT,
                                        **self._outputs.popen_options())
            self._outputs.provider(popen, instance.id, instance.provider.value)
            handle = f"local:{instance.id}:{popen.pid}"
            self._procs[instance.id] = _Proc(popen, handle)
            return handle

    def stop(self, handle: str) -> None:
        with self._lock:
            proc = self._find(handle)
            if proc is None:
                return
            _terminate(proc.popen)
            self._procs.pop(handle.split(":")[1], None)

    def describe(self, handle: str) -> TaskInfo:
        with self._lock:
            proc = self._find(handle)
            if proc is None:
                return TaskInfo(handle, TaskState.STOPPED, "no such process")
            code = proc.popen.poll()
            if code is None:
                return TaskInfo(handle, TaskState.RUNNING, f"pid {proc.popen.pid}")
            return TaskInfo(handle, TaskState.STOPPED, f"exited with {code}")

    def stop_all(self) -> None:
        with self._lock:
            for proc in self._procs.values():
                if proc.popen.poll() is None:
                    proc.popen.send_signal(signal.SIGTERM)
            for proc in self._procs.values():
                _terminate(proc.popen)
            self._procs.clear()

    def _find(self, handle: str) -> _Proc | None:
        parts = handle.split(":")
        if len(parts) != 3 or parts[0] != "local":
            return None
        proc = self._procs.get(parts[1])
        return proc if proc is not None and proc.handle == handle else None


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


class ReconcileLoop(threading.Thread):
    def __init__(self, reconcile: Callable[[], int], report: Callable[[str], None], interval: float = 1.0) -> None:
        super().__init__(name="reconcile", daemon=True)
        self._reconcile = reconcile
        self._report = report
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._reconcile()
            except Exception as exc:  # moto briefly unreachable, etc.: try again next round
                self._report(f"reconcile failed: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stopped.set()


def serve(launcher: LocalProcessLauncher, load: Callable[[str], Instance | None], port: int,
          guard: threading.RLock, secret: str) -> ThreadingHTTPServer:
    """POST /tasks {instance_id}, GET /tasks/<handle>, DELETE /tasks/<handle>; each with the secret."""
    loopback = LoopbackGuard(port)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        peer: Refusal | None = None

        def handle(self) -> None:
            self.peer = foreign_peer(self.client_address, port)
            super().handle()

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            refusal = self.peer or loopback.check(self.headers.get)
            if refusal is None and not bearer_matches(self.headers.get(SECRET_HEADER), secret):
                refusal = Refusal(403, "the launcher's secret is missing or wrong")
            if refusal is not None:
                self.close_connection = True
                self._answer(refusal.status, {"error": refusal.reason})
                return False
            return True

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            instance = load(str(body.get("instance_id", "")))
            if instance is None:
                return self._answer(404, {"error": "no such instance"})
            with guard:
                self._answer(200, {"handle": launcher.launch(instance)})

        def do_GET(self) -> None:
            info = launcher.describe(unquote(self.path.removeprefix("/tasks/")))
            self._answer(200, {"handle": info.handle, "state": info.state.value, "detail": info.detail})

        def do_DELETE(self) -> None:
            with guard:
                launcher.stop(unquote(self.path.removeprefix("/tasks/")))
            self._answer(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="launcher-http", daemon=True).start()
    return server
