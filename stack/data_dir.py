"""DATA_DIR: private to the user, and a record of the run that owns it.

Everything in DATA_DIR is as sensitive as the secrets it holds: the data key file opens every sealed
secret in the state next to it. So the stack runs with umask 077 (whatever it or its children write
is 0600 or 0700) and tightens what an earlier version or another tool left more open.

The record (stack.json) names the stack process and a random id for the run, which every child
carries in its environment (LOCAL_STACK_RUN). A start that finds the recorded stack gone (killed, the
machine rebooted) clears what it left: the processes that carry that run's id, and only those, so
a reused pid of an unrelated process is never touched. A start that finds it still alive refuses:
two stacks on one DATA_DIR would overwrite each other's state."""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD = "stack.json"
RUN_VARIABLE = "LOCAL_STACK_RUN"


def make_private(data_dir: Path) -> list[str]:
    """Take the group's and others' permissions off DATA_DIR and everything in it (what the stack writes
    becomes 0700 and 0600; the owner's own bits stay as they are); returns what it could not change."""
    problems: list[str] = []

    def tighten(path: Path) -> None:
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                return  # a link's own mode means nothing; its target is not ours to change
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")

    tighten(data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            tighten(Path(root) / name)
    return problems


@dataclass(frozen=True)
class Run:
    run: str
    pid: int
    started: int  # the process's start time in clock ticks since boot (/proc/<pid>/stat, field 22)
    boot: str

    @staticmethod
    def current() -> Run:
        return Run(secrets.token_hex(16), os.getpid(), _start_ticks(os.getpid()) or 0, _boot_id())

    def alive(self) -> bool:
        return self.boot == _boot_id() and self.started != 0 and _start_ticks(self.pid) == self.started


class AlreadyRunning(Exception):
    pass


def take_over(data_dir: Path, run: Run, grace: float = 5.0) -> list[int]:
    """Record `run` as DATA_DIR's owner, after killing what a dead previous run left; returns the pids killed."""
    path = data_dir / RECORD
    previous = _read(path)
    killed: list[int] = []
    if previous is not None:
        if previous.alive():
            raise AlreadyRunning(f"another local stack (pid {previous.pid}) is using {data_dir}: stop it first, "
                                 "or give this one another DATA_DIR")
        killed = marked_processes(previous.run)
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while marked_processes(previous.run) and time.monotonic() < deadline:
            time.sleep(0.05)
    tmp = path.with_name(RECORD + ".tmp")
    tmp.write_text(json.dumps(asdict(run)))
    os.replace(tmp, path)
    return killed


def release(data_dir: Path, run: Run) -> None:
    """At a clean stop: nothing of this run is left to clear."""
    path = data_dir / RECORD
    if _read(path) == run:
        path.unlink(missing_ok=True)


def marked_processes(run_id: str) -> list[int]:
    """Live processes (of this user: others' environments cannot be read) started with LOCAL_STACK_RUN=run_id."""
    return processes_with_env(RUN_VARIABLE, run_id)


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes, this one aside, started with NAME=VALUE in their environment."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _state(int(entry.name)) not in ("Z", "X"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _read(path: Path) -> Run | None:
    try:
        return Run(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # the command name, in parentheses, may hold spaces


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and fields[0] not in ("Z", "X") else None


def _state(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[0] if fields else "X"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return sys.platform
