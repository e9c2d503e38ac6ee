"""A backend that is stuck or gone gives a fast, clear answer: 503 BACKEND_UNAVAILABLE naming it, never
a hang or a 500; /api/health stays cheap, and its deep check reports each backend.

The real Chalice app (chalice.test.Client) talks to a real moto server in its own process, so it can be
frozen with SIGSTOP (it still accepts connections, as a stuck service does, and never answers) and
killed. One backend at a time is made stuck by pointing its service at a socket that listens but never
answers (AWS_ENDPOINT_URL_<SERVICE>). Ports come from 4000-4049."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from chalice.test import Client, HTTPResponse

from chalicelib import health, openapi, wiring
from chalicelib.adapters import dynamo
from chalicelib.adapters.outages import ReachableLauncher
from chalicelib.config import Settings
from chalicelib.core.types import Instance
from chalicelib.ports import TaskInfo, TaskState
from chalicelib.wiring import Container
from stack import resources
from tests.aws import REGION, create_ecs, fake_credentials
from tests.sdk.conformance import schema_errors

PORTS = range(4000, 4050)
KEY = "admin-key-for-outages"
AUTH = {"x-api-key": KEY}
# Short timeouts keep the module quick; one test runs the shipped defaults.
FAST = {"AWS_CONNECT_TIMEOUT_SECONDS": "1", "AWS_READ_TIMEOUT_SECONDS": "1", "AWS_MAX_ATTEMPTS": "2"}
PER_REQUEST_BOUND_S = 6.0  # 2 attempts x 1 s + botocore's backoff (under 1 s) + slack for a busy machine
BACKENDS = {"dynamodb", "sqs", "logs", "secrets", "launcher"}
_taken: set[int] = set()


def free_port() -> int:
    for port in PORTS:
        if port in _taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS}")


class MotoProcess:
    """`python -m moto.server` in its own process: something to freeze and to kill."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).close()
                return
            except (urllib.error.URLError, OSError):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def deploy(self) -> dict[str, str]:
        """The tables, queues, log group and key of infra/resources.yaml, and the ECS pieces."""
        with pytest.MonkeyPatch.context() as env:
            for name, value in {**fake_credentials(), "AWS_ENDPOINT_URL": self.url}.items():
                env.setenv(name, value)
            session = boto3.session.Session(region_name=REGION)
            deployed = resources.environment(resources.deploy(session.client("cloudformation")))
            deployed.update(create_ecs(session))
        transition = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
        request = urllib.request.Request(self.url + "/moto-api/state-manager/set-transition", method="POST",
                                         data=json.dumps(transition).encode())
        urllib.request.urlopen(request, timeout=5).close()
        return deployed

    @contextmanager
    def frozen(self) -> Iterator[None]:
        os.kill(self._proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)  # a stopped process dies only once it runs
            self._proc.kill()
            self._proc.wait(timeout=10)


@contextmanager
def blackhole() -> Iterator[str]:
    """A stuck service: it takes connections (the kernel's backlog) and never answers."""
    port = free_port()
    with socket.socket() as sink:
        sink.bind(("127.0.0.1", port))
        sink.listen(64)
        yield f"http://127.0.0.1:{port}"


@dataclass
class Backend:
    moto: MotoProcess
    env: dict[str, str]


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    moto = MotoProcess()
    try:
        yield Backend(moto, moto.deploy())
    finally:
        moto.kill()


def configure(monkeypatch: pytest.MonkeyPatch, backend: Backend, **extra: str) -> None:
    settings = {**fake_credentials(), "AWS_ENDPOINT_URL": backend.moto.url, **backend.env, "LAUNCHER": "ecs",
                "ADMIN_API_KEY": KEY, "SECRETS_KEY_FILE": "", "WEBHOOK_ALLOW_PRIVATE": "true", **FAST, **extra}
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(name)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    wiring.reset()


