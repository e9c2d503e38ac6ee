"""The stack's console (stack/console.py): what of a child's output reaches it, from real child
processes; and each instance's log lines, read back from moto as the product wrote them."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3

from chalicelib.adapters.cloudwatch import CloudWatchLogStore
from chalicelib.instance_log import InstanceLog
from stack.__main__ import Child
from stack.children import Spawner
from stack.console import Console, InstanceLogFollower, Outputs
from stack.environments import api_environment, fanout_environment, provider_environment
from stack.moto_state import LogStreams
from tests.e2e.harness import ROOT, wait_for

TOKEN = "123456789:AAHconsoleTestTokenThatMustNeverShow_42"
# A child as chalice local and the SQS loop are: the stack's logging first, then boto3 finds the
# environment's credentials (botocore's INFO "Found credentials in environment variables."), a request
# line, a product warning and an unhandled exception through chalice's app.log, as app.py logs them.
CHILD = textwrap.dedent(f"""
    import sys
    from stack.console import configure_child_logging
    configure_child_logging()
    import boto3
    from chalice import Chalice
    boto3.session.Session(region_name="us-east-1").client("sqs", endpoint_url="http://127.0.0.1:9")
    print('127.0.0.1 - - [01/Jan/2026 10:00:00] "GET /api/health HTTP/1.1" 200 -', file=sys.stderr, flush=True)
    print("polling with {TOKEN}", flush=True)
    app = Chalice(app_name="instance-manager")
    app.log.setLevel("INFO")
    app.log.warning("DynamoDB did not answer on %s", "/api/v1/instances")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        app.log.exception("Unhandled error on %s", "/api/v1/instances")
    sys.exit(3)
