"""The README runs: every shell block of it and every `curl` of its tables, in README order, against a
real local stack and the fake Telegram, WhatsApp and webhook peers, started from the README's own
terminal commands; every answer it shows is the answer the product gave (tests/docs/answers.py says how
placeholders read), and the SDK examples run against the same stack from packages installed the way
the README installs them. The conventions the README follows are in tests/docs/readme.py.

Ports: the stack on 4100 (moto 5100, launcher 5101), the peers on 4150-4153, instances on 9850-9899."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.docs import readme
from tests.docs.answers import difference, lines_difference
from tests.docs.shell import Background, Shell
from tests.e2e.harness import ROOT, LocalStack, port_open

PORTS = {"PORT": 4100, "TG_PORT": 4150, "HOOK_PORT": 4151, "WA_PORT": 4152, "WA_CONTROL_PORT": 4153}
INSTANCE_PORT_RANGE = "9850-9899"
# What a person pastes into a `make run` line (`NAME=<…>`): where an earlier terminal printed it.
PASTED = {"WHATSAPP_ROOT_PUBLIC_KEY": re.compile(r"root public key[^:\n]*: ([0-9a-f]{64})")}
SESSIONS = readme.sessions()


def everything_run() -> Iterator[readme.Statement | readme.Terminal | readme.SourceFile]:
    for session in SESSIONS:
        for item in session.items:
            if not isinstance(item, readme.Skipped):
                yield item


def texts_run() -> Iterator[tuple[int, str]]:
    for item in everything_run():
        yield item.line, item.command if isinstance(item, readme.Terminal) else item.text


@dataclass
class World:
    """What the person following the README has running: terminals, the stack, and where things go."""

    root: Path
    env: dict[str, str]
    terminals: list[Background] = field(default_factory=list)
    stack: LocalStack | None = None
    stack_codes: list[int] = field(default_factory=list)

    def start(self, terminal: readme.Terminal) -> None:
        if terminal.is_stack:
            self.restart_stack(terminal)
            return
        started = Background(terminal.command, self.env, self.root / f"terminal-{len(self.terminals) + 1}.log")
        self.terminals.append(started)
        started.wait_started()

    def restart_stack(self, terminal: readme.Terminal) -> None:
        """`make run`, as the README's line says, replaced by the test's stack: Ctrl-C the one running."""
        if self.stack is not None:
            self.stack_codes.append(self.stack.stop())
        stack = LocalStack(self.root / "data", PORTS["PORT"],
                           {**self.stack_settings(terminal), "INSTANCE_PORT_RANGE": INSTANCE_PORT_RANGE})
        stack.env.pop("ADMIN_API_KEY", None)
        self.stack = stack
        stack.start()

    def stack_settings(self, terminal: readme.Terminal) -> dict[str, str]:
        prefix = re.sub(r"\s*make run\s*$", "", terminal.command)
        for name, printed in PASTED.items():
            if f"{name}=<" in prefix:
                value = next((m.group(1) for t in self.terminals if (m := printed.search(t.output()))), None)
                assert value, f"README.md:{terminal.line}: no terminal printed the value of {name} to paste"
                prefix = re.sub(rf"{name}=<[^>]*>", f"{name}={value}", prefix)
        names = re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", prefix)
        assert names and "<" not in prefix, f"README.md:{terminal.line}: what to set before make run: {prefix!r}"
        show = "import json, os, sys; print(json.dumps({n: os.environ[n] for n in sys.argv[1:]}))"
        done = subprocess.run(["bash", "-c", f"{prefix} python3 -c '{show}' {' '.join(names)}"], env=self.env,
                              capture_output=True, text=True, check=True)
        return dict(json.loads(done.stdout))

    def close(self) -> None:
        try:
            if self.stack is not None and self.stack.process and self.stack.process.poll() is None:
                self.stack_codes.append(self.stack.stop())
        finally:
            for terminal in self.terminals:
                terminal.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    busy = [port for port in [*PORTS.values(), PORTS["PORT"] + 1000, PORTS["PORT"] + 1001] if port_open(port)]
    if busy:
        raise RuntimeError(f"ports {busy} are in use: another run of tests/docs, or something left behind?")
    root = tmp_path_factory.mktemp("readme")
    env = {name: value for name, value in os.environ.items() if name not in {"ADMIN_API_KEY", "APP"}}
    env.update({name: str(port) for name, port in PORTS.items()})
    env["APP"] = str(root / "app")  # the SDK section's "your project"
    started = World(root, env)
    try:
        yield started
    finally:
        started.close()
    assert all(code == 0 for code in started.stack_codes), f"the stack exited with {started.stack_codes}"


def git_status() -> set[str]:
    """New files anywhere, and any change under sdk/ (where the SDK install builds). Other changes to
    tracked files are left out: nothing in the README writes to them, and an editor may, meanwhile."""
    if not (ROOT / ".git").exists():
        return set()
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return {line for line in done.stdout.splitlines() if line.startswith("??") or line[3:].startswith("sdk/")}


@pytest.mark.parametrize("session", [s for s in SESSIONS if any(not isinstance(i, readme.Skipped) for i in s.items)],
                         ids=lambda session: session.name)
def test_the_readme_runs_as_written(session: readme.Session, world: World) -> None:
    transcript: list[str] = []
    wrong: list[str] = []
    before = git_status()
    shell = Shell(world.env, transcript)
    try:
        for item in session.items:
            if isinstance(item, readme.Terminal):
                world.start(item)
            elif isinstance(item, readme.SourceFile):
                shell.run(f"cat > {item.name} <<'__README_FILE__'\n{item.text}\n__README_FILE__", f"README.md:{item.line}")
            elif isinstance(item, readme.Statement):
                output = shell.run(item.text, f"README.md:{item.line}")
                if item.answer is not None and (found := difference(item.answer, output)) is not None:
                    wrong.append(f"README.md:{item.line}: {item.text.splitlines()[0][:100]}\n    {found}")
                if item.answer_lines is not None and (found := lines_difference(item.answer_lines, output)) is not None:
                    wrong.append(f"README.md:{item.line}: {item.text}\n    {found}")
    finally:
        shell.close()
        print("\n".join(transcript))  # shown with pytest -rP, and on a failure
    assert not wrong, "answers the README shows that the product does not give:\n" + "\n".join(wrong)
    left = sorted(git_status() - before)
    assert not left, f"the README's commands left files in the working tree: {left}"
    assert not [p for p in (ROOT / "sdk" / "python").rglob("*") if p.name == "build" or p.name.endswith(".egg-info")]


def make_reset(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(PORTS["PORT"])}
    return subprocess.run(["make", "--no-print-directory", "reset"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_make_run_restores_the_instances_and_make_reset_starts_fresh(world: World) -> None:
    """After the walkthroughs: the stack holds their instances (the WhatsApp walkthrough restarted it, and
    its Telegram instance came back); `make reset` refuses while it runs, and empties it once stopped."""
    stack = world.stack
    assert stack is not None, "no walkthrough started the stack"
    listed = stack.call("GET", "/api/v1/instances").json()["data"]
    assert any(i["account"] == "@demo_bot" and i["status"] == "client_ready" for i in listed), listed
    refused = make_reset(stack.data_dir)
    assert refused.returncode != 0 and "seems to be running" in refused.stderr and stack.data_dir.exists()
    world.stack_codes.append(stack.stop())
    done = make_reset(stack.data_dir)
    assert done.returncode == 0 and not stack.data_dir.exists(), done.stdout + done.stderr
    fresh = LocalStack(stack.data_dir, PORTS["PORT"], {"INSTANCE_PORT_RANGE": INSTANCE_PORT_RANGE})
    world.stack = fresh
    fresh.start()
    assert fresh.call("GET", "/api/v1/instances").json() == {"success": True, "data": []}


def replaced_or_skipped() -> list[readme.Skipped]:
    replaced = [readme.Skipped(item.line, "make run: the test starts its own stack (python -m stack) with the settings "
                               "this line gives, on ports of its choosing", item.command)
                for item in everything_run() if isinstance(item, readme.Terminal) and item.is_stack]
    skipped = [item for session in SESSIONS for item in session.items if isinstance(item, readme.Skipped)]
    return sorted([*replaced, *skipped], key=lambda block: block.line)


@pytest.mark.parametrize("block", replaced_or_skipped(), ids=lambda block: f"README.md:{block.line}")
def test_the_blocks_it_does_not_run(block: readme.Skipped) -> None:
    """Listed as skipped tests, each with its reason: `pytest -rs` shows them."""
    assert block.reason
    pytest.skip(f"README.md:{block.line} not run: {block.reason}")


def single_quoted_variables(text: str) -> list[str]:
    """`$NAME` inside single quotes is never expanded: what such a command sends is the name itself."""
    found, quote, index = [], "", 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            elif char == "$" and re.match(r"[A-Za-z_{]", text[index + 1:index + 2]):
                found.append(text[max(0, index - 20):index + 20])
        elif char == "\\":
            index += 1
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "'" and not quote:
            quote = "'"
        index += 1
    return found


def test_every_variable_is_expanded() -> None:
    quoted = [(line, found) for line, text in texts_run() if (found := single_quoted_variables(text))]
    assert not quoted, f"variables inside single quotes: {quoted}"


def test_no_port_is_written_into_a_command() -> None:
    """The test picks the ports; a person gets the defaults of `${PORT:-3000}` and the like."""
    sources = [(item.line, item.text) for item in everything_run() if isinstance(item, readme.SourceFile)]
    written = [(line, m.group(0)) for line, text in [*texts_run(), *sources]
               for m in re.finditer(r"(?:localhost|127\.0\.0\.1):\d+", re.sub(r"\$\{[A-Z_]+:-\d+\}", "", text))]
    assert not written, f"ports written into commands: {written}"


def test_each_example_has_a_bot_token_of_its_own() -> None:
    tokens = [token for _, text in texts_run() for token in re.findall(r'"bot_token"\s*:\s*"([^"]+)"', text)]
    tokens += [token for item in everything_run() if isinstance(item, readme.SourceFile)
               for token in re.findall(r"['\"](\d{5,}:[A-Za-z0-9_-]{10,})['\"]", item.text)]
    assert len(tokens) >= 4 and len(tokens) == len(set(tokens)), f"bot tokens of the creates: {tokens}"


def test_the_walkthroughs_wait_for_what_they_use() -> None:
    """After a create, the instance API is not listening and /qr answers QR_NOT_AVAILABLE for a while."""
    for session in SESSIONS:
        waited: set[str] = set()
        for statement in session.statements():
            if "scripts/wait-for" in statement.text:
                waited |= {"api", "qr"}
            if re.search(r"\$API/api/v1/(messages|status)", statement.text):
                assert "api" in waited, f"README.md:{statement.line} uses the instance API before waiting for it"
            if re.search(r"/qr\b", statement.text):
                assert "qr" in waited, f"README.md:{statement.line} asks for the QR before waiting for it"


def test_the_conventions_are_kept() -> None:
    assert [s.name for s in SESSIONS if any(isinstance(i, readme.Terminal) and i.is_stack for i in s.items)] == [
        "Try it with no Telegram account", "Try WhatsApp with no phone"]
    assert shutil.which("bash")
    with pytest.raises(readme.ReadmeError, match="must say why"):
        readme.sessions("## A\n```sh not-run\nmake run\n```\n")
    with pytest.raises(readme.ReadmeError, match="unknown shell block tag"):
        readme.sessions("## A\n```sh maybe\necho\n```\n")
    with pytest.raises(readme.ReadmeError, match="no command above it"):
        readme.sessions("## A\n```sh\n# → 1\n```\n")
    parsed = readme.sessions("## A\n```sh\nX=$(echo \\\n  1)\n# → 1\necho \"$X\"\n```\n"
                             "## B\n<!-- same shell as the section above -->\n| a | `curl -s $IM/x` → `{}` |\n")
    assert [s.name for s in parsed] == ["A + B"]
    assert [(s.text, s.answer) for s in parsed[0].statements()] == [
        ("X=$(echo \\\n  1)", "1"), ('echo "$X"', None), ("curl -s $IM/x", "{}")]
