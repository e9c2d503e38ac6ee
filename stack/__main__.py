"""`make run`: the whole local stack in the foreground. Ctrl-C stops all of it.

moto (server mode, state kept in DATA_DIR) stands in for DynamoDB, SQS, CloudWatch Logs and KMS;
`chalice local` serves the API on PORT; the SQS loop feeds the webhook handler; the local
launcher runs each instance's provider as a process and keeps it running. Each child gets only the
settings it needs (stack/environments.py) and dies with the stack (stack/children.py); a start after
a kill clears what the killed stack left (stack/data_dir.py). The console shows each component's
start and each instance's log lines; the children's output goes to files (stack/console.py)."""

from __future__ import annotations

import functools
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
from .console import ChildOutput, Console, InstanceLogFollower, Outputs, wants_debug
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
    console = Console(debug=wants_debug(os.environ))
    console.take_logging()
    say = functools.partial(console.write, "stack")
    if os.environ.get("LOG_LEVEL", "info").strip().lower() not in ("info", "debug"):
        say(f"WARNING: LOG_LEVEL is {os.environ['LOG_LEVEL']!r}, neither info nor debug: info it is")
    for problem in private_data.make_private(data_dir):
        say(f"WARNING: could not make private: {problem}")
    run = private_data.Run.current()
    try:
        cleared = private_data.take_over(data_dir, run)
    except private_data.AlreadyRunning as exc:
        raise SystemExit(f"[stack] {exc}") from None
    if cleared:
        say(f"stopped {len(cleared)} processes a killed stack left behind: {cleared}")
    for number, name in ((port, "PORT"), (moto_port, "MOTO_PORT"), (launcher_port, "LAUNCHER_PORT")):
        require_free(number, name)
    os.environ.update(stack_environment(port, moto_port, launcher_port, data_dir, run.run))
    if not os.environ.get("ADMIN_API_KEY"):
        say("WARNING: ADMIN_API_KEY is not set: the API is open to anyone who can reach 127.0.0.1; it listens "
            "on loopback only")
    secret = create_secret(Path(os.environ["LOCAL_LAUNCHER_SECRET_FILE"]))

    keeper = moto_state.StateKeeper(data_dir, REGION, durable)
    moto = MotoServer(moto_port, keeper)
    import boto3

    session = boto3.session.Session(region_name=REGION)
    os.environ.update(resources.environment(resources.deploy(session.client("cloudformation"))))
    restored = keeper.restore(moto.app.replay)
    if keeper.replay_failures:
        say(f"WARNING: {keeper.replay_failures} of the {keeper.replayed} journaled writes replayed with an error")
    keeper.start()
    replayed = f", state restored from {data_dir} ({keeper.replayed} journaled writes replayed)" if restored else ""
    console.write("moto", f"DynamoDB, SQS, CloudWatch Logs and KMS on :{moto_port}{replayed}"
                          f"{'' if durable else ', writes not durable'}")

    from chalicelib.config import Settings
    from chalicelib.services import InstanceService
    from chalicelib.wiring import Container

    settings = Settings.from_env()
    container = Container(settings)
    instance_logs = InstanceLogFollower(moto_state.LogStreams(REGION, settings.log_group).new_events,
                                        lambda id: (i.provider.value if (i := container.repository.get(id)) else None),
                                        console)
    instance_logs.start()
    spawner = Spawner()
    outputs = Outputs(console, data_dir)
    stack_pid = os.getpid()
    launcher = LocalProcessLauncher(
        lambda instance: provider_environment(os.environ, instance.id, instance.provider.value, stack_pid),
        spawner, outputs)
    service = InstanceService(container.repository, launcher, container.instance_log, settings)
    guard = threading.RLock()

    def reconcile() -> int:
        with guard:
            return service.reconcile()

    launcher_http = serve(launcher, container.repository.get, launcher_port, guard, secret)
    console.write("launcher", f"on :{launcher_port}: one provider process per running instance")
    reconcile()
    loop = ReconcileLoop(reconcile, functools.partial(console.write, "launcher"))
    loop.start()

    sqs_loop = Child([sys.executable, "-m", "stack.sqs_loop"], "fanout", "the SQS loop", fanout_environment(os.environ),
                     spawner, outputs)
    chalice = Child([sys.executable, "-m", "stack.logged", "chalice", "local", "--host", "127.0.0.1", "--port",
                     str(port), "--no-autoreload", "--stage", "local"], "api", "chalice local",
                    api_environment(os.environ), spawner, outputs)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    if wait_until_up(f"http://127.0.0.1:{port}/api/health", 30):
        say(f"Instance Manager API on http://127.0.0.1:{port} (moto on :{moto_port}, launcher on :{launcher_port}, "
            f"data in {data_dir}). Ctrl-C stops it.")
    else:
        chalice.report("did not come up")
        stopping.set()
    while not stopping.wait(0.5):
        if chalice.exited():
            chalice.report(f"exited with {chalice.returncode}")
            break
        sqs_loop.keep_running()

    say("stopping")
    loop.stop()
    sqs_loop.stop()
    chalice.stop()
    with guard:
        launcher.stop_all()
    launcher_http.shutdown()
    loop.join(timeout=5)
    instance_logs.stop()
    keeper.stop()
    moto.stop()
    private_data.release(data_dir, run)
    say("stopped")
    return 0


class Child:
    """A process of the stack that is started again when it dies (as Lambda would be); its output goes
    to DATA_DIR/logs/<source>.log and, what a person must see of it, to the console."""

    def __init__(self, command: list[str], source: str, name: str, env: dict[str, str], spawner: Spawner,
                 outputs: Outputs) -> None:
        self._command, self._source, self._name, self._env = command, source, name, env
        self._spawner, self._outputs = spawner, outputs
        self._process, self._output = self._start()

    def _start(self) -> tuple[subprocess.Popen[bytes], ChildOutput]:
        process = self._spawner.popen(self._command, self._env, cwd=ROOT, **self._outputs.popen_options())
        self._outputs.console.write(self._source, f"{self._name} started (pid {process.pid})")
        return process, self._outputs.component(process, self._source)

    def exited(self) -> bool:
        return self._process.poll() is not None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def report(self, what: str) -> None:
        self._outputs.report(self._output, f"{self._name} {what}")

    def keep_running(self) -> None:
        if self.exited():
            self.report(f"exited with {self._process.returncode}; starting it again")
            self._process, self._output = self._start()

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
