"""`chalice local` as the stack runs it (python -m stack.logged chalice local): any method, even one
http.server has no handler for, gets the API's error shape, never http.server's HTML page."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.harness import ROOT, port_open, wait_for


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-m", "stack.logged", "chalice", "local", "--host", "127.0.0.1",
                                "--port", str(free), "--no-autoreload"], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(free), 30, "chalice local")
        yield free
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "PROPFIND"])
def test_a_method_no_route_knows_is_405_in_the_error_shape(port: int, method: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, "/api/v1/instances")
    answer = connection.getresponse()
    body = json.loads(answer.read())
    assert answer.status == 405 and answer.getheader("Content-Type") == "application/json"
    assert body == {"success": False, "code": "METHOD_NOT_ALLOWED", "error": body["error"]}
    assert method in body["error"]
