"""The one webhook receiver of the tests: records (and, run by hand, prints) every POST it gets, and
answers each with the next planned (status, headers), or with `status` once the plan runs out.

    python -m tests.peers.webhook_receiver --port 5998
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Post(NamedTuple):
    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200  # what to answer; tests set 500 to make deliveries fail
        self.delay = 0.0  # seconds to wait before answering: a slow receiver
        self.attempts: list[tuple[int, dict[str, Any]]] = []  # every POST, with the status it got
        self.plan: list[tuple[int, dict[str, str]]] = []  # the next answers, before `status` applies again
        self.by_path: dict[str, int] = {}  # a status per request path, before `status`
        self.posts: list[Post] = []  # every POST as it came, whatever it was answered
        self.sni: list[str | None] = []  # with tls: the server name each TLS client asked for
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append(Post(self.path, dict(self.headers.items()), raw))
                status, headers = receiver.plan.pop(0) if receiver.plan else (
                    receiver.by_path.get(self.path, receiver.status), {})
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                receiver.attempts.append((status, body))
                if status < 300:
                    receiver.received.append((dict(self.headers), body))
                if echo:
                    print(json.dumps({"path": self.path, "headers": dict(self.headers), "body": body}, indent=2), flush=True)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self._server = Server((host, port), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: receiver.sni.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        authority = f"[{host}]" if ":" in host else host
        self.base = f"{'https' if tls else 'http'}://{authority}:{self.port}"
        self.url = self.base + "/hook"

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def messages(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]

    def bodies(self) -> list[Any]:
        """Every POST's JSON body, answered well or not."""
        return [post.json() for post in self.posts]

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
