"""Figures 3 and 4, on the local stack (`python -m stack` as a subprocess, with the fake Telegram Bot API):

3. create-to-client_ready time of Telegram instances: POST /api/v1/instances, then GET the instance
   every 50 ms until its status is client_ready;
4. RSS of the provider processes once ready and idle for ~5 s, next to a bare asyncio process.

Then every instance is deleted, the stack is stopped with SIGINT, and what it leaves behind (processes,
listening ports) is checked and reported."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import PYTHON, ROOT, SectionResult, median, percentile, say, table

KEY_READY = "create-to-ready"
KEY_RSS = "provider-rss"
TITLE_READY = "Create to client_ready (Telegram, local stack)"
TITLE_RSS = "Memory of a provider process (Telegram engine)"



@dataclass(frozen=True)
class Ports:
    api: int = 3300
    moto: int = 4300
    launcher: int = 4301
    instances: tuple[int, int] = (9300, 9399)

    def shifted(self, offset: int) -> Ports:
        return Ports(self.api + offset, self.moto + offset, self.launcher + offset,
                     (self.instances[0] + offset, self.instances[1] + offset))

    def describe(self) -> str:
        return (f"PORT={self.api}, MOTO_PORT={self.moto}, LAUNCHER_PORT={self.launcher}, "
                f"INSTANCE_PORT_RANGE={self.instances[0]}-{self.instances[1]}")

ADMIN_KEY = "bench-admin-key"
POLL_S = 0.05
READY_TIMEOUT_S = 60.0
IDLE_S = 5.0
PORT_WAIT_S = 120.0
_STARTED = re.compile(r"Provider task started: (local:([0-9a-f-]+):(\d+))")
_BASELINE_CODE = "import asyncio; asyncio.run(asyncio.sleep(30))"
# For scale: what importing alone costs, in a fresh process (no instance, no network).
_IMPORT_PROBES = [
    ("python-telegram-bot alone (`import telegram.ext`), imports only", "telegram.ext"),
    ("the provider's imports (`provider.__main__` + Telegram engine), imports only",
     "provider.__main__, provider.engines.telegram"),
]
_RSS_CODE = (
    "import {modules}\n"
    "fields = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n"
    "print(fields['VmRSS'].split()[0])"
)


@dataclass
class Launch:
    instance_id: str
    company_id: str
    create_s: float  # POST answered
    ready_s: float | None = None  # client_ready first seen
    first_seen: dict[str, float] = field(default_factory=dict)  # status -> seconds after the POST was sent
    polls: int = 0
    pid: int | None = None
    last_status: str = ""
    sent_at: float = 0.0  # wall clock (time.time()) when the POST was sent
    runtime_started_at: float | None = None  # wall clock of "Provider runtime started" in the provider's log
    ready_logged_at: float | None = None  # wall clock of "client ready" in the provider's log


@dataclass
class ProcInfo:
    pid: int
    start_ticks: int
    command: str

    def shown(self) -> str:
        return f"{self.pid} `{self.command}`" if self.command else f"{self.pid} (zombie: exited, not yet reaped)"


class Api:
    def __init__(self, base: str) -> None:
        self._base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 35.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "x-api-key": ADMIN_KEY})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw or b"null")
            except ValueError:
                return exc.code, raw.decode(errors="replace")


# ---- /proc helpers (psutil is not in the venv) ---------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks), or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def _alive(info: ProcInfo) -> bool:
    stat = _stat(info.pid)
    if stat is None:
        return False
    try:  # a zombie has exited; only its parent's wait is missing
        state = Path(f"/proc/{info.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return stat[1] == info.start_ticks and state != "Z"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


def descendants(root: int) -> list[ProcInfo]:
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
                starts[int(entry.name)] = stat[1]
    found: list[ProcInfo] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(ProcInfo(pid, starts[pid], _command(pid)))
        queue.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM from /proc/<pid>/status, Pss from smaps_rollup (shared pages split between users)."""
    values: dict[str, int] = {}
    try:
        for text_line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = text_line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                values[name] = int(rest.split()[0])
    except OSError:
        return {}
    try:
        for text_line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if text_line.startswith("Pss:"):
                values["Pss"] = int(text_line.split()[1])
    except OSError:
        pass
    return values


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- the run -----------------------------------------------------------------------------
@dataclass
class StackRun:
    instances: int
    ports: Ports
    launches: list[Launch] = field(default_factory=list)
    deletes_s: list[float] = field(default_factory=list)
    provider_exit_s: list[float] = field(default_factory=list)
    providers: dict[str, dict[str, int]] = field(default_factory=dict)  # instance id -> memory
    baseline: dict[str, int] = field(default_factory=dict)
    stack_up_s: float = 0.0
    stop_s: float | None = None
    exit_code: int | None = None
    tree: list[ProcInfo] = field(default_factory=list)
    leftovers: list[ProcInfo] = field(default_factory=list)
    ports_left: list[int] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    import_rss: dict[str, float] = field(default_factory=dict)  # label -> median VmRSS KiB
    runtime_starts: int = 0  # "Provider runtime started" lines in the providers' own logs
    started_after_delete: int = 0  # provider processes that found their instance already deleted


