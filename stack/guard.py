"""Who may talk to the stack's own services (moto, the local launcher): the stack's processes only.

Listening on loopback keeps other machines out, not web pages: a page can POST to 127.0.0.1 (a
"simple" cross-origin request needs no preflight) or rebind its own name to 127.0.0.1 and read the
answers. So a request is refused when its Host is not exactly the service's loopback address and port
(a rebound name shows up there), or when it comes from a browser (it carries Origin or Sec-Fetch-*
headers; boto3, PynamoDB and urllib never send them). The launcher also requires a secret that the
stack writes to a private file in DATA_DIR at each start, so other users of the machine cannot start
or stop providers."""

from __future__ import annotations

import hmac
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SECRET_HEADER = "Authorization"


@dataclass(frozen=True)
class Refusal:
    status: int  # 421 Misdirected Request for a foreign Host, 403 otherwise
    reason: str


class LoopbackGuard:
    def __init__(self, port: int) -> None:
        self._hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    def check(self, header: Callable[[str], str | None]) -> Refusal | None:
        """`header(name)` gives a request header's value, or None."""
        host = (header("Host") or "").strip().lower()
        if host not in self._hosts:
            return Refusal(421, f"this service answers only to Host {' or '.join(sorted(self._hosts))}")
        if header("Origin") is not None:
            return Refusal(403, "requests from web pages (with an Origin header) are refused")
        if any(header(name) is not None for name in ("Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest")):
            return Refusal(403, "requests from browsers (with Sec-Fetch-* headers) are refused")
        return None


CONNECTION_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def peer_uid(client: tuple[str, int], server_port: int) -> int | None:
    """The uid that owns the client end of a TCP connection from `client` to 127.0.0.1:`server_port`, or
    None when the kernel does not say (not Linux, not found)."""
    try:
        packed = socket.inet_aton(client[0])
    except OSError:
        return None
    v4 = packed[::-1].hex().upper()
    ends = {(f"{v4}:{client[1]:04X}", f"0100007F:{server_port:04X}"),
            (f"0000000000000000FFFF0000{v4}:{client[1]:04X}", f"0000000000000000FFFF00000100007F:{server_port:04X}")}
    for table in CONNECTION_TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and (fields[1], fields[2]) in ends:
                return int(fields[7])
    return None


def foreign_peer(client: tuple[str, int], server_port: int) -> Refusal | None:
    """Call once per connection (reading the kernel's table costs about a millisecond)."""
    uid = peer_uid(client, server_port)
    if uid is not None and uid not in (os.getuid(), 0):
        return Refusal(403, "only the user who runs the local stack may use it")
    return None


def environ_header(environ: dict[str, object]) -> Callable[[str], str | None]:
    """`header(name)` for a WSGI environ."""

    def header(name: str) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        value = environ.get(key)
        return None if value is None else str(value)

    return header


def create_secret(path: Path) -> str:
    """A new secret for this run, in a file only this user can read (replacing the last run's)."""
    secret = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    os.replace(tmp, path)
    return secret


def bearer_matches(value: str | None, secret: str) -> bool:
    scheme, _, token = (value or "").partition(" ")
    return scheme == "Bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())
