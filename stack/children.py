"""Starting the stack's child processes so that they die with it, even when it is killed with SIGKILL.

On Linux each child asks the kernel for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG). The
kernel sends it when the *thread* that forked the child ends, not the process (prctl(2)): a provider
started from a launcher request thread would be killed as soon as that request was answered. So every
child is forked by one thread that lives as long as the stack. SIGKILL rather than SIGTERM: everything
a child would flush on a graceful stop goes to moto, which died with the stack.

Elsewhere (no prctl) children are started the same way without it; the provider's own
EXIT_WITH_PARENT watch and the next start's clean-up (stack/data_dir.py) remain."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved before any fork: the function that runs in the child between fork and exec must do as
# little as possible (no imports, no lookups).
_PRCTL = _prctl()


def die_with(parent_pid: int) -> Callable[[], None] | None:
    if _PRCTL is None:
        return None
    prctl = _PRCTL

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the stack died between fork and prctl: nobody will signal us
            os._exit(1)

    return in_child


class Spawner:
    """Starts processes from its own long-lived thread (see the module's docstring)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spawner", daemon=True)
        self._thread.start()

    def popen(self, command: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        preexec = die_with(os.getpid())

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, env=env, preexec_fn=preexec, start_new_session=True, **kwargs)

        if threading.current_thread() is self._thread:
            return start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((start, done))
        return done.result()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            start, done = request
            try:
                done.set_result(start())
            except BaseException as exc:
                done.set_exception(exc)
