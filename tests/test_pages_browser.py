"""The HTML pages in a real browser (Chromium through Playwright), served by chalice local's server over
moto (tests/page_server.py), at the root as `chalice local` serves them and under a stage prefix as API
Gateway does: the QR page shows the QR with the key from its fragment, a hostile instance id runs
nothing (no dialog, no violation of the Content-Security-Policy), and the policy really refuses an
inline script. Port 3901 (this suite's range is 3900-3949)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

PORT = 3901
ADMIN_KEY = "admin-key-for-the-browser-tests"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE_IDS = [
    "x</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; alert(1); '",
    "{{7*7}}",
    "x' onmouseover='alert(1)",
    "a\"b'c&d\nline",
]
# Records what the policy refused, before any script of the page runs (init scripts bypass the CSP).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make install installs it)")


@dataclass
class Served:
    base: str
    instance_id: str


@dataclass
class Watched:
    """A page plus what it did: dialogs opened, requests sent, console errors."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations"))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is taken: another run of these tests?")
    env = {**os.environ, "PAGE_SERVER_ADMIN_KEY": ADMIN_KEY, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "tests.page_server", str(PORT)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first, "the page server exited before serving"
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", PORT)) != 0:
            assert time.monotonic() < deadline, "the page server did not listen"
            time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{PORT}", json.loads(first)["instance_id"])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context()
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    seen = Watched(page)

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: seen.requests.append((request.url, dict(request.headers))))
    page.on("console", lambda message: seen.console_errors.append(message.text) if message.type == "error" else None)
    yield seen
    context.close()


def state_text(watched: Watched) -> str:
    return str(watched.page.text_content("#state") or "")


def wait_for_state(watched: Watched, timeout: float = 10.0) -> str:
    """Polled from here: Playwright's wait_for_function evaluates a string, which the CSP refuses."""
    deadline = time.monotonic() + timeout
    while (text := state_text(watched)) == "Loading…":
        assert time.monotonic() < deadline, "the page's script never answered"
        time.sleep(0.05)
    return text


@pytest.mark.parametrize("prefix", ["", "/prod"], ids=["chalice-local", "stage-prefix"])
def test_the_qr_page_shows_the_qr_with_the_key_from_its_fragment(served: Served, watched: Watched, prefix: str) -> None:
    page_url = f"{served.base}{prefix}/qr-page/{served.instance_id}"
    watched.page.goto(f"{page_url}#key={ADMIN_KEY}")
    watched.page.wait_for_selector("#qr:not([hidden])", timeout=10_000)
    assert watched.page.get_attribute("#qr", "src").startswith("data:image/png;base64,")
    assert state_text(watched) == "Waiting for the scan…"
    assert watched.page.evaluate("getComputedStyle(document.body).textAlign") == "center", "the stylesheet applied"

    by_path = {urlsplit(url).path: headers for url, headers in watched.requests}
    api = f"{prefix}/api/v1/instances/{served.instance_id}/qr"
    assert {f"{prefix}/static/qr.js", f"{prefix}/static/qr.css", api} <= set(by_path)
    assert by_path[api].get("x-api-key") == ADMIN_KEY
    assert {path: headers["referer"] for path, headers in by_path.items() if headers.get("referer")} == {}, \
        "the key's page URL leaks nowhere"
    assert watched.violations() == [] and watched.dialogs == [] and watched.console_errors == []


@pytest.mark.parametrize("stage", ["/prod", "/decoded"], ids=["as-sent", "decoded"])
@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_a_hostile_instance_id_runs_nothing(served: Served, watched: Watched, hostile: str, stage: str) -> None:
    """Under /decoded the app gets the id with its raw <, > and quotes: what the old page put in a script."""
    watched.page.goto(f"{served.base}{stage}/qr-page/{quote(hostile, safe='')}#key={ADMIN_KEY}")
    assert "not found" in wait_for_state(watched).lower(), "the script ran and asked the API about that id"
    if stage == "/decoded":
        assert watched.page.title() == " ".join(f"WhatsApp login · {hostile}".split()), "the whole id, as text"
    assert watched.page.evaluate("document.scripts.length") == 1
    assert watched.page.evaluate("document.querySelectorAll('img').length") == 1
    assert watched.page.evaluate("[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
                                 ".filter(a => a.name.startsWith('on')).length") == 0
    watched.page.wait_for_timeout(300)  # an injected handler or timer would have fired by now
    assert watched.dialogs == [] and watched.violations() == []


def test_the_policy_refuses_an_inline_script_and_the_dialog_watch_works(served: Served, watched: Watched) -> None:
    """The controls of the test above: what it would see if something got through."""
    watched.page.goto(f"{served.base}/qr-page/{served.instance_id}")
    watched.page.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.__ran = true";
      document.head.append(script);
      const img = document.createElement("img");
      img.setAttribute("onerror", "window.__ran = true");
      img.src = "x";
      document.body.append(img);
    }""")
    watched.page.wait_for_timeout(300)
    assert watched.page.evaluate("window.__ran === undefined")
    violations = watched.violations()
    assert any(v.startswith("script-src") for v in violations), violations
    watched.page.evaluate("setTimeout(() => alert('control'), 0)")
    watched.page.wait_for_timeout(300)
    assert watched.dialogs == ["control"]


def test_the_docs_page_renders_the_document_under_the_stage_prefix(served: Served, watched: Watched) -> None:
    watched.page.goto(f"{served.base}/prod/docs#key={ADMIN_KEY}")
    watched.page.wait_for_selector("#ops details", timeout=10_000)
    assert watched.page.evaluate("document.querySelectorAll('#ops details').length") > 20
    assert state_text(watched).startswith("OpenAPI 3.1.0")
    assert "/prod/openapi.json" in {urlsplit(url).path for url, _ in watched.requests}
    assert watched.violations() == [] and watched.dialogs == [] and watched.console_errors == []
