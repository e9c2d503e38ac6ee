"""The local stack keeps its secrets to the processes that need them, answers only its own processes,
and survives a SIGKILL: issue 9, points 4 to 6. Ports: stacks on 3800 and 3850 (moto and the launcher
at +1000 and +1001), instances on 9700-9749."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tests.e2e.harness import LocalStack, pid_alive, port_open, processes_with_env, wait_for
from tests.peers.telegram_bot_api import FakeTelegramServer

ADMIN = {"x-api-key": "hardening-admin-key-7f3a"}


def start_stack(data_dir: Path, port: int, instances: str, telegram: FakeTelegramServer) -> LocalStack:
    stack = LocalStack(data_dir, port, {"TELEGRAM_API_ROOT": telegram.api_root, "INSTANCE_PORT_RANGE": instances,
                                        "ADMIN_API_KEY": ADMIN["x-api-key"]}, headers=ADMIN)
    stack.start()
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegramServer) -> Iterator[LocalStack]:
    local = start_stack(tmp_path_factory.mktemp("hardening"), 3800, "9700-9724", telegram)
    yield local
    assert local.stop() == 0


def create(stack: LocalStack, telegram: FakeTelegramServer, token: str, company: str = "hardening") -> dict[str, object]:
    telegram.add_bot(token)
    answer = stack.call("POST", "/api/v1/instances", {"company_id": company, "provider": "telegram",
                                                      "config": {"bot_token": token}})
    assert answer.status_code == 200, answer.text
    details = answer.json()["process_result"]["details"]
    return {"id": answer.json()["instance_id"], "port": details["ports"]["api"], "key": details["api_key"]}


def run_id(stack: LocalStack) -> str:
    return str(json.loads((stack.data_dir / "stack.json").read_text())["run"])


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)


def command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


@pytest.fixture(scope="module")
def running(stack: LocalStack, telegram: FakeTelegramServer) -> dict[str, object]:
    instance = create(stack, telegram, "200001:AAHhardeningEnvironmentCheckToken_0001")
    stack.wait_status(str(instance["id"]), "client_ready")
    return instance


def test_each_process_gets_only_the_settings_it_needs(stack: LocalStack, running: dict[str, object]) -> None:
    children = {pid: command(pid) for pid in processes_with_env("LOCAL_STACK_RUN", run_id(stack))}
    kinds = {pid: next(k for k in ("-m provider", "stack.sqs_loop", "chalice local", "") if k in text)
             for pid, text in children.items()}
    assert sorted(kinds.values()) == ["-m provider", "chalice local", "stack.sqs_loop"], children
    secret = (stack.data_dir / "launcher.secret").read_text()
    assert stack.process is not None
    for pid in [*children, stack.process.pid]:
        assert secret not in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    for pid, kind in kinds.items():
        env = environ(pid)
        assert env["DATA_DIR"] == str(stack.data_dir)  # the mark tests/e2e/harness.py looks for
        if kind == "chalice local":
            assert env["ADMIN_API_KEY"] == ADMIN["x-api-key"]
            assert env["LOCAL_LAUNCHER_SECRET_FILE"] == str(stack.data_dir / "launcher.secret")
            continue
        assert "ADMIN_API_KEY" not in env and "LOCAL_LAUNCHER_SECRET_FILE" not in env, kind
        if kind == "-m provider":
            assert env["INSTANCE_ID"] == running["id"] and "TELEGRAM_API_ROOT" in env
            assert not {n for n in env if n.startswith(("WEBHOOK_", "LOCAL_LAUNCHER"))}
        else:
            assert env["WEBHOOK_ALLOW_PRIVATE"] == "true" and "TELEGRAM_API_ROOT" not in env


def test_data_dir_is_private_to_the_user(stack: LocalStack, running: dict[str, object]) -> None:
    assert (stack.data_dir / "providers" / f"{running['id']}.log").exists()
    assert {"secrets.key", "moto-state.pickle", "launcher.secret", "stack.log"} <= {p.name for p in stack.data_dir.iterdir()}
    for path in [stack.data_dir, *stack.data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def as_another_user(port: int, request: str) -> str | None:
    """The status line another user of the machine (nobody) gets for a raw HTTP request; None when the
    tests cannot act as someone else (only root can)."""
    if os.getuid() != 0:
        return None
    script = 'exec 3<>/dev/tcp/127.0.0.1/$PORT; printf "%s" "$REQUEST" >&3; head -n 1 <&3'
    done = subprocess.run(["bash", "-c", script], user=65534, group=65534, cwd="/", capture_output=True, text=True,
                          timeout=10, env={"PORT": str(port), "REQUEST": request.replace("\n", "\r\n"), "PATH": "/usr/bin:/bin"})
    return done.stdout.strip()


def test_the_launcher_answers_only_the_stack(stack: LocalStack, running: dict[str, object]) -> None:
    base = f"http://127.0.0.1:{stack.port + 1001}"
    secret = (stack.data_dir / "launcher.secret").read_text()
    own = {"Authorization": f"Bearer {secret}"}
    handle = f"local:{running['id']}:{stack.provider_pid(str(running['id']))}"
    start = {"instance_id": running["id"]}
    refused = [
        requests.post(f"{base}/tasks", json=start, timeout=5),
        requests.post(f"{base}/tasks", json=start, headers={"Authorization": "Bearer guessed"}, timeout=5),
        requests.delete(f"{base}/tasks/{handle}", timeout=5),
        # a web page: a "simple" cross-origin POST, and a rebound name that resolves to 127.0.0.1
        requests.post(f"{base}/tasks", data=json.dumps(start), timeout=5,
                      headers={**own, "Content-Type": "text/plain", "Origin": "http://evil.example"}),
        requests.delete(f"{base}/tasks/{handle}", headers={**own, "Host": f"rebound.example:{stack.port + 1001}"},
                        timeout=5),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403, 421]
    assert all(r.json()["error"] for r in refused)
    other_user = as_another_user(stack.port + 1001, f"DELETE /tasks/{handle} HTTP/1.1\nHost: 127.0.0.1:{stack.port + 1001}\n"
                                 f"Authorization: Bearer {secret}\nConnection: close\n\n")  # even with the secret
    assert other_user in (None, "HTTP/1.0 403 Forbidden"), other_user
    assert pid_alive(stack.provider_pid(str(running["id"])))  # nothing was stopped
    described = requests.get(f"{base}/tasks/{handle}", headers=own, timeout=5)
    assert described.status_code == 200 and described.json()["state"] == "running"


def test_moto_answers_only_the_stack(stack: LocalStack) -> None:
    moto = stack.port + 1000
    call = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}
    strangers = [
        {"Host": f"rebound.example:{moto}"},
        {"Host": f"127.0.0.1:{moto}", "Origin": "http://evil.example"},
        {"Host": f"127.0.0.1:{moto}", "Sec-Fetch-Site": "cross-site"},
    ]
    answers = [requests.post(f"http://127.0.0.1:{moto}/", data="{}", headers={**call, **h}, timeout=5) for h in strangers]
    assert [a.status_code for a in answers] == [421, 403, 403] and all("TableNames" not in a.text for a in answers)
    other_user = as_another_user(moto, f"POST / HTTP/1.1\nHost: 127.0.0.1:{moto}\nX-Amz-Target: DynamoDB_20120810.ListTables"
                                 "\nContent-Type: application/x-amz-json-1.0\nContent-Length: 2\nConnection: close\n\n{}")
    assert other_user in (None, "HTTP/1.1 403 Forbidden"), other_user
    for host in ("127.0.0.1", "localhost"):  # what boto3 and PynamoDB send: the stack's own calls pass
        client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{moto}", region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        assert "instance-manager-instances" in client.list_tables()["TableNames"]


def leftover(stack: LocalStack, run: str) -> subprocess.Popen[bytes]:
    """A child of the killed stack that did not die with it (as if its parent-death signal were lost),
    holding the API's port."""
    code = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('127.0.0.1', {stack.port})); s.listen(); print('bound', flush=True); time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               env={**os.environ, "LOCAL_STACK_RUN": run, "DATA_DIR": str(stack.data_dir)})
    assert process.stdout is not None and process.stdout.readline() == b"bound\n"
    return process


