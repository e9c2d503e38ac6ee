"""The TypeScript client's own suite (sdk/typescript/test, node's test runner) against the stacks of
tests/sdk: `npm test` builds the package with tsc, compiles the seed's examples, and runs `node --test`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chalicelib.openapi import docs_page, document
from tests.sdk.stacks import ADMIN_KEY, KEYED_TS_TOKEN, SDK_TYPESCRIPT, TS_TOKEN, Stacks


def installed() -> None:
    """npm ci when node_modules does not match the lock file (`make install` does it too)."""
    stamp = SDK_TYPESCRIPT / "node_modules" / ".package-lock.json"
    lock = SDK_TYPESCRIPT / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SDK_TYPESCRIPT, check=True,
                       timeout=300)


def test_the_typescript_client_suite(stacks: Stacks, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    installed()
    (tmp_path / "openapi.json").write_text(json.dumps(document(stacks.open.base)))
    (tmp_path / "docs.html").write_text(docs_page("/openapi.json"))
    shutil.copy(Path(__file__).parents[2] / "chalicelib" / "static" / "docs.js", tmp_path / "docs.js")
    env = {
        **os.environ,
        "IM_BASE_URL": stacks.open.base,
        "IM_KEYED_BASE_URL": stacks.keyed.base,
        "IM_ADMIN_KEY": ADMIN_KEY,
        "IM_TELEGRAM_TOKEN": TS_TOKEN,
        "IM_KEYED_TELEGRAM_TOKEN": KEYED_TS_TOKEN,
        "IM_OPENAPI_FILE": str(tmp_path / "openapi.json"),
        "IM_DOCS_PAGE_FILE": str(tmp_path / "docs.html"),
        "IM_DOCS_SCRIPT_FILE": str(tmp_path / "docs.js"),
    }
    done = subprocess.run(["npm", "test", "--silent"], cwd=SDK_TYPESCRIPT, env=env, capture_output=True, text=True,
                          timeout=240)
    report = done.stdout[-12000:] + done.stderr[-4000:]
    print(report)  # shown with pytest -rP
    assert done.returncode == 0, report
    counts = dict(re.findall(r"^\N{INFORMATION SOURCE} (tests|pass|fail|skipped|todo) (\d+)$", done.stdout, re.MULTILINE))
    assert counts.get("fail") == "0" and counts.get("skipped") == "0" and counts.get("pass") == counts.get("tests"), report