""")


def run_child(tmp_path: Path, level: str) -> tuple[str, str, Outputs]:
    console = Console(io.StringIO(), debug=level == "debug")
    outputs = Outputs(console, tmp_path)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "LOG_LEVEL": level,
           "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_PROFILE", None)
    process = Spawner().popen([sys.executable, "-c", CHILD], env, cwd=ROOT, **outputs.popen_options())
    output = outputs.component(process, "api")
    assert process.wait(30) == 3
    outputs.report(output, f"chalice local exited with {process.returncode}; starting it again")
    assert isinstance(console._out, io.StringIO)
    return console._out.getvalue(), (tmp_path / "logs" / "api.log").read_text(), outputs


def test_the_console_shows_a_components_warnings_errors_and_tracebacks_and_nothing_else(tmp_path: Path) -> None:
    shown, kept, _ = run_child(tmp_path, "info")
    assert all(re.match(r"\d\d:\d\d:\d\d \[(api|stack)\] ", line) for line in shown.splitlines()), shown
    live, exit_line, last = shown.partition(
        f"[stack] chalice local exited with 3; starting it again (its output: {tmp_path}/logs/api.log)\n")
    assert exit_line, shown
    api = [line.split("[api] ", 1)[1] for line in live.splitlines() if "[api] " in line]
    assert api[:3] == ["instance-manager - WARNING - DynamoDB did not answer on /api/v1/instances",
                       "instance-manager - ERROR - Unhandled error on /api/v1/instances",
                       "Traceback (most recent call last):"]
    assert api[-1] == "RuntimeError: boom" and all(line.startswith(" ") for line in api[3:-1])
    assert "Found credentials" not in shown and "GET /api/health" not in live and "polling with" not in live
    # the exit is reported with the child's last lines: the request line and the masked token among them
    assert "GET /api/health" in last and "[api] polling with ***" in last
    # the file holds everything but the libraries' INFO records; no token anywhere
    assert "GET /api/health" in kept and "polling with ***" in kept and "RuntimeError: boom" in kept
    assert "Found credentials" not in kept
    assert TOKEN not in shown + kept


def test_with_log_level_debug_the_console_shows_all_of_it(tmp_path: Path) -> None:
    shown, kept, _ = run_child(tmp_path, "debug")
    assert "[api] INFO botocore.credentials: Found credentials in environment variables." in shown
    assert '[api] 127.0.0.1 - - [01/Jan/2026 10:00:00] "GET /api/health HTTP/1.1" 200 -' in shown
    assert "[api] polling with ***" in shown and "Found credentials" in kept
    assert TOKEN not in shown + kept
    assert "exited with 3" in shown.splitlines()[-1]  # what it wrote was all shown already


def test_a_providers_output_goes_to_its_file_only(tmp_path: Path) -> None:
    console = Console(io.StringIO())
    outputs = Outputs(console, tmp_path)
    process = Spawner().popen([sys.executable, "-c", f"print('ERROR with {TOKEN}')"], dict(os.environ), cwd=ROOT,
                              **outputs.popen_options())
    output = outputs.provider(process, "0123456789abcdef", "telegram")
    assert process.wait(10) == 0 and output.last_lines() == ["ERROR with ***"]
    assert (tmp_path / "providers" / "0123456789abcdef.log").read_text() == "ERROR with ***\n"
    assert isinstance(console._out, io.StringIO) and console._out.getvalue() == ""


def test_each_instances_log_lines_are_shown_as_written_with_the_instance_in_front(aws: dict[str, str]) -> None:
    group = aws["LOG_GROUP_NAME"]
    log = InstanceLog(CloudWatchLogStore(boto3.client("logs", region_name="us-east-1"), group), lambda *_: None)
    before, telegram, whatsapp = "00000000-old", "1a2b3c4d-0000-4000-8000-000000000001", "9f8e7d6c-0000-4000-8000-2"
    log.write(before, "info", "written before the stack started", "launcher")
    streams = LogStreams("us-east-1", group)
    out = io.StringIO()
    follower = InstanceLogFollower(streams.new_events, {telegram: "telegram", whatsapp: "whatsappweb"}.get,
                                   Console(out))
    with log.batched(telegram):
        log.write(telegram, "info", "Provider task started: local:x:1", "launcher")
        log.write(telegram, "error", f"Bot token {TOKEN} rejected", "telegram-provider")
    log.write(whatsapp, "warn", "QR code expired", "whatsapp-provider")
    log.write("unknown-instance", "info", "no record for this one", "launcher")
    follower.poll()
    follower.poll()  # nothing new: nothing twice
    shown = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert shown == ["[1a2b3c4d telegram] info: Provider task started: local:x:1",
                     "[1a2b3c4d telegram] error: Bot token *** rejected",
                     "[9f8e7d6c whatsappweb] warn: QR code expired",
                     "[unknown-] info: no record for this one"]

    log.forget(telegram)  # a deleted instance's stream goes; one made again under its name is new
    log.write(telegram, "info", "again", "launcher")
    follower.stop()
    assert out.getvalue().splitlines()[-1].endswith("[1a2b3c4d telegram] info: again")
    assert "written before" not in out.getvalue()


def test_a_component_that_exits_is_reported_with_its_last_lines_and_started_again(tmp_path: Path) -> None:
    out = io.StringIO()
    outputs = Outputs(Console(out), tmp_path)
    failing = "import sys; print('cannot bind 127.0.0.1:4200', file=sys.stderr); sys.exit(1)"
    child = Child([sys.executable, "-c", failing], "api", "chalice local", dict(os.environ), Spawner(), outputs)
    wait_for(child.exited, 10, "the child to exit")
    child.keep_running()
    wait_for(child.exited, 10, "the second one to exit")
    child.report(f"exited with {child.returncode}")
    shown = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    log = tmp_path / "logs" / "api.log"
    assert [re.sub(r"pid \d+", "pid N", line) for line in shown] == [
        "[api] chalice local started (pid N)",
        f"[stack] chalice local exited with 1; starting it again (its output: {log})",
        "[api] cannot bind 127.0.0.1:4200",
        "[api] chalice local started (pid N)",
        f"[stack] chalice local exited with 1 (its output: {log})",
        "[api] cannot bind 127.0.0.1:4200"]
    assert log.read_text() == "cannot bind 127.0.0.1:4200\n" * 2


def test_the_log_level_reaches_the_python_components_and_not_the_providers() -> None:
    env = {"PATH": "/usr/bin", "LOG_LEVEL": "debug"}
    assert api_environment(env)["LOG_LEVEL"] == fanout_environment(env)["LOG_LEVEL"] == "debug"
    assert "LOG_LEVEL" not in provider_environment(env, "i", "telegram", 1)


def test_the_stack_runs_chalice_local_through_its_logging() -> None:
    done = subprocess.run([sys.executable, "-m", "stack.logged", "chalice", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "local" in done.stdout
