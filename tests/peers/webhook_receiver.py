"""A webhook receiver: records (and, run by hand, prints) every POST it gets.

    python -m tests.peers.webhook_receiver --port 5998
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200  # what to answer; tests set 500 to make deliveries fail
        self.delay = 0.0  # seconds to wait before answering: a slow receiver
        self.attempts: list[tuple[int, dict[str, Any]]] = []  # every POST, with the status it got
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                receiver.attempts.append((receiver.status, body))
                if receiver.status < 300:
                    receiver.received.append((dict(self.headers), body))
                if echo:
                    print(json.dumps({"path": self.path, "headers": dict(self.headers), "body": body}, indent=2), flush=True)
                self.send_response(receiver.status)
                self.end_headers()

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def messages(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5998)
    args = parser.parse_args()
    receiver = WebhookReceiver(args.host, args.port, echo=True)
    print(f"webhook receiver on {receiver.url} (any path); Ctrl-C stops it", flush=True)
    try:
        receiver._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