def test_sigkill_loses_no_answered_write_and_leaves_nothing_behind(tmp_path: Path, telegram: FakeTelegramServer) -> None:
    stack = start_stack(tmp_path / "data", 3850, "9725-9749", telegram)
    strangers: list[subprocess.Popen[bytes]] = []
    try:
        patched = create(stack, telegram, "200002:AAHhardeningPatchedWebhookToken_00002")
        stopped = create(stack, telegram, "200003:AAHhardeningStoppedInstanceToken_0003")
        for instance in (patched, stopped):
            stack.wait_status(str(instance["id"]), "client_ready")
        # three writes, each answered, then the kill at once
        created = create(stack, telegram, "200004:AAHhardeningCreatedLastToken_000004")
        url = "http://127.0.0.1:9/hooks/after-the-patch"
        patch = stack.call("PATCH", f"/api/v1/instances/{patched['id']}/webhook", {"url": url})
        assert patch.status_code == 200, patch.text
        stop = stack.call("POST", f"/api/v1/instances/{stopped['id']}/stop")
        assert stop.status_code == 200, stop.text
        killed_run = run_id(stack)
        stack.kill()

        instance_ports = [int(str(i["port"])) for i in (patched, stopped, created)]
        wait_for(lambda: not processes_with_env("DATA_DIR", str(stack.data_dir)), 5, "the stack's children to die")
        ports = (stack.port, stack.port + 1000, stack.port + 1001, *instance_ports)
        wait_for(lambda: not any(port_open(p) for p in ports), 5, f"ports {ports} to close")

        # what a lost parent-death signal would leave, and a process of the same DATA_DIR that is not the stack's
        strangers = [leftover(stack, killed_run),
                     subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                      env={**os.environ, "DATA_DIR": str(stack.data_dir)})]
        stack.start()  # same ports, same DATA_DIR
        assert strangers[0].wait(5) == -9 and pid_alive(strangers[1].pid)
        assert "left behind" in stack.log_path.read_text()

        back = stack.call("GET", f"/api/v1/instances/{created['id']}/current-api-key")
        assert back.status_code == 200 and back.json()["data"]["api_key"] == created["key"]
        webhook = stack.call("GET", f"/api/v1/instances/{patched['id']}/webhook").json()["data"]["webhook"]
        assert webhook["url"] == url
        assert stack.instance(str(stopped["id"]))["status"] == "stopped"
        stack.wait_status(str(created["id"]), "client_ready")
        stack.wait_status(str(patched["id"]), "client_ready")
        time.sleep(1.5)  # the reconcile loop leaves the stopped one alone
        assert not port_open(int(str(stopped["port"])))
    finally:
        for process in strangers:
            process.kill()
            process.wait()
        if stack.process is not None and stack.process.poll() is None:
            assert stack.stop() == 0
