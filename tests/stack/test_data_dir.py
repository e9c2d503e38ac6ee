"""DATA_DIR is private, and a start clears what a killed stack left, and only that (stack/data_dir.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from stack.data_dir import RECORD, AlreadyRunning, Run, make_private, marked_processes, release, take_over
from tests.e2e.harness import pid_alive, wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def sleeper(processes: list[subprocess.Popen[bytes]], **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(SLEEPER, env={"PATH": os.environ.get("PATH", ""), **env})
    processes.append(process)
    return process


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_everything_in_data_dir_becomes_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "providers").mkdir(parents=True)
    for name in ("moto-state.pickle", "secrets.key", "providers/a.log", "a-script"):
        (data / name).write_text("x")
        os.chmod(data / name, 0o644)
    os.chmod(data / "a-script", 0o775)  # the owner's own bits stay
    os.chmod(data / "providers", 0o755)
    os.chmod(data, 0o775)
    (data / "link").symlink_to(tmp_path)  # a link is left alone, and so is what it points to
    os.chmod(tmp_path, 0o755)
    assert make_private(data) == []
    assert mode(data) == 0o700 and mode(data / "providers") == 0o700
    assert {mode(data / n) for n in ("moto-state.pickle", "secrets.key", "providers/a.log")} == {0o600}
    assert mode(data / "a-script") == 0o700
    assert mode(tmp_path) == 0o755


def test_a_new_start_clears_only_the_dead_runs_processes(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    dead = Run("dead-run", 2**22 + 12345, 1, "another-boot")  # its stack is gone (another boot, even)
    (tmp_path / RECORD).write_text(json.dumps(asdict(dead)))
    leftovers = [sleeper(started, LOCAL_STACK_RUN="dead-run", DATA_DIR=str(tmp_path)) for _ in range(2)]
    same_dir = sleeper(started, DATA_DIR=str(tmp_path))  # e.g. the shell that ran `DATA_DIR=... make run`
    other_run = sleeper(started, LOCAL_STACK_RUN="another-run", DATA_DIR=str(tmp_path))
    wait_for(lambda: len(marked_processes("dead-run")) == 2, 10, "the leftovers to start")

    run = Run.current()
    killed = take_over(tmp_path, run)
    assert sorted(killed) == sorted(p.pid for p in leftovers)
    for process in leftovers:
        assert process.wait(5) == -9
    assert pid_alive(same_dir.pid) and pid_alive(other_run.pid)
    assert json.loads((tmp_path / RECORD).read_text()) == asdict(run)
    release(tmp_path, run)
    assert not (tmp_path / RECORD).exists()


def test_a_live_stack_on_the_same_data_dir_is_not_touched(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    live = Run.current()  # this very process stands for the stack that still runs
    (tmp_path / RECORD).write_text(json.dumps(asdict(live)))
    child = sleeper(started, LOCAL_STACK_RUN=live.run)
    with pytest.raises(AlreadyRunning, match=str(os.getpid())):
        take_over(tmp_path, replace(live, run="new"))
    assert pid_alive(child.pid)


def test_a_reused_pid_is_not_the_recorded_stack(started: list[subprocess.Popen[bytes]]) -> None:
    stranger = sleeper(started)
    current = Run.current()
    assert current.alive()
    assert not replace(current, pid=stranger.pid).alive()  # same boot, a live pid, another start time
    assert not replace(current, boot="another-boot").alive()
