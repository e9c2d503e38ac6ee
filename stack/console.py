"""The local stack's console: one readable stream of what a person watching `make run` wants.

- The stack's own lines and each component's start: `[stack]`, `[moto]`, `[launcher]`, `[api]`
  (`chalice local`), `[fanout]` (the SQS loop).
- Each instance's log lines as they are written, `[1a2b3c4d telegram] info: ...`: read back from the
  CloudWatch Logs group moto holds (InstanceLogFollower), so they are the lines `GET .../logs` gives,
  already masked by the product (chalicelib/instance_log.py).
- The children's own output goes to files in DATA_DIR (`logs/api.log`, `logs/fanout.log`,
  `providers/<id>.log`). Of the API's and the SQS loop's, the console shows what a person must see:
  records at WARNING and above, tracebacks, and the last lines of one that exited. Of a provider's,
  only that it exited unasked: its log lines come from CloudWatch, and the rest is its libraries' talk.
- Libraries log at WARNING and above only.

LOG_LEVEL=debug shows everything: every line of every child's output, and the libraries' INFO records.
Whatever a child writes is masked as instance log lines are (token shapes) before it reaches a file or
the console.

Children import this module too (`configure_child_logging`): it imports nothing heavy."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TextIO

from chalicelib.instance_log import Redactor

LEVEL_VARIABLE = "LOG_LEVEL"
# The loggers whose INFO records are noise to a person watching the stack ("Found credentials in
# environment variables.", one line per HTTP request, ...).
LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "werkzeug", "moto", "pynamodb", "telegram", "httpx",
             "httpcore", "asyncio")
CHILD_FORMAT = "%(levelname)s %(name)s: %(message)s"
LAST_LINES = 15
redact = Redactor()  # no secret known here: the shapes of those nobody registered (a bot token)


def wants_debug(env: Mapping[str, str]) -> bool:
    return env.get(LEVEL_VARIABLE, "info").strip().lower() == "debug"


def configure_child_logging(env: Mapping[str, str] = os.environ) -> None:
    """For a child of the stack, before anything logs: every record on stdout with its level (so that
    the stack can pick the ones at WARNING and above), the libraries quiet unless LOG_LEVEL=debug."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=CHILD_FORMAT)
    level = logging.INFO if wants_debug(env) else logging.WARNING
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(level)


