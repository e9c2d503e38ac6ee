"""The stack's children die with it, even under SIGKILL (stack/children.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.e2e.harness import ROOT, pid_alive, wait_for

# A stand-in for the stack: it starts a child from a thread that then ends (as a launcher request
# thread does), shows that the child outlived the thread, and waits to be killed.
PARENT = textwrap.dedent("""
    import sys, threading, time
    from stack.children import Spawner
    spawner = Spawner()
    child = []
    thread = threading.Thread(target=lambda: child.append(spawner.popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], {})))
    thread.start()
    thread.join()
    time.sleep(0.5)
    print(child[0].pid, child[0].poll() is None, flush=True)
    time.sleep(60)
""")


def test_a_child_outlives_the_thread_that_asked_for_it_and_dies_with_the_stack() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, alive_text = parent.stdout.readline().split()
        child = int(pid_text)
        assert alive_text == "True" and pid_alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        wait_for(lambda: not pid_alive(child), 3, "the child to die with its parent")
    finally:
        parent.kill()
        parent.wait()
