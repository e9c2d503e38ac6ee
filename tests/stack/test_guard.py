"""Who may talk to moto and the launcher (stack/guard.py)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

from stack.guard import LoopbackGuard, bearer_matches, create_secret, foreign_peer, peer_uid


def check(headers: dict[str, str]) -> tuple[int, str] | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    refusal = LoopbackGuard(4001).check(lambda name: lowered.get(name.lower()))
    return None if refusal is None else (refusal.status, refusal.reason)


def test_the_stacks_own_requests_pass() -> None:
    assert check({"Host": "127.0.0.1:4001"}) is None
    assert check({"Host": "localhost:4001"}) is None
    assert check({"Host": "LOCALHOST:4001", "Content-Type": "application/json"}) is None


def test_a_foreign_or_missing_host_is_misdirected() -> None:
    for host in ("evil.example:4001", "127.0.0.1", "127.0.0.1:4002", "localhost", "127.0.0.1:4001.evil.example",
                 "[::1]:4001", "0.0.0.0:4001", ""):
        refused = check({"Host": host})
        assert refused is not None and refused[0] == 421, host
    assert check({}) is not None


def test_a_browser_is_refused_even_with_the_right_host() -> None:
    for header in ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest"):
        refused = check({"Host": "127.0.0.1:4001", header: "x"})
        assert refused is not None and refused[0] == 403, header
    refused = check({"Host": "127.0.0.1:4001", "Origin": "null"})  # a sandboxed page or a file:// one
    assert refused is not None and "Origin" in refused[1]


def test_the_secret_is_private_new_each_time_and_compared_whole(tmp_path: Path) -> None:
    path = tmp_path / "launcher.secret"
    first = create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == first and len(first) >= 40
    second = create_secret(path)
    assert second != first and path.read_text() == second
    assert bearer_matches(f"Bearer {second}", second)
    for wrong in (None, "", second, f"Bearer {first}", f"Bearer {second[:-1]}", f"Basic {second}", "Bearer "):
        assert not bearer_matches(wrong, second), wrong


def test_the_kernel_names_the_user_behind_a_loopback_connection() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 3895))
        server.listen()
        with socket.create_connection(("127.0.0.1", 3895)) as _client:
            accepted, address = server.accept()
            with accepted:
                assert peer_uid(address, 3895) == os.getuid()
                assert foreign_peer(address, 3895) is None
        if os.getuid() != 0:
            return  # only root can open a connection as someone else
        # another user of the machine: a process running as nobody
        other = subprocess.Popen(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3895; sleep 30"], user=65534, group=65534,
                                 cwd="/")
        try:
            accepted, address = server.accept()
            with accepted:
                assert peer_uid(address, 3895) == 65534
                refusal = foreign_peer(address, 3895)
                assert refusal is not None and refusal.status == 403
        finally:
            other.kill()
            other.wait()
    assert peer_uid(("127.0.0.1", 1), 3895) is None  # no such connection
