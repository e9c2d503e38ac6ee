"""`make run`: the whole local stack in the foreground. Ctrl-C stops all of it.

moto (server mode, state kept in DATA_DIR) stands in for DynamoDB, SQS, CloudWatch Logs and KMS;
`chalice local` serves the API on PORT; the SQS loop feeds the webhook handler; the local
launcher runs each instance's provider as a process and keeps it running. Each child gets only the
settings it needs (stack/environments.py) and dies with the stack (stack/children.py); a start after
a kill clears what the killed stack left (stack/data_dir.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import data_dir as private_data
from . import moto_state, resources
from .children import Spawner
from .environments import api_environment, fanout_environment, provider_environment
from .guard import create_secret
from .moto_server import MotoServer
from .supervisor import ROOT, LocalProcessLauncher, ReconcileLoop, serve

REGION = "us-east-1"


def stack_environment(port: int, moto_port: int, launcher_port: int, data_dir: Path, run_id: str) -> dict[str, str]:
    defaults = {
        "WEBHOOK_ALLOW_PRIVATE": "true",  # a laptop's webhook receiver is on loopback
        "INSTANCE_PORT_RANGE": "8080-8999",
        "DATA_DIR": str(data_dir),
    }
    forced = {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "LAUNCHER": "local",
        "LOCAL_LAUNCHER_URL": f"http://127.0.0.1:{launcher_port}",
        "LOCAL_LAUNCHER_SECRET_FILE": str(data_dir / "launcher.secret"),
        # moto's KMS keys vanish with the moto process; a key file in DATA_DIR survives restarts.
        "SECRETS_KEY_FILE": str(data_dir / "secrets.key"),
        "PYTHONUNBUFFERED": "1",
        private_data.RUN_VARIABLE: run_id,
    }
    return {**defaults, **os.environ, **forced}


def require_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"[stack] port {port} ({what}) is in use: stop what uses it, or set {what} "
                             "to another port (two stacks side by side need different PORT and DATA_DIR)") from None


def wait_until_up(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def main() -> int:
    port = int(os.environ.get("PORT", "3000"))
    moto_port = int(os.environ.get("MOTO_PORT", str(port + 1000)))
    launcher_port = int(os.environ.get("LAUNCHER_PORT", str(port + 1001)))
    durable = os.environ.get("LOCAL_DURABLE_WRITES", "true").strip().lower() not in ("0", "false", "no", "off")
    os.umask(0o077)  # DATA_DIR holds the data key next to the state it opens: nothing in it is for others
    data_dir = Path(os.environ.get("DATA_DIR", str(ROOT / "data"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    for problem in private_data.make_private(data_dir):
        print(f"[stack] WARNING: could not make private: {problem}", flush=True)
    run = private_data.Run.current()
    try:
        cleared = private_data.take_over(data_dir, run)
    except private_data.AlreadyRunning as exc:
        raise SystemExit(f"[stack] {exc}") from None
    if cleared:
        print(f"[stack] stopped {len(cleared)} processes a killed stack left behind: {cleared}", flush=True)
    for number, name in ((port, "PORT"), (moto_port, "MOTO_PORT"), (launcher_port, "LAUNCHER_PORT")):
        require_free(number, name)
    os.environ.update(stack_environment(port, moto_port, launcher_port, data_dir, run.run))
    if not os.environ.get("ADMIN_API_KEY"):
        print("[stack] WARNING: ADMIN_API_KEY is not set: the API is open to anyone who can reach "
              "127.0.0.1; it listens on loopback only", flush=True)
    secret = create_secret(Path(os.environ["LOCAL_LAUNCHER_SECRET_FILE"]))

    keeper = moto_state.StateKeeper(data_dir, REGION, durable)
    moto = MotoServer(moto_port, keeper)
    import boto3

    session = boto3.session.Session(region_name=REGION)
    os.environ.update(resources.environment(resources.deploy(session.client("cloudformation"))))
    restored = keeper.restore(moto.app.replay)
    if keeper.replay_failures:
        print(f"[stack] WARNING: {keeper.replay_failures} of the {keeper.replayed} journaled writes replayed "
              "with an error", flush=True)
    keeper.start()

    from chalicelib.config import Settings
    from chalicelib.services import InstanceService
    from chalicelib.wiring import Container

    settings = Settings.from_env()
    container = Container(settings)
    spawner = Spawner()
    stack_pid = os.getpid()
    launcher = LocalProcessLauncher(
        data_dir, lambda instance: provider_environment(os.environ, instance.id, instance.provider.value, stack_pid),
        spawner)
    service = InstanceService(container.repository, launcher, container.instance_log, settings)
    guard = threading.RLock()

    def reconcile() -> int:
        with guard:
            return service.reconcile()

    launcher_http = serve(launcher, container.repository.get, launcher_port, guard, secret)
    reconcile()
    loop = ReconcileLoop(reconcile)
    loop.start()

    sqs_loop = Child([sys.executable, "-m", "stack.sqs_loop"], "the SQS loop", fanout_environment(os.environ), spawner)

    chalice = spawner.popen(
        [str(Path(sys.executable).parent / "chalice"), "local", "--host", "127.0.0.1", "--port", str(port),
         "--no-autoreload", "--stage", "local"],
        api_environment(os.environ), cwd=ROOT,
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    if wait_until_up(f"http://127.0.0.1:{port}/api/health", 30):
        print(f"[stack] Instance Manager API on http://127.0.0.1:{port} (moto on :{moto_port}, launcher on "
              f":{launcher_port}, data in {data_dir}"
              f"{f', restored ({keeper.replayed} journaled writes replayed)' if restored else ''}"
              f"{'' if durable else ', writes not durable'}). Ctrl-C stops it.", flush=True)
    else:
        print("[stack] chalice local did not come up", flush=True)
        stopping.set()
    while not stopping.wait(0.5):
        if chalice.poll() is not None:
            print(f"[stack] chalice local exited with {chalice.returncode}", flush=True)
            break
        sqs_loop.keep_running()

    print("[stack] stopping", flush=True)
    loop.stop()
    sqs_loop.stop()
    _terminate(chalice)
    with guard:
        launcher.stop_all()
    launcher_http.shutdown()
    loop.join(timeout=5)
    keeper.stop()
    moto.stop()
    private_data.release(data_dir, run)
    print("[stack] stopped", flush=True)
    return 0


class Child:
    """A process of the stack that is started again when it dies (as Lambda would be)."""

    def __init__(self, command: list[str], name: str, env: dict[str, str], spawner: Spawner) -> None:
        self._command, self._name, self._env, self._spawner = command, name, env, spawner
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return self._spawner.popen(self._command, self._env, cwd=ROOT, stdin=subprocess.DEVNULL)

    def keep_running(self) -> None:
        if self._process.poll() is not None:
            print(f"[stack] {self._name} exited with {self._process.returncode}; starting it again", flush=True)
            self._process = self._start()

    def stop(self) -> None:
        _terminate(self._process)


def _terminate(process: Any) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
