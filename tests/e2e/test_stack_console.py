"""What `make run` prints (stack/console.py), read from the real stack's stdout: each component's start
and each instance's own log lines with the instance in front, none of the libraries' noise, and with
LOG_LEVEL=debug the children's output too. Stacks on ports 4200 and 4210, instances on 9900-9939."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.e2e.harness import LocalStack, wait_for
from tests.peers.telegram_bot_api import FakeTelegramServer

TOKEN = "100401:AAHconsoleEndToEndTokenNeverOnTheConsole"
DEBUG_TOKEN = "100402:AAHconsoleEndToEndTokenForTheDebugStack1"


def run_stack(tmp: Path, port: int, telegram: FakeTelegramServer, token: str,
              extra: dict[str, str]) -> tuple[LocalStack, str]:
    """A stack with one Telegram instance, once its client_ready line is on the console."""
    stack = LocalStack(tmp, port, {"TELEGRAM_API_ROOT": telegram.api_root, **extra})
    stack.start()
    telegram.add_bot(token)
    answer = stack.call("POST", "/api/v1/instances", {"company_id": "console", "provider": "telegram",
                                                      "type_instance": ["api"], "config": {"bot_token": token}})
    assert answer.status_code == 200, answer.text
    instance_id = answer.json()["instance_id"]
    stack.wait_status(instance_id, "client_ready")
    short = instance_id[:8]
    wait_for(lambda: f"[{short} telegram] info: Polling for updates: client ready" in console(stack), 5,
             "the client_ready line on the console")
    return stack, instance_id


def console(stack: LocalStack) -> str:
    return stack.log_path.read_text()


def test_the_console_shows_the_components_and_the_instances_lines_and_no_noise(
        tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> None:
    stack, instance_id = run_stack(tmp_path_factory.mktemp("console"), 4200, telegram, TOKEN,
                                   {"INSTANCE_PORT_RANGE": "9900-9919"})
    try:
        loop_pid = int(re.findall(r"\[fanout\] the SQS loop started \(pid (\d+)\)", console(stack))[0])
        os.kill(loop_pid, signal.SIGKILL)  # a child that crashes is reported and started again
        wait_for(lambda: console(stack).count("[fanout] the SQS loop started") == 2, 10, "the SQS loop again")
        os.kill(stack.provider_pid(instance_id), signal.SIGKILL)  # a provider too
        wait_for(lambda: console(stack).count("info: Polling for updates: client ready") == 2, 15, "the provider again")
    finally:
        assert stack.stop() == 0
    shown = console(stack)
    lines = shown.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d \[[^\]]+\] ", line) for line in lines), shown
    for start in ("[moto] DynamoDB, SQS, CloudWatch Logs and KMS on :5200", "[launcher] on :5201",
                  "[fanout] the SQS loop started (pid ", "[api] chalice local started (pid ",
                  "[stack] Instance Manager API on http://127.0.0.1:4200"):
        assert start in shown, start
    prefix = f"[{instance_id[:8]} telegram] "
    mine = [line.split(prefix, 1)[1] for line in lines if prefix in line]
    assert mine[0] == "info: Instance created (telegram, port 9900)"
    assert mine[1].startswith("info: Provider task started: local:" + instance_id)
    assert "info: Polling for updates: client ready" in mine and mine[-1] == "info: Provider runtime stopping"
    assert "warn: Provider task is gone or unhealthy; starting it again" in mine
    crashes = [line.split("] ", 1)[1] for line in lines if "[stack] the provider of" in line]
    assert crashes == [f"the provider of {instance_id[:8]} (telegram) exited with -9 "
                       f"(its output: {stack.data_dir}/providers/{instance_id}.log)"]  # not when it was stopped
    assert f"[stack] the SQS loop exited with -9; starting it again (its output: {stack.data_dir}/logs/fanout.log)" \
        in shown
    assert "Found credentials" not in shown and "Serving on" not in shown
    assert not re.search(r'"(GET|POST) /api/', shown), "an access line"
    assert TOKEN not in shown
    for kept in [*(stack.data_dir / "logs").iterdir(), *(stack.data_dir / "providers").iterdir()]:
        assert TOKEN not in kept.read_text(), kept
    assert '"GET /api/health HTTP/1.1" 200' in (stack.data_dir / "logs" / "api.log").read_text()


def test_with_log_level_debug_the_childrens_output_shows_too(
        tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> None:
    stack, _ = run_stack(tmp_path_factory.mktemp("console-debug"), 4210, telegram, DEBUG_TOKEN,
                         {"INSTANCE_PORT_RANGE": "9920-9939", "LOG_LEVEL": "debug"})
    assert stack.stop() == 0
    shown = console(stack)
    assert "[api] Serving on http://127.0.0.1:4210" in shown
    assert re.search(r'\[api\] 127\.0\.0\.1 - - \[[^\]]+\] "POST /api/v1/instances HTTP/1.1" 200', shown)
    assert "[fanout] INFO botocore.credentials: Found credentials in environment variables." in shown
    assert re.search(r'\[\w{8} telegram process\] \{"timestamp": .*"Polling for updates: client ready"', shown)
    assert DEBUG_TOKEN not in shown