@pytest.fixture
def client(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    import app

    configure(monkeypatch, backend)
    with Client(app.app) as chalice_client:
        yield chalice_client
    wiring.reset()


_tokens = iter(range(10**6))


def create(client: Client, company: str = "outages") -> HTTPResponse:
    body = {"company_id": company, "provider": "telegram", "type_instance": ["api"],
            "config": {"bot_token": f"{next(_tokens)}:AAoutagesTokenForTestsOnly"},
            "api_webhook_schema": {"url": "http://127.0.0.1:9/hook"}}
    return client.http.post("/api/v1/instances", body=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})


def created(client: Client, company: str = "outages") -> str:
    answer = create(client, company)
    assert answer.status_code == 200, answer.body
    return str(answer.json_body["instance_id"])


def timed(call: Any) -> tuple[HTTPResponse, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def assert_unavailable(answer: HTTPResponse, backend_name: str) -> None:
    assert answer.status_code == 503, answer.body
    body = answer.json_body
    assert body["success"] is False and body["code"] == "BACKEND_UNAVAILABLE", body
    assert backend_name in body["error"] and "try again" in body["error"], body["error"]
    assert "Traceback" not in answer.body.decode()


def deep(client: Client) -> HTTPResponse:
    return client.http.get("/api/health?deep=true", headers=AUTH)


def health_document() -> dict[str, Any]:
    return openapi.document("http://localhost")


def check_against_document(answer: HTTPResponse) -> None:
    doc = health_document()
    content = doc["paths"]["/api/health"]["get"]["responses"][str(answer.status_code)]["content"]
    assert schema_errors(doc, content["application/json"]["schema"], answer.json_body) == []


# --- settings ---------------------------------------------------------------------------------

def test_every_aws_client_has_connect_and_read_timeouts_and_bounded_retries() -> None:
    defaults = Settings.from_env({})
    assert (defaults.aws_connect_timeout_seconds, defaults.aws_read_timeout_seconds, defaults.aws_max_attempts) == (2, 3, 2)
    settings = Settings.from_env({"AWS_CONNECT_TIMEOUT_SECONDS": "1.5", "AWS_READ_TIMEOUT_SECONDS": "4",
                                  "AWS_MAX_ATTEMPTS": "3", "AWS_REGION": REGION})
    container = Container(settings)
    for service in ("dynamodb", "sqs", "logs", "kms", "ecs"):
        config = container.client(service).meta.config
        assert (config.connect_timeout, config.read_timeout) == (1.5, 4.0), service
        assert config.retries == {"total_max_attempts": 3, "mode": "standard"}, service
    tables = dynamo.define_tables(settings)
    for model in (tables.instances, tables.leases, tables.auth, tables.deliveries):
        meta = model.Meta
        assert (meta.connect_timeout_seconds, meta.read_timeout_seconds, meta.max_retry_attempts) == (1.5, 4.0, 2)
    for bad in ({"AWS_MAX_ATTEMPTS": "0"}, {"AWS_READ_TIMEOUT_SECONDS": "-1"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Settings.from_env(bad)


# --- a frozen backend -------------------------------------------------------------------------

def test_a_frozen_backend_answers_503_within_seconds_and_writes_nothing(backend: Backend, client: Client) -> None:
    kept = created(client, "frozen")
    before = client.http.get("/api/v1/instances?company_id=frozen", headers=AUTH).json_body["data"]
    requests = {
        "list": lambda: client.http.get("/api/v1/instances", headers=AUTH),
        "get": lambda: client.http.get(f"/api/v1/instances/{kept}", headers=AUTH),
        "create": lambda: create(client, "frozen"),
        "logs": lambda: client.http.get(f"/api/v1/instances/{kept}/logs", headers=AUTH),
    }
    took: dict[str, float] = {}
    with backend.moto.frozen():
        for name, call in requests.items():
            answer, took[name] = timed(call)
            assert_unavailable(answer, "DynamoDB")
        cheap, cheap_took = timed(lambda: client.http.get("/api/health"))
        report, report_took = timed(lambda: deep(client))
    assert all(seconds < PER_REQUEST_BOUND_S for seconds in took.values()), took
    assert sum(took.values()) < 15, took

    assert cheap.status_code == 200 and cheap.json_body["status"] == "healthy" and cheap_took < 1
    assert set(cheap.json_body) == {"status", "timestamp"}
    assert report.status_code == 503 and report_took < health.DEADLINE_SECONDS + 1.5, report_took
    body = report.json_body
    assert (body["success"], body["code"], body["status"]) == (False, "BACKEND_UNAVAILABLE", "unavailable")
    assert set(body["backends"]) == BACKENDS
    assert all(b["status"] == "unavailable" and b["error"] for b in body["backends"].values()), body
    check_against_document(report)

    time.sleep(1)  # moto now serves the requests that waited in its backlog: reads only
    after = client.http.get("/api/v1/instances?company_id=frozen", headers=AUTH).json_body["data"]
    assert [i["id"] for i in after] == [i["id"] for i in before] == [kept], "a refused create wrote nothing"
    slots = boto3.client("dynamodb", endpoint_url=backend.moto.url).get_item(
        TableName=backend.env["LEASES_TABLE"], Key={"lease_id": {"S": "company#frozen"}})["Item"]["used_slots"]
    assert slots == {"N": "1"}

    report = deep(client)
    assert report.status_code == 200, report.body
    assert all(b["status"] == "ok" and isinstance(b["latency_ms"], int) for b in report.json_body["backends"].values())
    check_against_document(report)
    assert create(client, "frozen").status_code == 200, "the service recovers with the backend"


def test_the_shipped_defaults_answer_a_frozen_backend_in_seconds(backend: Backend, client: Client,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAST:
        monkeypatch.delenv(name)
    wiring.reset()
    with backend.moto.frozen():
        answer, took = timed(lambda: client.http.get("/api/v1/instances", headers=AUTH))
    assert_unavailable(answer, "DynamoDB")
    assert took < 12, f"{took:.1f} s: attempts x read timeout is 6 s by default"


# --- one backend stuck at a time --------------------------------------------------------------

STUCK = [
    # (service whose endpoint is stuck, its name in the answer, deep-check key, the request that needs it)
    ("SQS", "SQS", "sqs", "POST", "/webhook/test"),
    ("CLOUDWATCH_LOGS", "CloudWatch Logs", "logs", "GET", "/logs"),
    ("KMS", "KMS", "secrets", "GET", ""),
    ("ECS", "ECS", "launcher", "POST", "/stop"),
]


@pytest.mark.parametrize(("service", "name", "key", "method", "suffix"), STUCK, ids=[s[0] for s in STUCK])
def test_a_stuck_backend_is_named_in_the_answer_and_in_the_deep_check(
        backend: Backend, client: Client, monkeypatch: pytest.MonkeyPatch,
        service: str, name: str, key: str, method: str, suffix: str) -> None:
    instance = created(client)
    with blackhole() as stuck:
        configure(monkeypatch, backend, **{f"AWS_ENDPOINT_URL_{service}": stuck})
        answer, took = timed(lambda: client.http.request(method, f"/api/v1/instances/{instance}{suffix}",
                                                         headers=AUTH, body=b""))
        assert_unavailable(answer, name)
        assert took < PER_REQUEST_BOUND_S
        report, report_took = timed(lambda: deep(client))
    assert report.status_code == 503 and report_took < health.DEADLINE_SECONDS + 1.5
    assert name in report.json_body["error"]
    assert {k for k, b in report.json_body["backends"].items() if b["status"] != "ok"} == {key}
    assert report.json_body["backends"][key]["name"] == name


def test_an_unreachable_local_launcher_is_named(backend: Backend, client: Client,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    instance = created(client)  # started on (moto's) ECS: it has a task handle to stop
    configure(monkeypatch, backend, LAUNCHER="local", LOCAL_LAUNCHER_URL=f"http://127.0.0.1:{free_port()}")
    answer, took = timed(lambda: client.http.post(f"/api/v1/instances/{instance}/stop", headers=AUTH))
    assert_unavailable(answer, "The local launcher")
    assert took < PER_REQUEST_BOUND_S
    report = deep(client)
    assert report.status_code == 503
    assert {k for k, b in report.json_body["backends"].items() if b["status"] != "ok"} == {"launcher"}


def test_a_launcher_answer_is_no_outage() -> None:
    """Only silence is BACKEND_UNAVAILABLE: an error the launcher answers stays what it is."""

    class Answering:
        def __init__(self, error: BaseException) -> None:
            self.error = error

        def launch(self, instance: Instance) -> str:
            raise RuntimeError("local launcher answered 500") from self.error

        def stop(self, handle: str) -> None:
            raise RuntimeError("the launcher refused") from self.error

        def describe(self, handle: str) -> TaskInfo:
            return TaskInfo(handle, TaskState.STOPPED, "")

    answered = urllib.error.HTTPError("http://127.0.0.1:1/tasks", 500, "boom", None, None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="refused"):
        ReachableLauncher(Answering(answered), "the local launcher").stop("h")
    silent = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(Exception, match="The local launcher is not reachable") as refused:
        ReachableLauncher(Answering(silent), "the local launcher").stop("h")
    assert refused.value.__cause__ is not None
    ReachableLauncher(Answering(silent), "the local launcher").probe()


# --- the deep check itself --------------------------------------------------------------------

def test_the_deep_check_needs_the_admin_key_and_a_clear_value(client: Client) -> None:
    refused = client.http.get("/api/health?deep=true")
    assert refused.status_code == 401 and refused.json_body["code"] == "UNAUTHORIZED"
    wrong = client.http.get("/api/health?deep=yes", headers=AUTH)
    assert wrong.status_code == 400 and wrong.json_body["code"] == "VALIDATION_ERROR"
    assert client.http.get("/api/health?deep=false").json_body.keys() == {"status", "timestamp"}
    ok = deep(client)
    assert ok.status_code == 200 and ok.json_body["status"] == "healthy"
    assert {k: b["name"] for k, b in ok.json_body["backends"].items()} == {
        "dynamodb": "DynamoDB", "sqs": "SQS", "logs": "CloudWatch Logs", "secrets": "KMS", "launcher": "ECS"}


def test_a_probe_that_hangs_is_cut_at_the_deadline() -> None:
    gate = __import__("threading").Event()
    backends = [health.Backend("quick", "Quick", lambda: None), health.Backend("stuck", "Stuck", gate.wait),
                health.Backend("broken", "Broken", lambda: (_ for _ in ()).throw(RuntimeError("no table")))]
    started = time.monotonic()
    report = health.check_backends(backends, deadline=0.5)
    gate.set()
    assert time.monotonic() - started < 1.5
    assert report["quick"]["status"] == "ok"
    assert report["stuck"] == {"name": "Stuck", "status": "unavailable", "latency_ms": 500,
                               "error": "no answer within 0.5 s"}
    assert report["broken"]["status"] == "unavailable" and report["broken"]["error"] == "RuntimeError: no table"


# --- a killed backend -------------------------------------------------------------------------

def test_a_killed_backend_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    moto = MotoProcess()
    try:
        configure(monkeypatch, Backend(moto, moto.deploy()))
        with Client(app.app) as client:
            instance = created(client)
            moto.kill()
            for call in (lambda: client.http.get("/api/v1/instances", headers=AUTH),
                         lambda: client.http.get(f"/api/v1/instances/{instance}", headers=AUTH),
                         lambda: create(client)):
                answer, took = timed(call)
                assert_unavailable(answer, "DynamoDB")
                assert "could not connect" in answer.json_body["error"]
                assert took < 3, took
            report = deep(client)
            assert report.status_code == 503
            assert all(b["status"] == "unavailable" for b in report.json_body["backends"].values())
            assert client.http.get("/api/health").status_code == 200
    finally:
        moto.kill()
        wiring.reset()
