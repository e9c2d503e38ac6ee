"""The one URL policy for every URL the service fetches (webhooks now, media later).

Two halves, both here so they cannot drift apart:
- `parse_http_url` reads a URL strictly and gives back its one canonical form. Anything that two URL
  parsers could read two ways is refused rather than guessed at: a backslash, whitespace or a control
  character anywhere, credentials (`user:pass@`), a fragment, a host that is not a plain DNS name, a
  dotted-quad IPv4 address or a bracketed IPv6 address (so no `0x7f.1`, `2130706433`, `0177.0.0.1`,
  zone ids or percent-encoded hosts), characters a client would have to re-encode. What is stored is
  the canonical form, so the URL that is checked is, byte for byte, the one that is sent.
- `AddressPolicy` decides where the service may connect: an address must be globally routable (not a
  list of private ranges to forget one of), and IPv6 forms that embed an IPv4 address (mapped, 6to4,
  NAT64) are judged by the address they embed. `resolve_checked` resolves a name once and checks every
  address it got; the HTTP client then connects to one of exactly those addresses (see
  chalicelib/outbound.py), so a DNS answer that changes after the check (rebinding) is never used.

Standard library only: the Lambda code and the provider runtime share it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from .errors import invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DOTTED_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                          r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986 pchar, "/" and "?"; "%" only as the start of a %XX escape (checked below).
_TARGET = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Special-purpose blocks that Python's ipaddress still calls global, or that embed no usable address.
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.88.99.0/24",   # 6to4 relay anycast (deprecated)
    "::/96",            # IPv4-compatible IPv6 (deprecated): ::127.0.0.1
    "64:ff9b:1::/48",   # NAT64 for local use only
    "2001::/32",        # Teredo: the embedded addresses are obfuscated
    "fec0::/10",        # site-local (deprecated), private in practice
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class HttpUrl:
    scheme: str  # "http" or "https"
    host: str  # a lowercase DNS name or an IP address without brackets
    port: int
    target: str  # path and query as sent on the request line; starts with "/"

    @property
    def ip(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def authority(self) -> str:
        """The Host header: the name (or bracketed IPv6 literal), with the port unless it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


class UrlRefused(Exception):
    """A URL the service will not fetch; the message says why and what to send instead."""


class Unresolvable(UrlRefused):
    """The name has no address now: worth trying again later, unlike every other refusal."""


def parse_http_url(raw: object, field: str) -> HttpUrl:
    """The canonical HttpUrl, or VALIDATION_ERROR naming `field` and what to fix."""
    try:
        return _parse(raw)
    except UrlRefused as exc:
        raise invalid(f"{field}: {exc}") from None


def _parse(raw: object) -> HttpUrl:
    if not isinstance(raw, str) or not raw:
        raise UrlRefused("must be an absolute http:// or https:// URL")
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRefused(f"is longer than {MAX_URL_LENGTH} characters")
    for position, char in enumerate(raw):
        if char == "\\":
            raise UrlRefused(f"contains a backslash at position {position}: URL parsers disagree on what it "
                             "means, so it is refused; use '/' or percent-encode it as %5C")
        if ord(char) < 0x21 or ord(char) == 0x7F:
            raise UrlRefused(f"contains whitespace or a control character ({ord(char):#04x}) at position "
                             f"{position}: remove it or percent-encode it")
        if ord(char) > 0x7E:
            raise UrlRefused(f"contains the non-ASCII character {char!r} at position {position}: write the host "
                             "in its xn-- (punycode) form and percent-encode the path")
    scheme_match = _SCHEME.match(raw)
    if scheme_match is None:
        raise UrlRefused("must be an absolute http:// or https:// URL")
    scheme = scheme_match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(f"scheme {scheme!r} is not allowed: use http:// or https://")
    rest = raw[scheme_match.end():]
    if "#" in rest:
        raise UrlRefused("has a fragment (#...), which is never sent to a server: remove it")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:end], rest[end:]
    if "@" in authority:
        raise UrlRefused("carries credentials (user:password@): they would be stored and listed in clear; "
                         "send them as a header instead (api_webhook_schema.headers, e.g. Authorization)")
    host, port = _split_host_port(authority, scheme)
    if not target.startswith("/"):
        target = "/" + target
    if not _TARGET.fullmatch(target) or _BAD_ESCAPE.search(target):
        raise UrlRefused("has characters in its path or query that must be percent-encoded "
                         "(allowed: letters, digits, -._~!$&'()*+,;=:@/? and %XX escapes)")
    return HttpUrl(scheme, host, port, target)


