"""The one HTTP client for URLs that users give us (webhooks now, media later).

It takes an already-parsed `HttpUrl` (chalicelib/core/urls.py), resolves its host once through the
address policy, and connects to one of exactly the addresses that were checked, keeping the name for
the Host header, for SNI and for the certificate check. So neither a second parser nor a second DNS
answer can send the request anywhere else. Redirects are never followed; TLS is always verified.

urllib3 is used directly, not through requests: requests re-parses and re-resolves the URL, which is
exactly what must not happen here, and urllib3's pools take the address to dial and the name to verify
separately (`server_hostname`, `assert_hostname`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .core.urls import AddressPolicy, HttpUrl, Unresolvable, UrlRefused

if TYPE_CHECKING:
    from urllib3 import HTTPConnectionPool

MAX_ANSWER_BYTES = 64 * 1024  # we only need the status; a receiver's body is drained up to this and dropped


@dataclass(frozen=True)
class PostResult:
    status: int | None  # None: no HTTP answer (refused by policy, connection refused, timeout, TLS)
    error: str | None = None
    retry_after: str | None = None
    retryable: bool = True  # False: the URL itself is refused; trying again cannot help


@dataclass
class PinnedHttpClient:
    policy: AddressPolicy
    ca_certs: str | None = None  # a CA bundle file; certifi's by default
    user_agent: str = "instance-manager"
    _pools: dict[tuple[str, str, int, str], HTTPConnectionPool] = field(default_factory=dict, repr=False)

    def post(self, url: HttpUrl, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
        try:
            addresses = self.policy.resolve_checked(url)
        except Unresolvable as exc:
            return PostResult(None, str(exc))
        except UrlRefused as exc:  # a name may resolve elsewhere later; an address literal never will
            return PostResult(None, f"refused by the URL policy: {exc}", retryable=url.ip is None)
        errors = []
        for address in addresses:  # each was checked; try them in the resolver's order
            try:
                return self._post_to(str(address), url, body, headers, timeout)
            except _ConnectFailed as exc:
                errors.append(f"connecting to {address} port {url.port} failed: {exc}")
        return PostResult(None, "; ".join(errors))

    def _post_to(self, address: str, url: HttpUrl, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
        import urllib3
        from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

        pool = self._pool(address, url)
        request_headers = {**headers, "Host": url.authority, "User-Agent": self.user_agent}
        try:
            answer = pool.urlopen(
                "POST", url.target, body=body, headers=request_headers, redirect=False, retries=False,
                timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout), preload_content=False,
                assert_same_host=False,
            )
        except (NewConnectionError, ConnectTimeoutError) as exc:
            raise _ConnectFailed(_reason(exc)) from exc
        except HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {_reason(exc)}")
        try:
            answer.read(MAX_ANSWER_BYTES)
        except HTTPError:
            pass  # the status is what counts
        finally:
            answer.release_conn()
        return PostResult(answer.status, None, answer.headers.get("Retry-After"))

    def _pool(self, address: str, url: HttpUrl) -> HTTPConnectionPool:
        import urllib3

        key = (url.scheme, address, url.port, url.host)
        pool = self._pools.get(key)
        if pool is None:
            if url.scheme == "https":
                import certifi

                server_name = None if url.ip is not None else url.host
                pool = urllib3.HTTPSConnectionPool(
                    address, url.port, maxsize=2, cert_reqs="CERT_REQUIRED", ca_certs=self.ca_certs or certifi.where(),
                    server_hostname=server_name, assert_hostname=url.host,
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, url.port, maxsize=2)
            self._pools[key] = pool
        return pool


class _ConnectFailed(Exception):
    """No TCP connection to this address: the next checked address may still answer."""


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1] if ": " in text else text