def _busy_ports(ports: Ports, count: int) -> list[int]:
    wanted = [ports.api, ports.moto, ports.launcher, *range(ports.instances[0], ports.instances[0] + count)]
    return [p for p in wanted if port_in_use(p)]


def _measure(instances: int, ports: Ports) -> StackRun:
    from tests.peers.telegram_bot_api import FakeTelegramServer

    result = StackRun(instances, ports)
    busy = _busy_ports(ports, instances)
    deadline = time.monotonic() + PORT_WAIT_S
    if busy:
        say(f"  ports {busy} are in use (another stack or test run?): waiting up to {PORT_WAIT_S:.0f} s for them")
    while busy and time.monotonic() < deadline:
        time.sleep(2)
        busy = _busy_ports(ports, instances)
    if busy:
        result.problems.append(f"ports already in use: {busy}; stop whatever holds them and run again")
        return result
    tokens = [f"{7000000 + i}:bench-{i:02d}-AAAAAAAAAAAAAAAAAAAA" for i in range(instances)]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    log_path = data_dir / "stack.log"
    telegram = FakeTelegramServer(tokens)
    telegram.start()
    stack: subprocess.Popen[bytes] | None = None
    baseline: subprocess.Popen[bytes] | None = None
    api = Api(f"http://127.0.0.1:{ports.api}")
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "PORT": str(ports.api), "MOTO_PORT": str(ports.moto), "LAUNCHER_PORT": str(ports.launcher),
            "DATA_DIR": str(data_dir), "INSTANCE_PORT_RANGE": f"{ports.instances[0]}-{ports.instances[1]}",
            "TELEGRAM_API_ROOT": telegram.api_root, "ADMIN_API_KEY": ADMIN_KEY,
        }
        started = time.monotonic()
        with open(log_path, "wb") as log:
            stack = subprocess.Popen([PYTHON, "-m", "stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not _wait_healthy(api, stack, 90.0):
            result.problems.append(f"the stack did not answer /api/health within 90 s; its log ends:\n{_tail(log_path)}")
            return result
        result.stack_up_s = time.monotonic() - started
        say(f"  stack up in {result.stack_up_s:.1f} s (pid {stack.pid}, data in {data_dir})")

        for i, token in enumerate(tokens):
            launch = _create_and_wait(api, f"bench-company-{i}", token)
            if launch is None:
                result.problems.append(f"create #{i} failed; stack log ends:\n{_tail(log_path)}")
                break
            result.launches.append(launch)
            shown = f"{launch.ready_s:.2f} s" if launch.ready_s is not None else f"NOT READY ({launch.last_status})"
            say(f"  instance {i + 1}/{instances}: POST {launch.create_s * 1000:.0f} ms, client_ready after {shown}")

        # Figure 4: every provider idles; the newest one has been ready the shortest time.
        baseline = subprocess.Popen([PYTHON, "-c", _BASELINE_CODE], stdin=subprocess.DEVNULL)
        time.sleep(IDLE_S)
        for launch in result.launches:
            launch.pid = _provider_pid(api, launch.instance_id)
            if launch.pid is not None and _is_child(launch.pid, stack.pid):
                result.providers[launch.instance_id] = memory_kib(launch.pid)
        result.baseline = memory_kib(baseline.pid)
        baseline.terminate()
        baseline.wait(10)
        baseline = None

        for launch in result.launches:
            before = _stat(launch.pid) if launch.pid else None
            t0 = time.monotonic()
            status, body = api.call("DELETE", f"/api/v1/instances/{launch.instance_id}")
            result.deletes_s.append(time.monotonic() - t0)
            if status != 200:
                result.problems.append(f"DELETE {launch.instance_id} answered {status}: {body}")
            if launch.pid and before:
                info = ProcInfo(launch.pid, before[1], "provider")
                while _alive(info) and time.monotonic() - t0 < 15:
                    time.sleep(0.02)
                if _alive(info):
                    result.problems.append(f"provider pid {launch.pid} still runs 15 s after DELETE")
                else:
                    result.provider_exit_s.append(time.monotonic() - t0)
        _stop_stack(stack, result)
        _read_provider_logs(data_dir / "providers", result)
        result.import_rss = _import_rss()
    finally:
        if baseline is not None and baseline.poll() is None:
            baseline.kill()
            baseline.wait()
        if stack is not None and stack.poll() is None:  # something failed above: still stop it properly
            _stop_stack(stack, result)
        telegram.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _import_rss(runs: int = 3) -> dict[str, float]:
    found: dict[str, float] = {}
    for label, modules in _IMPORT_PROBES:
        values = []
        for _ in range(runs):
            done = subprocess.run([PYTHON, "-c", _RSS_CODE.format(modules=modules)], cwd=ROOT, capture_output=True,
                                  text=True, timeout=120)
            if done.returncode == 0:
                values.append(float(done.stdout.strip().splitlines()[-1]))
        if values:
            found[label] = median(values)
    return found


def _wait_healthy(api: Api, stack: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            return False
        try:
            status, _ = api.call("GET", "/api/health", timeout=2)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _create_and_wait(api: Api, company_id: str, token: str) -> Launch | None:
    body = {"company_id": company_id, "provider": "telegram", "type_instance": ["api"], "config": {"bot_token": token}}
    sent_at = time.time()
    t0 = time.monotonic()
    status, answer = api.call("POST", "/api/v1/instances", body)
    created = time.monotonic() - t0
    if status != 200:
        say(f"  create answered {status}: {answer}")
        return None
    launch = Launch(str(answer["instance_id"]), company_id, created, sent_at=sent_at)
    while time.monotonic() - t0 < READY_TIMEOUT_S:
        poll_started = time.monotonic()
        status, answer = api.call("GET", f"/api/v1/instances/{launch.instance_id}")
        seen = time.monotonic() - t0
        launch.polls += 1
        if status == 200:
            launch.last_status = str(answer["data"]["status"])
            launch.first_seen.setdefault(launch.last_status, seen)
            if launch.last_status == "client_ready":
                launch.ready_s = seen
                break
        time.sleep(max(0.0, POLL_S - (time.monotonic() - poll_started)))
    return launch


def _provider_pid(api: Api, instance_id: str) -> int | None:
    status, answer = api.call("GET", f"/api/v1/instances/{instance_id}/logs?tail=200")
    if status != 200:
        return None
    pid = None
    for line in answer["data"]["logs"]:
        match = _STARTED.search(line.get("message", ""))
        if match and match.group(2) == instance_id:
            pid = int(match.group(3))  # the latest start wins
    return pid


def _is_child(pid: int, parent: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] == parent


def _stop_stack(stack: subprocess.Popen[bytes], result: StackRun) -> None:
    result.tree = descendants(stack.pid)
    t0 = time.monotonic()
    stack.send_signal(signal.SIGINT)
    try:
        result.exit_code = stack.wait(60)
        result.stop_s = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        result.problems.append("the stack did not exit within 60 s of SIGINT: killed it")
        stack.kill()
        result.exit_code = stack.wait()
    result.leftovers = [p for p in result.tree if _alive(p)]
    if result.leftovers:
        time.sleep(5)  # give stragglers a moment before calling them leftovers
        result.leftovers = [p for p in result.leftovers if _alive(p)]
    for leftover in result.leftovers:  # started (indirectly) by this run: end them, by pid
        try:
            os.kill(leftover.pid, signal.SIGKILL)
            result.killed.append(f"{leftover.pid} ({leftover.command})")
        except OSError:
            pass
    used = len(result.launches) or result.instances
    result.ports_left = _busy_ports(result.ports, used)


def _read_provider_logs(folder: Path, result: StackRun) -> None:
    """Each provider's stdout (DATA_DIR/providers/<instance id>.log, written by the local launcher)."""
    by_id = {x.instance_id: x for x in result.launches}
    for path in folder.glob("*.log"):
        text = path.read_text(errors="replace")
        result.runtime_starts += text.count("Provider runtime started")
        result.started_after_delete += text.count("does not exist")
        launch = by_id.get(path.stem)
        if launch is None:
            continue
        for text_line in text.splitlines():
            try:
                entry = json.loads(text_line)
                stamp = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            message = str(entry.get("message", ""))
            if message.startswith("Provider runtime started") and launch.runtime_started_at is None:
                launch.runtime_started_at = stamp
            elif "client ready" in message and launch.ready_logged_at is None:
                launch.ready_logged_at = stamp


# ---- reporting ---------------------------------------------------------------------------
def run(instances: int = 10, port_offset: int = 0) -> list[SectionResult]:
    ports = Ports().shifted(port_offset)
    say(f"== {TITLE_READY} and {TITLE_RSS}: {instances} instances, one after another ({ports.describe()}) ==")
    r = _measure(instances, ports)
    sections = [_ready_section(r), _rss_section(r)]
    if not r.launches:
        for section in sections:
            section.skipped = True
    return sections


def _phases(launches: list[Launch]) -> list[tuple[str, list[float]]]:
    complete = [x for x in launches
                if x.ready_s is not None and x.runtime_started_at is not None and x.ready_logged_at is not None]
    if not complete:
        return []
    return [
        ("POST sent → provider runtime started (API call, launcher, process start, imports, instance read, "
         "instance API bound)", [x.runtime_started_at - x.sent_at for x in complete if x.runtime_started_at]),
        ("runtime started → \"client ready\" logged (getMe, polling started, status writes)",
         [x.ready_logged_at - x.runtime_started_at for x in complete if x.ready_logged_at and x.runtime_started_at]),
        ("\"client ready\" logged → seen by a GET poll (status write, poll interval)",
         [x.sent_at + x.ready_s - x.ready_logged_at for x in complete if x.ready_s is not None and x.ready_logged_at]),
    ]


def _ready_section(r: StackRun) -> SectionResult:
    ready = [x.ready_s for x in r.launches if x.ready_s is not None]
    creates = [x.create_s for x in r.launches]
    lines = [
        f"`python -m stack` as a subprocess ({r.ports.describe()}, a temporary DATA_DIR, ADMIN_API_KEY set, "
        "TELEGRAM_API_ROOT at an in-process `FakeTelegramServer` with one registered token per instance). "
        f"{r.instances} Telegram instances, one company each, created one after another; for each, the clock "
        f"starts when `POST /api/v1/instances` is sent and stops at the first `GET /api/v1/instances/{{id}}` "
        f"answering `status: client_ready` (polled every {POLL_S * 1000:.0f} ms, so figures carry up to "
        f"{POLL_S * 1000:.0f} ms of polling granularity). Earlier instances keep running (idle long polls) while "
        f"later ones start. p90 is nearest-rank (the {math.ceil(0.9 * max(1, len(r.launches)))}th of "
        f"{len(r.launches)}).",
        "",
    ]
    if ready:
        stats: list[tuple[str, list[float]]] = [("create → client_ready", ready)]
        authenticated = [x.first_seen["authenticated"] for x in r.launches if "authenticated" in x.first_seen]
        if authenticated:
            stats.append(("create → `authenticated` first seen (when a poll caught it)", authenticated))
        stats.append(("POST /api/v1/instances answered", creates))
        lines.append(table(
            ["Interval", "n", "Median s", "p90 s", "Min s", "Max s"],
            [[name, len(v), f"{median(v):.2f}", f"{percentile(v, 0.9):.2f}", f"{min(v):.2f}", f"{max(v):.2f}"]
             for name, v in stats],
        ))
        phases = _phases(r.launches)
        if phases:
            lines.append("")
            lines.append("Where the time goes (medians over the instances, from the wall-clock timestamps the provider "
                         "writes to its own log under DATA_DIR/providers; same machine, same clock):")
            lines.append("")
            lines.append(table(["Phase", "Median s", "Max s"],
                               [[name, f"{median(v):.2f}", f"{max(v):.2f}"] for name, v in phases]))
        lines.append("")
        lines.append("Per instance, in order (s): " + ", ".join(
            f"{x.ready_s:.2f}" if x.ready_s is not None else f"not ready ({x.last_status})" for x in r.launches))
        lines.append("")
    not_ready = [x for x in r.launches if x.ready_s is None]
    if not_ready:
        lines.append(f"{len(not_ready)} instance(s) did not reach client_ready within {READY_TIMEOUT_S:.0f} s.")
        lines.append("")
    if not r.stack_up_s:  # it never came up: nothing to tear down or count
        lines.extend(f"- PROBLEM: {problem}" for problem in r.problems)
        markdown = "\n".join(lines)
        say(markdown)
        return SectionResult(KEY_READY, TITLE_READY, markdown, list(r.problems))
    lines.append("Teardown, same run:")
    lines.append("")
    if r.deletes_s:
        lines.append(f"- DELETE answered in median {median(r.deletes_s):.2f} s (max {max(r.deletes_s):.2f} s); "
                     f"the provider process was gone when DELETE answered or at most "
                     f"{max(r.provider_exit_s, default=0):.2f} s after the DELETE was sent "
                     f"({len(r.provider_exit_s)}/{len(r.launches)} checked).")
    lines.append(f"- Provider processes started in all: {r.runtime_starts} runtimes reached \"Provider runtime started\" "
                 f"for {len(r.launches)} instances; {r.started_after_delete} more provider process(es) were started "
                 "for an instance already being deleted and exited at once (\"instance … does not exist\" in their "
                 "logs under DATA_DIR/providers).")
    if r.started_after_delete:
        lines.append("  Look at the order of `InstanceService.delete` (chalicelib/services.py) against the stack's "
                     "`ReconcileLoop` (stack/supervisor.py, every second, under the same lock as the launcher's "
                     "DELETE handler): a reconcile pass that still sees the instance running without a live process "
                     "launches a new one (\"Provider task is gone; starting it again\").")
    lines.append(f"- The stack came up (`/api/health` answering) {r.stack_up_s:.1f} s after it was started.")
    if r.stop_s is not None:
        lines.append(f"- SIGINT to exit: {r.stop_s:.1f} s, exit code {r.exit_code}.")
    shown_tree = ", ".join(p.shown() for p in r.tree) or "none"
    lines.append(f"- Processes under the stack just before SIGINT: {shown_tree}.")
    if r.leftovers:
        lines.append(f"- LEFT BEHIND after the stack exited: {', '.join(p.shown() for p in r.leftovers)}"
                     f" (killed by the benchmark: {', '.join(r.killed)}).")
    else:
        lines.append("- Left behind after the stack exited: no process (each pid above checked, with its start "
                     "time, against /proc).")
    lines.append(f"- Ports still bound afterwards (of {r.ports.api}, {r.ports.moto}, {r.ports.launcher} and the "
                 "instance ports used): "
                 f"{r.ports_left or 'none'}.")
    for problem in r.problems:
        lines.append(f"- PROBLEM: {problem}")
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_READY, TITLE_READY, markdown, list(r.problems))


def _rss_section(r: StackRun) -> SectionResult:
    lines = [
        "Same run as the figure above: after the last instance reached client_ready, every provider idled "
        f"{IDLE_S:.0f} s (polling the fake Bot API), then each provider process was found by the pid in its "
        "launcher handle (`Provider task started: local:<instance_id>:<pid>` in `GET .../logs`, checked to be a "
        "child of the stack) and read from /proc (psutil is not in the venv). RSS counts shared pages (Python "
        "itself, shared libraries) in every process; PSS splits them between the processes sharing them. "
        "The baseline is a bare `python -c \"import asyncio; asyncio.run(asyncio.sleep(30))\"` from the same "
        "venv, read at the same moment. The \"imports only\" rows are fresh processes that import and exit "
        "(median of 3), to show how much of a provider is imported code. MiB = 2^20 bytes.",
        "",
    ]
    if r.providers:
        newest = next(x for x in reversed(r.launches) if x.instance_id in r.providers)
        one = r.providers[newest.instance_id]
        rss = [m["VmRSS"] for m in r.providers.values() if "VmRSS" in m]
        pss = [m["Pss"] for m in r.providers.values() if "Pss" in m]
        rows: list[list[object]] = [
            ["one provider (the newest instance)", _mib(one.get("VmRSS", 0)), _mib(one.get("Pss", 0)),
             _mib(one.get("VmHWM", 0)), one.get("Threads", "?")],
            [f"all {len(rss)} providers, median", _mib(median(rss)), _mib(median(pss)) if pss else "?",
             _mib(median([m.get("VmHWM", 0) for m in r.providers.values()])), ""],
            [f"all {len(rss)} providers, min-max", f"{_mib(min(rss))}-{_mib(max(rss))}",
             f"{_mib(min(pss))}-{_mib(max(pss))}" if pss else "?", "", ""],
            ["bare asyncio process (baseline)", _mib(r.baseline.get("VmRSS", 0)), _mib(r.baseline.get("Pss", 0)),
             _mib(r.baseline.get("VmHWM", 0)), r.baseline.get("Threads", "?")],
        ]
        rows.extend([label, _mib(kib), "", "", ""] for label, kib in r.import_rss.items())
        lines.append(table(["Process", "RSS MiB", "PSS MiB", "Peak RSS MiB", "Threads"], rows))
        lines.append("")
        if r.baseline.get("VmRSS"):
            lines.append(f"One provider is {one.get('VmRSS', 0) / r.baseline['VmRSS']:.1f}x the bare asyncio "
                         f"process; {len(rss)} providers hold {_mib(sum(pss))} MiB PSS in total.")
        imported = r.import_rss.get(_IMPORT_PROBES[1][0])
        if imported:
            lines.append("")
            lines.append(f"Of the one provider's {_mib(one.get('VmRSS', 0))} MiB, {_mib(imported)} MiB is there after "
                         f"its imports alone; running (boto3/botocore sessions and clients, PynamoDB's connection, "
                         f"httpx, aiohttp, the polling loop) adds {_mib(one.get('VmRSS', 0) - imported)} MiB.")
    else:
        lines.append("No provider process measured: see the problems above.")
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_RSS, TITLE_RSS, markdown, list(r.problems))