def _split_host_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise UrlRefused("has an IPv6 address without its closing ']'")
        host_text, after = authority[1:close], authority[close + 1:]
        if "%" in host_text:
            raise UrlRefused("has an IPv6 zone id (%...): zone ids name a local interface, refused")
        try:
            host = str(ipaddress.IPv6Address(host_text))
        except ValueError:
            raise UrlRefused(f"has an invalid IPv6 address [{host_text}]") from None
    else:
        host_text, colon, port_text = authority.partition(":")
        after = colon + port_text
        host = _host_name(host_text.lower())
    if not after:
        return host, DEFAULT_PORTS[scheme]
    if not after.startswith(":") or not _PORT.fullmatch(after[1:]) or not 1 <= int(after[1:]) <= 65535:
        raise UrlRefused(f"has an invalid port {after[1:]!r}: use a number from 1 to 65535, or none")
    return host, int(after[1:])


def _host_name(host: str) -> str:
    if not host:
        raise UrlRefused("has no host")
    if _DOTTED_QUAD.fullmatch(host):
        return host
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # no top-level domain is numeric: an IPv4 address in disguise
        raise UrlRefused(f"has the host {host!r}, an IPv4 address in a non-standard form (octal, hex, short or "
                         "integer): write it as four decimal numbers without leading zeros, like 203.0.113.7")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRefused(f"has the host {host!r}, which is not a valid DNS name (letters, digits and '-' "
                         "in dot-separated labels, no trailing dot)")
    return host


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def without_credentials(url: str) -> str:
    """For listings: a URL stored before credentials were refused shows `***@` in their place."""
    return _USERINFO.sub(r"\1***@", url)


def is_public_address(ip: IPAddress) -> bool:
    """Globally routable, judged by the embedded IPv4 address for IPv6 forms that carry one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public_address(ip.sixtofour)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if any(ip in network for network in _NOT_GLOBAL if network.version == ip.version):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_unspecified or ip.is_private)


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


@dataclass(frozen=True)
class AddressPolicy:
    """Where the service may connect. `allow_private` (WEBHOOK_ALLOW_PRIVATE) is for a trusted network, such
    as a laptop whose receiver listens on loopback; parsing stays strict and addresses stay pinned."""

    allow_private: bool = False
    resolve: Resolver = system_resolver
    is_allowed: Callable[[IPAddress], bool] = is_public_address

    def resolve_checked(self, url: HttpUrl) -> list[IPAddress]:
        """Every address of the URL's host, each checked; the caller connects only to these."""
        literal = url.ip
        if literal is not None:
            addresses = [literal]
        else:
            try:
                answers = self.resolve(url.host, url.port)
            except OSError as exc:
                raise Unresolvable(f"{url.host} does not resolve: {exc}") from exc
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
            if not addresses:
                raise Unresolvable(f"{url.host} does not resolve to any address")
        if not self.allow_private:
            refused = [str(a) for a in addresses if not self.is_allowed(a)]
            if refused:
                verb = "is" if literal is not None else "resolves to"
                raise UrlRefused(f"{url.host} {verb} a non-public address ({', '.join(refused)}): loopback, "
                                 "private, shared, link-local, multicast and reserved addresses are refused")
        return addresses

    def check_configured(self, url: HttpUrl, field: str) -> None:
        """At configuration time: refuse a non-public address now; a name that does not resolve yet is
        allowed (delivery fails and retries rather than the configuration)."""
        try:
            self.resolve_checked(url)
        except Unresolvable:
            return
        except UrlRefused as exc:
            raise invalid(f"{field}: {exc}: use a public URL, or set WEBHOOK_ALLOW_PRIVATE=true "
                          "on a trusted network") from None
