"""The HTML pages (the QR page, /docs) and their static files through the real Chalice app: a hostile
instance id only ever appears escaped, no page carries an inline script, style or event handler, and
every page and file sends a Content-Security-Policy that allows no inline script, plus nosniff."""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
from chalice.test import Client, HTTPResponse

from chalicelib import pages, wiring

ADMIN_KEY = "admin-key-for-the-page-tests"
HOSTILE_IDS = [
    "x</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; alert(1); '",
    "{{7*7}}",
    "${alert(1)}",
    'a"b\'c&d',
    "line\nbreak\r\nand\ttab",
    "<!--",
    "x' onmouseover='alert(1)",
    "javascript:alert(1)",
    "&lt;script&gt;",
]
# What a page may contain: anything else (an <img onerror>, a second <script>, an <iframe>) was injected.
QR_TAGS = {"html", "head", "meta", "title", "link", "script", "body", "h1", "p", "img"}
DOCS_TAGS = {"html", "head", "meta", "title", "link", "script", "body", "h1", "h2", "p", "div"}


class Parsed(HTMLParser):
    """Every tag with its attributes, and the text inside each <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self.title = ""
        self._inside = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._inside = tag

    def handle_endtag(self, tag: str) -> None:
        self._inside = ""

    def handle_data(self, data: str) -> None:
        if self._inside in ("script", "style") and data.strip():
            self.inline.append(data)
        if self._inside == "title":
            self.title += data

    def attribute(self, tag: str, name: str) -> str:
        values = [attrs[name] for t, attrs in self.tags if t == tag and attrs.get(name) is not None]
        assert len(values) == 1, (tag, name, values)
        return str(values[0])


def parse(body: bytes) -> Parsed:
    parsed = Parsed()
    parsed.feed(body.decode())
    parsed.close()
    return parsed


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """With an admin key: every page and file must be served without one (they hold no secret)."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    wiring.reset()
    import app

    with Client(app.app) as test_client:
        yield test_client
    wiring.reset()


def assert_safe_page(response: HTTPResponse, allowed_tags: set[str]) -> Parsed:
    assert response.status_code == 200, response.body
    assert_security_headers(response, "text/html; charset=utf-8")
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    parsed = parse(response.body)
    assert {tag for tag, _ in parsed.tags} <= allowed_tags, "a tag the page does not have was injected"
    assert parsed.inline == [], "inline script or style"
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        if tag == "script":
            assert (attrs.get("src") or "").startswith(("static/", "../static/")), attrs
    return parsed


def assert_security_headers(response: HTTPResponse, content_type: str) -> None:
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers


def directives(policy: str) -> dict[str, list[str]]:
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


def id_paths() -> list[tuple[str, str]]:
    """(path segment as sent, the id the route receives). Chalice, like API Gateway's REST APIs, hands
    the segment over as sent: percent-encoded, or with the characters a client left raw (but for the
    ones that end a path segment; chalice local also ends it at a ';', as urlparse's path parameters)."""
    cases = [(quote(hostile, safe=""), quote(hostile, safe="")) for hostile in HOSTILE_IDS]
    cases += [(hostile, hostile) for hostile in HOSTILE_IDS if not set(hostile) & set("/?#;\r\n\t")]
    return cases


@pytest.mark.parametrize(("segment", "received"), id_paths())
def test_a_hostile_instance_id_appears_on_the_qr_page_only_escaped(client: Client, segment: str, received: str) -> None:
    response = client.http.get(f"/qr-page/{segment}")
    parsed = assert_safe_page(response, QR_TAGS)
    assert [tag for tag, _ in parsed.tags].count("script") == 1
    assert parsed.title == f"WhatsApp login · {received}", "the id is text, whole, in the title"
    qr_url = parsed.attribute("body", "data-qr-url")
    assert qr_url == f"../api/v1/instances/{quote(received, safe='')}/qr"
    target = urlsplit(urljoin(f"https://manager.example/qr-page/{segment}", qr_url))
    assert target.netloc == "manager.example" and target.path.count("/") == 5, "the script asks this API, one id deep"
    benign = "benign id"
    assert skeleton(response.body.decode(), received) == skeleton(client.http.get(f"/qr-page/{benign}").body.decode(),
                                                                  benign), "the id changed nothing but its own text"


