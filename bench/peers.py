"""A webhook receiver for the benchmarks that records when each POST arrived.

In a thread (`TimedReceiver().start()`), or as its own process (`python -m bench.peers --port 0`, which
prints `listening <port>` and answers `GET /count`), so that a loop measured in the benchmark's own
process does not share its interpreter lock with the receiver. It speaks HTTP/1.1 with keep-alive,
as a real receiver behind a load balancer would, and answers 200 with an empty body."""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_EVENT_MS = re.compile(r"^evt_(\d{13})_")


@dataclass(frozen=True)
class Arrival:
    wall: float  # time.time() when the body had been read
    headers: dict[str, str]
    body: bytes

    def event_wall(self) -> float | None:
        """When the provider built the event: its id (`webhook-id`) starts with the wall clock in ms."""
        match = _EVENT_MS.match(self.headers.get("webhook-id", "") or self.headers.get("Webhook-Id", ""))
        return int(match.group(1)) / 1000 if match else None


class TimedReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: bool = True) -> None:
        self.arrivals: list[Arrival] = []
        self.count = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                with receiver._changed:
                    receiver.count += 1
                    if keep:
                        receiver.arrivals.append(Arrival(arrived, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                data = str(receiver.count).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}/hook"

    def start(self) -> TimedReceiver:
        threading.Thread(target=self._server.serve_forever, name="bench-receiver", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def wait_until(self, done: Callable[[list[Arrival]], bool], timeout: float) -> bool:
        """Wait until `done(arrivals)` is true (checked on every arrival), or the timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self.arrivals):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    receiver = TimedReceiver(port=args.port, keep=False)
    print(f"listening {receiver.port}", flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
