"""`python -m bench.stack_probe`: `python -m stack`, unchanged, plus a count of the AWS requests its
moto server answers, by operation, with the CPU time the serving thread spent on each.

moto runs inside the stack process, so every AWS call of the manager API, the providers and the SQS loop
is a request to it. A thin wrapper around moto's WSGI dispatcher counts them (the operation is the
`X-Amz-Target` header, which DynamoDB, SQS, CloudWatch Logs and KMS all send) and reads
`time.thread_time()` around each (the server runs one thread per request, so that is the request's own
CPU). On SIGUSR1 the counts go to the JSON file named by BENCH_PROBE_FILE, written atomically."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_counts: dict[str, int] = {}
_cpu: dict[str, float] = {}
_written = 0


def _install() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def counting(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET") or f"{environ.get('REQUEST_METHOD')} (no X-Amz-Target)")
        operation = target.split(".")[-1] if "." in target else target
        service = target.split("_")[0].split(".")[0] if "." in target else ""
        name = f"{_SERVICES.get(service, service)}.{operation}" if service else operation
        started = time.thread_time()
        try:
            return original(self, environ, start_response)
        finally:
            spent = time.thread_time() - started
            with _lock:
                _counts[name] = _counts.get(name, 0) + 1
                _cpu[name] = _cpu.get(name, 0.0) + spent

    DomainDispatcherApplication.__call__ = counting  # type: ignore[method-assign]


_SERVICES = {"DynamoDB": "DynamoDB", "AmazonSQS": "SQS", "Logs": "CloudWatchLogs", "TrentService": "KMS"}


def _dump(*_: Any) -> None:
    global _written
    path = os.environ.get("BENCH_PROBE_FILE")
    if not path:
        return
    with _lock:
        _written += 1
        data = {"sequence": _written, "counts": dict(_counts), "cpu_s": dict(_cpu)}
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read(path: Path, previous: int = -1, timeout: float = 10.0) -> dict[str, Any] | None:
    """Ask a probe (by its pid, via SIGUSR1, done by the caller) and wait for a newer file than `previous`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            if int(data["sequence"]) > previous:
                return dict(data)
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    return None


def main() -> int:
    _install()
    signal.signal(signal.SIGUSR1, _dump)
    from stack.__main__ import main as stack_main

    return stack_main()


if __name__ == "__main__":
    sys.exit(main())