def skeleton(page: str, instance_id: str) -> str:
    """The page with the id's two escaped forms (in the URL, in the text) taken out."""
    in_url, in_text = html.escape(quote(instance_id, safe=""), quote=True), html.escape(instance_id, quote=True)
    assert in_url in page and in_text in page
    return page.replace(in_url, "{URL ID}").replace(in_text, "{TEXT ID}")


def test_the_qr_page_and_the_docs_page_are_open_and_safe(client: Client) -> None:
    qr = assert_safe_page(client.http.get("/qr-page/8e1e2d0a-2c2b-4c5e-9a47-0d3b1f1c1f00"), QR_TAGS)
    assert qr.attribute("script", "src") == "../static/qr.js" and qr.attribute("link", "href") == "../static/qr.css"
    docs = assert_safe_page(client.http.get("/docs"), DOCS_TAGS)
    assert docs.attribute("script", "src") == "static/docs.js" and docs.attribute("link", "href") == "static/docs.css"
    assert docs.attribute("body", "data-openapi-url") == "openapi.json"


@pytest.mark.parametrize("url", [
    "/qr-page/8e1e2d0a-2c2b-4c5e-9a47-0d3b1f1c1f00",
    "/docs",
])
@pytest.mark.parametrize("public_base", [
    "http://127.0.0.1:3000",  # chalice local
    "https://abc123.execute-api.us-east-1.amazonaws.com/prod",  # API Gateway's stage prefix
    "https://api.example.com/messaging",  # a custom domain's base path
])
def test_every_url_a_page_uses_resolves_to_a_route_under_any_public_base(aws: dict[str, str], client: Client, url: str,
                                                                        public_base: str) -> None:
    """The browser resolves the links against the page's public URL; the app sees the path without
    the prefix, so each link must land back on /static/<name> once the prefix is taken off."""
    parsed = parse(client.http.get(url).body)
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "link"]
    links += [attrs["src"] for tag, attrs in parsed.tags if tag == "script"]
    links += [attrs[name] for _, attrs in parsed.tags for name in ("data-qr-url", "data-openapi-url") if name in attrs]
    assert len(links) == 3
    for link in links:
        assert link is not None and not urlsplit(link).scheme and not link.startswith("/"), "relative, same origin"
        public = urljoin(public_base + url, link)
        assert public.startswith(public_base + "/"), public
        served = client.http.get(public[len(public_base):], headers={"x-api-key": ADMIN_KEY})
        if served.status_code != 200:  # the QR route, for an instance that does not exist
            assert served.json_body["code"] == "INSTANCE_NOT_FOUND", (public, served.body)


def test_the_static_files_are_served_open_with_their_type_and_the_same_headers(client: Client) -> None:
    assert set(pages.STATIC_TYPES) == {p.name for p in pages.STATIC_DIR.iterdir()}, "every file is listed, and only them"
    for name, content_type in pages.STATIC_TYPES.items():
        response = client.http.get(f"/static/{name}")
        assert response.status_code == 200
        assert_security_headers(response, content_type)
        assert directives(response.headers["Content-Security-Policy"])["default-src"] == ["'none'"]
        assert response.body.decode() == (pages.STATIC_DIR / name).read_text()


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "%2e%2e%2fapp.py", "qr.js%00", "QR.JS", "__init__.py",
                                  "..", ".", "qr.js.map"])
def test_other_static_names_are_404_in_the_error_shape(client: Client, name: str) -> None:
    response = client.http.get(f"/static/{name}")
    assert response.status_code == 404
    assert response.json_body["code"] == "ROUTE_NOT_FOUND" and response.json_body["success"] is False


def test_the_page_scripts_parse_and_build_no_markup_from_strings(tmp_path: Path) -> None:
    for name in ("qr.js", "docs.js"):
        source = (pages.STATIC_DIR / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (name, sink)
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    for name in ("qr.js", "docs.js"):
        checked = subprocess.run(["node", "--check", str(pages.STATIC_DIR / name)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
