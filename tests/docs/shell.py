"""A bash shell that runs statements one at a time, as a person pasting them would, and the commands
a person would start in terminals of their own."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.harness import ROOT


class StatementFailed(AssertionError):
    pass


class Shell:
    """One `bash` for a whole README section: variables and the current folder carry over. Each
    statement runs with its stdin closed (it must not eat the next ones) and ends with a marker line,
    which tells where its output ends; `set -e` ends the shell at the first failing command."""

    def __init__(self, env: dict[str, str], transcript: list[str]) -> None:
        self.transcript = transcript
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=ROOT, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send("set -euo pipefail\n")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def run(self, statement: str, where: str, timeout: float = 120) -> str:
        marker = f"__readme_statement_done_{secrets.token_hex(8)}__"
        self.transcript.append(f"$ {statement}")
        self._send(f"{{\n{statement}\n}} </dev/null\nprintf '\\n%s\\n' {marker}\n")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise StatementFailed(f"{where}: still running after {timeout} s:\n{statement}\n"
                                      f"output so far:\n{''.join(output)}") from None
            if line is None:
                code = self.process.wait(10)
                self.transcript.append("".join(output))
                raise StatementFailed(f"{where}: the shell exited with {code} (set -e) running:\n{statement}\n"
                                      f"output:\n{''.join(output)}")
            if line.rstrip("\n") == marker:
                text = "".join(output)
                text = text[:-1] if text.endswith("\n") else text  # the newline printf put before the marker
                self.transcript.append(text if len(text) < 3000 else text[:3000] + f"… ({len(text)} characters)")
                return text
            output.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Background:
    """A command from a README terminals block, started as its own process group, its output to a file."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command, self.log = command, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, timeout: float = 30) -> None:
        """Ready once it has printed something (each of the README's servers prints where it listens)."""
        deadline = time.monotonic() + timeout
        while not self.output().strip():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.command!r} exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.command!r} printed nothing in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Ctrl-C, as in its terminal; then SIGKILL for its group if it does not go."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
