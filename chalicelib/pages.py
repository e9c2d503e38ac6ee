"""What the service's HTML pages (the QR page, /docs) share: their response headers and the static files
their scripts and styles live in (chalicelib/static, served at GET /static/<name>; Chalice deploys
everything under chalicelib/ with the function).

The pages carry no inline script or style, so the Content-Security-Policy can refuse them all: a value
that slipped into a page unescaped still could not run. Values reach the scripts through data-
attributes, HTML-escaped. Pages link their files by relative URL, which resolves under API Gateway's
stage prefix, behind a custom domain's base path, and under `chalice local` alike."""

from __future__ import annotations

import functools
import html
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {
    "qr.js": "text/javascript; charset=utf-8",
    "qr.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    "docs.css": "text/css; charset=utf-8",
}
# img-src data: for the QR (a PNG data URL); connect-src 'self' for the API calls the scripts make.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
FILE_POLICY = "default-src 'none'; frame-ancestors 'none'"
Headers = dict[str, str | list[str]]  # as chalice.Response takes them


def security_headers(content_type: str, policy: str = PAGE_POLICY) -> Headers:
    """No sniffing (a script served as text stays text), no framing, and no Referer: the QR page's URL
    may carry the admin key in its fragment, and the pages link nowhere that needs to know."""
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def page_headers() -> Headers:
    return security_headers("text/html; charset=utf-8")


def static_file(name: str) -> tuple[str, Headers] | None:
    """A file of STATIC_TYPES and its headers; None for any other name (no path is ever built from
    anything but the names listed)."""
    content_type = STATIC_TYPES.get(name)
    if content_type is None:
        return None
    return _read(name), security_headers(content_type, FILE_POLICY)


@functools.cache
def _read(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def attr(value: str) -> str:
    """A value for a double-quoted HTML attribute (or text): &, <, >, " and ' escaped."""
    return html.escape(value, quote=True)