class Console:
    """Lines from many threads, one whole line at a time, flushed at once."""

    def __init__(self, out: TextIO | None = None, debug: bool = False) -> None:
        self._out = out if out is not None else sys.stdout
        self.debug = debug
        self._lock = threading.Lock()

    def write(self, source: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        lines = text.splitlines() or [""]
        with self._lock:
            try:
                for line in lines:
                    self._out.write(f"{stamp} [{source}] {line}\n")
                self._out.flush()
            except (OSError, ValueError):  # the terminal went away: the stack goes on without it
                pass

    def take_logging(self) -> None:
        """The stack process's own records (moto's, boto3's, ...) come here, at WARNING unless debug."""
        console = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                console.write("stack", f"{record.levelname} {record.name}: {self.format(record)}")

        root = logging.getLogger()
        root.addHandler(Handler())
        root.setLevel(logging.INFO if self.debug else logging.WARNING)


_RECORD = re.compile(r"^(?:\S+ - )?(WARNING|ERROR|CRITICAL)\b")  # ours, and chalice's app.log format


class Alarms:
    """Which lines of a child's output a person must see: records at WARNING and above (this module's
    format, and app.log's `name - LEVEL - message`) and whole tracebacks. One per child: a traceback
    spans lines."""

    def __init__(self) -> None:
        self._in_traceback = False

    def __call__(self, line: str) -> bool:
        if line.startswith("Traceback (most recent call last):"):
            self._in_traceback = True
            return True
        if self._in_traceback:
            # A traceback's frames are indented; its first unindented line is the exception, and ends it.
            self._in_traceback = line.startswith((" ", "\t")) or not line.strip()
            return True
        return bool(_RECORD.match(line))


def _never(line: str) -> bool:
    return False


class ChildOutput:
    """Reads a child's stdout (stderr merged into it) to the end: every line to `file`, and to the
    console those that `shown` picks (all of them under LOG_LEVEL=debug)."""

    def __init__(self, stream: IO[bytes], file: Path, console: Console, source: str,
                 shown: Callable[[str], bool], ended: Callable[[ChildOutput], None] | None = None) -> None:
        self.file, self.source = file, source
        self._stream, self._console, self._ended = stream, console, ended
        self._shown = (lambda line: True) if console.debug else shown
        self._last: deque[str] = deque(maxlen=LAST_LINES)
        file.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"output-{source}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.file, "ab") as out, self._stream:
            for raw in iter(self._stream.readline, b""):
                line = redact(raw.decode(errors="replace").rstrip("\r\n"))
                out.write(line.encode() + b"\n")
                out.flush()
                self._last.append(line)
                if self._shown(line):
                    self._console.write(self.source, line)
        if self._ended is not None:
            self._ended(self)

    def last_lines(self, wait: float = 2.0) -> list[str]:
        """What it wrote last; once the child has exited, waits (a little) for the rest of its output."""
        self._thread.join(wait)
        return list(self._last)


class Outputs:
    """Where each child's output goes (see the module's docstring)."""

    def __init__(self, console: Console, data_dir: Path) -> None:
        self.console = console
        self._data_dir = data_dir

    def popen_options(self) -> dict[str, int]:
        return {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}

    def component(self, process: subprocess.Popen[bytes], name: str) -> ChildOutput:
        """chalice local (`api`) or the SQS loop (`fanout`): its warnings and errors are shown."""
        assert process.stdout is not None
        return ChildOutput(process.stdout, self._data_dir / "logs" / f"{name}.log", self.console, name, Alarms())

    def provider(self, process: subprocess.Popen[bytes], instance_id: str, provider: str) -> ChildOutput:
        """Its output is not shown; that it failed is (the launcher then starts it again), and where its output is."""
        assert process.stdout is not None

        def ended(output: ChildOutput) -> None:
            try:
                code = process.wait(5)  # its output ended: it is exiting
            except subprocess.TimeoutExpired:
                return
            if code not in (0, -signal.SIGTERM):  # 0: stopped by the launcher, or its instance was deleted
                self.console.write("stack", f"the provider of {short_id(instance_id)} ({provider}) exited with {code} "
                                            f"(its output: {output.file})")

        return ChildOutput(process.stdout, self._data_dir / "providers" / f"{instance_id}.log", self.console,
                           f"{short_id(instance_id)} {provider} process", _never, ended)

    def report(self, output: ChildOutput, what: str) -> None:
        """A child that exited, or did not come up: say so, with its last lines (unless debug showed them all)."""
        self.console.write("stack", f"{what} (its output: {output.file})")
        if not self.console.debug:
            for line in output.last_lines():
                self.console.write(output.source, line)


def short_id(instance_id: str) -> str:
    return instance_id[:8]


class InstanceLogFollower(threading.Thread):
    """Prints each instance's log lines as they are written. `read` gives the events written since its
    last call, as (stream, timestamp in ms, message); a stream is an instance (chalicelib/adapters/
    cloudwatch.py) and a message is a LogLine in JSON."""

    def __init__(self, read: Callable[[], list[tuple[str, int, str]]], provider_of: Callable[[str], str | None],
                 console: Console, interval: float = 0.5) -> None:
        super().__init__(name="instance-logs", daemon=True)
        self._read, self._provider_of, self._console = read, provider_of, console
        self._interval = interval
        self._providers: dict[str, str] = {}
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        try:
            events = self._read()
        except Exception as exc:  # moto is in this process: this is a bug, not an outage; keep going
            self._console.write("stack", f"could not read the instances' logs: {type(exc).__name__}: {exc}")
            return
        for stream, _, message in events:
            self._console.write(self._source(stream), _line_text(message))

    def stop(self) -> None:
        """After the providers stopped: their last lines are shown too."""
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=5)
        self.poll()

    def _source(self, instance_id: str) -> str:
        provider = self._providers.get(instance_id)
        if provider is None:
            try:
                provider = self._provider_of(instance_id)
            except Exception:  # the record is unreadable just now: the line goes out without it
                provider = None
            if provider is None:
                return short_id(instance_id)
            self._providers[instance_id] = provider
        return f"{short_id(instance_id)} {provider}"


def _line_text(message: str) -> str:
    try:
        line = json.loads(message)
        return f"{line['level']}: {line['message']}"
    except (ValueError, KeyError, TypeError):
        return message
