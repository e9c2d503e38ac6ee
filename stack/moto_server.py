"""moto in server mode, behind the stack's own WSGI layer: moto's DomainDispatcherApplication (what
moto's ThreadedMotoServer serves) wrapped so that

- requests that are not the stack's are refused (stack/guard.py: another user's connection, Host,
  Origin, Sec-Fetch-*);
- every request is served under STATE_LOCK, so state snapshots never race a change;
- a write is durable before its answer leaves (stack/moto_state.py StateKeeper.changed).

The operation is the X-Amz-Target header, which DynamoDB, SQS (JSON protocol), CloudWatch Logs and
KMS all send. What is not known to be a read counts as a write."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .guard import LoopbackGuard, Refusal, environ_header, foreign_peer
from .moto_state import StateKeeper, keep_fifo_order

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

SERVICES = {"DynamoDB_20120810": "dynamodb", "Logs_20140328": "logs", "AmazonSQS": "sqs"}
READS = {
    "dynamodb": {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
                 "DescribeTimeToLive", "ListTagsOfResource", "DescribeContinuousBackups", "DescribeLimits",
                 "DescribeEndpoints"},
    "logs": {"GetLogEvents", "FilterLogEvents", "DescribeLogStreams", "DescribeLogGroups", "GetQueryResults",
             "DescribeQueries", "ListTagsLogGroup", "ListTagsForResource"},
    "sqs": {"ReceiveMessage", "GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags",
            "ListDeadLetterSourceQueues"},
}
# A ReceiveMessage long poll waits in moto; it takes STATE_LOCK for each short receive instead
# (moto_state.keep_fifo_order), so that it never holds the lock while it waits.
UNLOCKED = {("sqs", "ReceiveMessage")}
PEER = "stack.foreign_peer"  # the environ key under which the request handler leaves its verdict


def _field(environ: dict[str, Any], key: str, default: str = "") -> str:
    return str(environ[key]) if environ.get(key) is not None else default


def operation(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, action) of a request; service "" when it is none of those the state holds."""
    prefix, _, action = _field(environ, "HTTP_X_AMZ_TARGET").partition(".")
    return SERVICES.get(prefix, ""), action


def _served(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Run `app` to the end of its body: status, headers, body chunks."""
    answer: list[Any] = []
    body: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        answer[:] = [status, headers]
        return body.append

    result = app(environ, start_response)
    try:
        body.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], answer[1], body


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request's body and put it back, so that moto reads it too."""
    length = _field(environ, "CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else (stream.read() if environ.get("wsgi.input_terminated") else b"")
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


class StackMotoApp:
    def __init__(self, moto_app: WsgiApp, guard: LoopbackGuard, keeper: StateKeeper) -> None:
        self._moto = moto_app
        self._guard = guard
        self._keeper = keeper

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refusal = environ.get(PEER) or self._guard.check(environ_header(environ))
        if refusal is not None:
            return _refuse(refusal, start_response)
        service, action = operation(environ)
        if (service, action) in UNLOCKED:
            return self._moto(environ, start_response)
        writes = bool(service) and action not in READS[service]
        body = _read_body(environ) if writes and service != "sqs" and self._keeper.durable else b""

        def request() -> dict[str, Any]:
            return {"method": _field(environ, "REQUEST_METHOD", "POST"), "path": _field(environ, "PATH_INFO", "/"),
                    "query": _field(environ, "QUERY_STRING"), "body": body,
                    "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_") or k == "CONTENT_TYPE"}}

        with self._keeper.lock:
            status, headers, chunks = _served(self._moto, environ)
            commit = self._keeper.changed(service, request) if writes and int(status.split()[0]) < 400 else None
        if commit is not None:
            commit()
        start_response(status, headers)
        return chunks

    def replay(self, record: dict[str, Any]) -> int:
        """Serve a journal record again (at restore: straight to moto, bypassing the journal)."""
        body = bytes(record["body"])
        environ: dict[str, Any] = {
            "REQUEST_METHOD": record["method"], "PATH_INFO": record["path"], "QUERY_STRING": record["query"],
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, **record["headers"],
        }
        with self._keeper.lock:
            status, _, _ = _served(self._moto, environ)
        return int(status.split()[0])


def _refuse(refusal: Refusal, start_response: StartResponse) -> list[bytes]:
    text = (refusal.reason + "\n").encode()
    phrase = "Misdirected Request" if refusal.status == 421 else "Forbidden"
    start_response(f"{refusal.status} {phrase}", [("Content-Type", "text/plain; charset=utf-8"),
                                                  ("Content-Length", str(len(text)))])
    return [text]


class MotoServer:
    def __init__(self, port: int, keeper: StateKeeper) -> None:
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        keep_fifo_order()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per AWS call drowns the rest
        class Handler(MotoRequestHandler):
            """Asks the kernel who opened the connection, once per connection (keep-alive serves many requests)."""

            peer: Refusal | None = None

            def handle(self) -> None:
                self.peer = foreign_peer(self.client_address, port)
                super().handle()

            def make_environ(self) -> dict[str, Any]:
                return {**super().make_environ(), PEER: self.peer}

        self.app = StackMotoApp(DomainDispatcherApplication(create_backend_app), LoopbackGuard(port), keeper)
        self._server = make_server("127.0.0.1", port, self.app, threaded=True, request_handler=Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
