"""Starts and stops a local stack (`python -m stack` as a subprocess) for the sections that drive one, and
reads what they need from it: instance statuses, log lines with their timestamps, provider pids."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import PYTHON, ROOT, say
from .local_stack import (
    _STARTED,
    ADMIN_KEY,
    Api,
    Ports,
    ProcInfo,
    _alive,
    _busy_ports,
    _stat,
    _tail,
    _wait_healthy,
    descendants,
)

# The ports of the sections added after the first stack benchmark: clear of the test suites' stacks
# (3000, 3600, ...) and of the `stack` section (3300).
WIDE_PORTS = Ports(3800, 4800, 4801, (9800, 9849))
PORT_WAIT_S = 120.0
POLL_S = 0.05


@dataclass
class LogLine:
    wall: float  # the line's own timestamp (written by the process that logged it), as time.time()
    message: str
    source: str


@dataclass
class StopReport:
    exit_code: int | None = None
    stop_s: float | None = None
    tree: list[ProcInfo] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    ports_left: list[int] = field(default_factory=list)

    def text(self) -> str:
        parts = [f"SIGINT to exit {self.stop_s:.1f} s, exit code {self.exit_code}" if self.stop_s is not None
                 else f"the stack did not stop on SIGINT (exit code {self.exit_code} after SIGKILL)"]
        parts.append(f"left behind: {', '.join(self.leftovers)} (killed by the benchmark)" if self.leftovers
                     else "no process left behind")
        parts.append(f"ports still bound: {self.ports_left}" if self.ports_left else "no port left bound")
        return "; ".join(parts)


class StackProcess:
    """One local stack in a temporary DATA_DIR, stopped with SIGINT as a person would."""

    def __init__(self, ports: Ports, extra_env: dict[str, str], label: str, probe: bool = False) -> None:
        self.ports = ports
        self.probe = probe
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
        self.log_path = self.data_dir / "stack.log"
        self.api = Api(f"http://127.0.0.1:{ports.api}")
        self.process: subprocess.Popen[bytes] | None = None
        self.up_s = 0.0
        self.stopped: StopReport | None = None
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "PORT": str(ports.api), "MOTO_PORT": str(ports.moto), "LAUNCHER_PORT": str(ports.launcher),
            "DATA_DIR": str(self.data_dir), "INSTANCE_PORT_RANGE": f"{ports.instances[0]}-{ports.instances[1]}",
            "ADMIN_API_KEY": ADMIN_KEY, **extra_env,
        }
        self._probe_file = self.data_dir / "aws-requests.json"
        self._probe_sequence = 0
        if probe:
            self._env["BENCH_PROBE_FILE"] = str(self._probe_file)

    def start(self, instances: int = 1) -> str | None:
        """None when the stack answers /api/health, else what went wrong."""
        busy = _busy_ports(self.ports, instances)
        if busy:
            say(f"  ports {busy} are in use (another stack or test run?): waiting up to {PORT_WAIT_S:.0f} s for them")
            deadline = time.monotonic() + PORT_WAIT_S
            while busy and time.monotonic() < deadline:
                time.sleep(2)
                busy = _busy_ports(self.ports, instances)
        if busy:
            return f"ports already in use: {busy}; stop whatever holds them and run again (or use --port-offset)"
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            module = "bench.stack_probe" if self.probe else "stack"
            self.process = subprocess.Popen([PYTHON, "-m", module], cwd=ROOT, env=self._env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if not _wait_healthy(self.api, self.process, 90.0):
            return f"the stack did not answer /api/health within 90 s; its log ends:\n{_tail(self.log_path)}"
        self.up_s = time.monotonic() - started
        say(f"  stack up in {self.up_s:.1f} s (pid {self.process.pid}, {self.ports.describe()}, data in {self.data_dir})")
        return None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def aws_requests(self) -> tuple[dict[str, int], dict[str, float]] | None:
        """The AWS requests moto has answered so far, by operation, and the CPU seconds spent on each
        (only with probe=True: bench/stack_probe.py)."""
        if not self.probe or self.process is None:
            return None
        from .stack_probe import read

        os.kill(self.process.pid, signal.SIGUSR1)
        data = read(self._probe_file, self._probe_sequence)
        if data is None:
            return None
        self._probe_sequence = int(data["sequence"])
        return dict(data["counts"]), dict(data["cpu_s"])

    # ---- instances ---------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.api.call("POST", "/api/v1/instances", body)
        if status != 200:
            raise RuntimeError(f"create answered {status}: {answer}")
        return dict(answer)

    def status(self, instance_id: str) -> str:
        code, answer = self.api.call("GET", f"/api/v1/instances/{instance_id}")
        return str(answer["data"]["status"]) if code == 200 else f"HTTP {code}"

    def wait_status(self, instance_id: str, wanted: str, timeout: float) -> float | None:
        """Seconds until a GET (every 50 ms) answered `wanted`, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            polled = time.monotonic()
            if self.status(instance_id) == wanted:
                return time.monotonic() - t0
            time.sleep(max(0.0, POLL_S - (time.monotonic() - polled)))
        return None

    def logs(self, instance_id: str, tail: int = 1000) -> list[LogLine]:
        """The instance's log (CloudWatch Logs in moto): the launcher's lines and the shipped provider lines."""
        code, answer = self.api.call("GET", f"/api/v1/instances/{instance_id}/logs?tail={tail}")
        if code != 200:
            return []
        found = []
        for line in answer["data"]["logs"]:
            stamp = _wall(line.get("timestamp"))
            if stamp is not None:
                found.append(LogLine(stamp, str(line.get("message", "")), str(line.get("source", ""))))
        return found

    def provider_file(self, instance_id: str) -> list[LogLine]:
        """Every line every provider process of the instance printed (DATA_DIR/providers/<id>.log), in order."""
        path = self.data_dir / "providers" / f"{instance_id}.log"
        found = []
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return []
        for raw in text.splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            stamp = _wall(entry.get("timestamp")) if isinstance(entry, dict) else None
            if stamp is not None:
                found.append(LogLine(stamp, str(entry.get("message", "")), str(entry.get("source", ""))))
        return found

    def provider_pid(self, instance_id: str) -> int | None:
        """The current provider process: the latest `Provider task started: local:<id>:<pid>`, if it is ours."""
        pid = None
        for line in self.logs(instance_id, 1000):
            match = _STARTED.search(line.message)
            if match and match.group(2) == instance_id:
                pid = int(match.group(3))
        if pid is None:
            return None
        stat = _stat(pid)
        return pid if stat is not None and stat[0] == self.pid else None

    # ---- teardown ------------------------------------------------------------------------------
    def stop(self, instances: int = 1) -> StopReport:
        report = StopReport()
        process = self.process
        if process is None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            return report
        if process.poll() is None:
            report.tree = descendants(process.pid)
            t0 = time.monotonic()
            process.send_signal(signal.SIGINT)
            try:
                report.exit_code = process.wait(60)
                report.stop_s = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                process.kill()
                report.exit_code = process.wait()
        else:
            report.exit_code = process.returncode
        left = [p for p in report.tree if _alive(p)]
        if left:
            time.sleep(5)
            left = [p for p in left if _alive(p)]
        for proc in left:  # started (indirectly) by this run: end them, by pid
            try:
                os.kill(proc.pid, signal.SIGKILL)
                report.leftovers.append(f"{proc.pid} ({proc.command})")
            except OSError:
                pass
        report.ports_left = _busy_ports(self.ports, instances)
        self.stopped = report
        self.process = None
        return report

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _wall(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        return []
    return [p for p in found if _stat(p) is not None]


def proc_info(pid: int) -> ProcInfo | None:
    stat = _stat(pid)
    if stat is None:
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        command = "?"
    return ProcInfo(pid, stat[1], command)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
