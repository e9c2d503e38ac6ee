"""`make reset` deletes DATA_DIR, and refuses (deleting nothing) while a stack seems to use it or when
the folder is not a stack's. The end-to-end case, on a real stack, is in tests/docs/test_readme.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from tests.e2e.harness import ROOT

FREE_PORT = 4198  # nothing listens there (the peers' range of tests/docs)


def make_reset(data_dir: Path, port: int = FREE_PORT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port)}
    return subprocess.run(["make", "--no-print-directory", "reset"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def stack_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "providers").mkdir(parents=True)
    (data / "secrets.key").write_bytes(b"k" * 32)
    return data


def test_it_deletes_a_stacks_data(tmp_path: Path) -> None:
    data = stack_data(tmp_path)
    (data / "stack.json").write_text(json.dumps({"run": "r", "pid": 2**22 + 1, "started": 1, "boot": "b"}))  # no such pid
    done = make_reset(data)
    assert done.returncode == 0, done.stderr
    assert not data.exists() and "deleted" in done.stdout


def test_it_refuses_while_the_port_answers(tmp_path: Path) -> None:
    data = stack_data(tmp_path)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 4199))
        listening.listen()
        refused = make_reset(data, 4199)
    assert refused.returncode != 0 and "seems to be running" in refused.stderr
    assert (data / "secrets.key").exists()


def test_it_refuses_while_the_recorded_stack_is_alive(tmp_path: Path) -> None:
    data = stack_data(tmp_path)
    (data / "stack.json").write_text(json.dumps({"run": "r", "pid": os.getpid(), "started": 1, "boot": "b"}))
    refused = make_reset(data)
    assert refused.returncode != 0 and f"pid {os.getpid()}" in refused.stderr
    assert (data / "secrets.key").exists()


def test_it_never_deletes_a_folder_that_is_not_a_stacks(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused = make_reset(tmp_path)
    assert refused.returncode != 0 and "does not look like" in refused.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert make_reset(tmp_path / "missing").returncode == 0
