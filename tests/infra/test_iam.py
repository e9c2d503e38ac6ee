"""Each IAM role in infra/service.yaml grants exactly the AWS actions its code calls, on exactly the
resources it calls them on, plus what Lambda, ECS and IAM themselves need to run that code
(listed below, each with its reason), and nothing else.

What the code calls is gathered by running it: every route of the Chalice app, the webhook and
reconcile handlers, and the provider runtime of each provider, in-process against moto with the
resources of infra/resources.yaml, while every botocore call is recorded (PynamoDB's included: it
goes through `BaseClient._make_api_call` like boto3). Each call is attributed to the function or task
that made it, and so to the role the template gives that function or task.

Two checks keep the run complete as the code grows: every boto3 client method the code calls
(found statically: clients live in attributes named after their service, `self._ecs`, `self._sqs`...)
must have been called during the run, and so must every public method of the DynamoDB adapters.
When one fails, extend the scenario below, then the policy the failure names."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fnmatch
import functools
import inspect
import json
import socket
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.client
import botocore.loaders
import pytest

from chalicelib import wiring
from chalicelib.core.types import AuthStatus, DesiredState, MessageView, Status
from tests.aws import moto_environment
from tests.infra.templates import ROOT, composed_template, deployed_refs, of_type, render
from tests.peers.webhook_receiver import WebhookReceiver

TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# AWS actions no code calls but the platform does on the role's behalf (checked exactly, too).
LAMBDA_VPC_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                      "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses")
SQS_EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
LOG_DELIVERY_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
IMAGE_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
CLIENT_ATTRIBUTES = {"ecs", "sqs", "logs", "kms", "secretsmanager", "dynamodb"}
DYNAMO_ADAPTERS = ("chalicelib/adapters/dynamo.py", "chalicelib/adapters/auth_store.py", "chalicelib/adapters/deliveries.py")


@dataclass(frozen=True)
class Need:
    """One action on one resource, with the request context IAM conditions look at."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = "called by the code"


@dataclass
class Recorder:
    role: str | None = None
    calls: dict[str, list[tuple[str, str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    methods: set[str] = field(default_factory=set)
    refs: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def acting_as(self, name: str) -> Iterator[None]:
        self.role, previous = name, self.role
        try:
            yield
        finally:
            self.role = previous


# --- running the code --------------------------------------------------------------------------------
def receiver_for_the_run() -> WebhookReceiver:
    """/ok answers 200, /fail 500 (retried), anything else 410 (dead-lettered)."""
    receiver = WebhookReceiver()
    receiver.by_path, receiver.status = {"/ok": 200, "/fail": 500}, 410
    return receiver.start()


def free_port_range(size: int = 10) -> str:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65000:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return f"{base}-{base + size - 1}"
    raise RuntimeError("no free port range")


class FakeEngine:
    """Stands in for a messaging engine: it drives every EngineHost call (and, like the WhatsApp
    engine, every AuthStore call when given the store), then ends the runtime through its crash path."""

    name = "fake"
    capabilities = frozenset({"send_text"})

    def __init__(self, instance: Any, store: Any, recorder: Recorder) -> None:
        self.instance, self.store, self.recorder = instance, store, recorder

    async def run(self, host: Any) -> None:
        instance_id = self.instance.id
        await host.set_state(status=Status.START, auth_status=AuthStatus.PENDING)
        if self.store is not None:
            await asyncio.to_thread(self.store.load, instance_id)
            await host.set_qr("2@fake-qr")
            await asyncio.to_thread(self.store.put, instance_id, {"creds": {"me": "1"}, "pre-key/1": {"k": 1}})
            await asyncio.to_thread(self.store.put, instance_id, {"pre-key/1": None})
            await host.set_qr(None)
        await host.set_state(status=Status.CLIENT_READY, auth_status=AuthStatus.AUTHENTICATED, account="+15550001111")
        await host.emit_message(MessageView(id="m1", body="hi", fromMe=False, timestamp="2026-01-01T00:00:00.000Z",
                                            contact="Alice", type="text", chatId="1001"))
        if hasattr(host, "emit_ack"):
            await host.emit_ack("m1", "1001", "delivered")
        request = urllib.request.Request(f"http://127.0.0.1:{self.instance.ports['api']}/api/v1/status",
                                         headers={"x-api-key": self.instance.api_key.value})
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=5).read())  # counted use
        host.log("info", "fake engine done")
        await asyncio.sleep(0.7)  # one round of log shipping
        if self.store is not None:  # a logout, then a new login: the manager's delete finds state to wipe
            await asyncio.to_thread(self.store.wipe, instance_id)
            await asyncio.to_thread(self.store.put, instance_id, {"creds": {"me": "2"}})
        raise RuntimeError("the fake engine is finished")

    async def send_text(self, chat_id: str, text: str) -> str:
        return "sent"


def run_provider(recorder: Recorder, role_of: str, instance_id: str, with_store: bool) -> None:
    from chalicelib.config import Settings
    from chalicelib.wiring import Container
    from provider import runtime

    container = Container(Settings.from_env())  # as provider/__main__.py builds it
    with recorder.acting_as(role_of):
        code = asyncio.run(runtime.run(
            instance_id, container,
            lambda instance: FakeEngine(instance, container.auth_store if with_store else None, recorder),
            bind_host="127.0.0.1", advertise_host="10.0.0.5"))
    assert code == 1, "the fake engine ends the runtime through its crash path"


def sqs_event(sqs: Any, queue_name: str, region: str) -> dict[str, Any]:
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages: list[dict[str, Any]] = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        messages += got
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
                         "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn,
                         "awsRegion": region} for m in messages]}


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def run_everything(recorder: Recorder, env: dict[str, str], receiver: WebhookReceiver) -> set[tuple[str, str]]:
    """The scenario. Returns the routes it called."""
    from chalice.test import Client

    import app

    template = composed_template()
    assert set(of_type(template, "AWS::Serverless::Function")) == {"APIHandler", "DeliverWebhooks", "ReconcileInstances"}
    families = {str(render(t["Properties"]["Family"], {"Prefix": "instance-manager"})): name
                for name, t in of_type(template, "AWS::ECS::TaskDefinition").items()}
    session = boto3.session.Session()
    sqs = session.client("sqs")
    called: set[tuple[str, str]] = set()

    def http(client: Any, method: str, route: str, path: str, body: Any = None, expect: int | None = 200) -> Any:
        called.add((route, method))
        with recorder.acting_as("APIHandler"):
            answer = getattr(client.http, method.lower())(
                path, headers={"Content-Type": "application/json"},
                **({"body": json.dumps(body)} if method not in ("GET", "DELETE") else {}))
        if expect is not None:
            assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.body!r}"
        return json.loads(answer.body) if answer.body else None

    wiring.reset()  # a cold API function
    with Client(app.app) as client:
        base = "/api/v1/instances"
        inst = base + "/{instanceId}"
        tg = http(client, "POST", base, base, {
            "company_id": "acme", "provider": "telegram", "type_instance": ["api"],
            "config": {"bot_token": "123456:AAFakeTokenForTryingThingsOut"},
            "api_webhook_schema": {"url": receiver.base + "/ok", "headers": {"Authorization": "Bearer t"}}})["instance_id"]
        wa = http(client, "POST", base, base, {
            "company_id": "acme", "provider": "whatsappweb", "type_instance": ["api"],
            "api_webhook_schema": {"url": receiver.base + "/fail", "events": ["message", "qr", "instance.status"]},
        })["instance_id"]
        http(client, "GET", base, base)
        http(client, "GET", base, base + "?company_id=acme")
        for suffix in ("", "/current-api-key", "/auth-status", "/logs", "/webhook", "/deliveries"):
            http(client, "GET", inst + suffix, f"{base}/{tg}{suffix}")
        http(client, "GET", inst + "/qr", f"{base}/{tg}/qr", expect=409)
        http(client, "POST", inst + "/pairing-code", f"{base}/{wa}/pairing-code", {"phone_number": "+15551234567"},
             expect=None)  # no task answers here; the call still reads the instance
        http(client, "POST", inst + "/webhook/rotate-secret", f"{base}/{tg}/webhook/rotate-secret", {})
        http(client, "PATCH", inst + "/webhook", f"{base}/{tg}/webhook", {"enabled": True})
        http(client, "POST", inst + "/start", f"{base}/{tg}/start")  # already running: DescribeTasks
        http(client, "POST", inst + "/stop", f"{base}/{wa}/stop")
        http(client, "POST", inst + "/start", f"{base}/{wa}/start")
        http(client, "POST", inst + "/restart", f"{base}/{wa}/restart")

        # The provider tasks, each under its own task role.
        repository = wiring.container().repository
        for instance_id in (tg, wa):
            instance = repository.get(instance_id)
            assert instance is not None
            family = dict(wiring.container().settings.ecs_task_definitions)[instance.provider.value]
            run_provider(recorder, families[family], instance_id, with_store=instance.provider.value == "whatsappweb")

        http(client, "POST", inst + "/webhook/test", f"{base}/{wa}/webhook/test", {})
        # The webhook handler, cold: the telegram message is delivered, the whatsapp ones fail (500).
        wiring.reset()
        with recorder.acting_as("DeliverWebhooks"):
            client.lambda_.invoke("deliver_webhooks", sqs_event(sqs, env["EVENTS_QUEUE_NAME"], session.region_name))
        # A receiver that refuses for good (410): the event goes to the dead-letter queue.
        wiring.reset()
        http(client, "PATCH", inst + "/webhook", f"{base}/{wa}/webhook", {"url": receiver.base + "/gone"})
        http(client, "POST", inst + "/webhook/test", f"{base}/{wa}/webhook/test", {})
        boto3.client("sqs").purge_queue(QueueUrl=sqs.get_queue_url(QueueName=env["EVENTS_QUEUE_NAME"])["QueueUrl"])
        http(client, "POST", inst + "/webhook/test", f"{base}/{wa}/webhook/test", {})
        wiring.reset()
        with recorder.acting_as("DeliverWebhooks"):
            client.lambda_.invoke("deliver_webhooks", sqs_event(sqs, env["EVENTS_QUEUE_NAME"], session.region_name))

        deliveries = http(client, "GET", inst + "/deliveries", f"{base}/{wa}/deliveries")["data"]
        assert deliveries, "the webhook handler recorded its deliveries"
        delivery = deliveries[0]["id"]
        ids = {"instanceId": wa, "deliveryId": delivery}
        http(client, "GET", inst + "/deliveries", f"{base}/{wa}/deliveries?state=dead")
        http(client, "GET", inst + "/deliveries/{deliveryId}", fill(inst + "/deliveries/{deliveryId}", ids))
        http(client, "POST", inst + "/deliveries/{deliveryId}/retry", fill(inst + "/deliveries/{deliveryId}/retry", ids),
             {}, expect=None)

        # The reconcile schedule, cold: both tasks are gone (each provider is started again), then
        # an instance is stopped with its task left running (it is stopped).
        wiring.reset()
        repository = wiring.container().repository
        for instance_id in (tg, wa):  # the real tasks end, so the launcher's ListTasks finds none running
            instance = repository.get(instance_id)
            assert instance is not None
            boto3.client("ecs").stop_task(cluster=env["ECS_CLUSTER"], task=instance.task_handle, reason="test")
            repository.set_task(instance_id, "arn:aws:ecs:us-east-1:123456789012:task/instance-manager/0000gone")
        scheduled = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                    resources=[])
        with recorder.acting_as("ReconcileInstances"):
            assert client.lambda_.invoke("reconcile_instances", scheduled).payload == {"started": 2}
        repository.set_desired_state(wa, DesiredState.STOPPED, Status.STOPPED)
        with recorder.acting_as("ReconcileInstances"):
            assert client.lambda_.invoke("reconcile_instances", scheduled).payload == {"started": 0}
        stopped = repository.get(wa)
        assert stopped is not None and stopped.task_handle is None

        # The deep health check probes every backend with grants the API has already (no DescribeTable...).
        assert http(client, "GET", "/api/health", "/api/health?deep=true")["status"] == "healthy"

        # Every other route, with what it needs, so no route goes unexercised.
        for route in app.app.routes:
            if route.startswith("/{p0}") or route in ("/api/health", "/qr-page/{instanceId}", "/docs", "/openapi.json"):
                continue
            for method in app.app.routes[route]:
                if (route, method) not in called and (route, method) != (inst, "DELETE"):
                    http(client, method, route, fill(route, {"instanceId": tg, "deliveryId": delivery}), {}, expect=None)
        wiring.reset()
        for instance_id in (tg, wa):
            http(client, "DELETE", inst, f"{base}/{instance_id}")
    return called


# --- what the calls need -------------------------------------------------------------------------------
def needs_of_call(service: str, operation: str, params: dict[str, Any], refs: dict[str, str]) -> list[Need]:
    region, account = refs["AWS::Region"], refs["AWS::AccountId"]
    if service == "dynamodb":
        def table(name: str, index: str | None = None) -> str:
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}" + (f"/index/{index}" if index else "")

        if operation == "TransactWriteItems":  # IAM authorizes each item's own action
            return [Need(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table(item[kind]["TableName"]))
                    for item in params["TransactItems"] for kind in item]
        if operation == "TransactGetItems":
            return [Need("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in params["TransactItems"]]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Need(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
        return [Need(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")))]
    if service == "sqs":
        queue = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[-1]
        return [Need(f"sqs:{operation}", f"arn:aws:sqs:{region}:{account}:{queue}")]
    if service == "logs":
        group, stream = params["logGroupName"], params.get("logStreamName", "*")
        return [Need(f"logs:{operation}", f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}")]
    if service == "kms":
        return [Need(f"kms:{operation}", refs["SecretsKey.Arn"])]
    if service == "ecs":
        cluster = f"arn:aws:ecs:{region}:{account}:cluster/{params['cluster'].rsplit('/', 1)[-1]}"
        context = (("ecs:cluster", cluster),)
        if operation == "RunTask":
            definition = params["taskDefinition"]
            if not definition.startswith("arn:"):
                definition = f"arn:aws:ecs:{region}:{account}:task-definition/{definition}"
            if ":" not in definition.rsplit("/", 1)[-1]:
                definition += ":1"
            return [Need("ecs:RunTask", definition, context)]
        if operation == "ListTasks":
            return [Need("ecs:ListTasks", "*", context)]
        return [Need(f"ecs:{operation}", task, context) for task in params.get("tasks", [params.get("task")])]
    raise AssertionError(f"no resource mapping for {service}:{operation}: teach needs_of_call about it")


def implied_needs(calls: list[Need], template: dict[str, Any], refs: dict[str, str]) -> list[Need]:
    """Authorizations AWS checks beyond the called action itself."""
    needs = []
    families = {str(render(t["Properties"]["Family"], refs)): t for t in of_type(template, "AWS::ECS::TaskDefinition").values()}
    for need in calls:
        if need.action != "ecs:RunTask":
            continue
        family = need.resource.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        task = families[family]["Properties"]
        for role in (task["ExecutionRoleArn"], task["TaskRoleArn"]):
            needs.append(Need("iam:PassRole", str(render(role, refs)), (("iam:PassedToService", "ecs-tasks.amazonaws.com"),),
                              "RunTask hands the task its roles"))
        cluster = dict(need.context)["ecs:cluster"].rsplit("/", 1)[-1]
        needs.append(Need("ecs:TagResource", f"arn:aws:ecs:{refs['AWS::Region']}:{refs['AWS::AccountId']}:task/{cluster}/new",
                          (("ecs:CreateAction", "RunTask"),), "RunTask tags the task it creates (tags=...)"))
    return needs


def platform_needs(template: dict[str, Any], refs: dict[str, str]) -> dict[str, list[Need]]:
    """Per role: what Lambda (logs, VPC interfaces, the SQS event source) and ECS (image pull,
    container logs) do with the role, derived from the template."""
    needs: dict[str, list[Need]] = defaultdict(list)
    for name, function in of_type(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        group = render({"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}, refs)
        needs[role] += [Need(a, group, (), f"Lambda writes {name}'s own logs") for a in LOG_DELIVERY_ACTIONS]
        if "VpcConfig" in props:
            needs[role] += [Need(a, "*", (), f"Lambda attaches {name} to the VPC") for a in LAMBDA_VPC_ACTIONS]
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = render(event["Properties"]["Queue"], refs)
                needs[role] += [Need(a, queue, (), f"the SQS event source polls for {name}") for a in SQS_EVENT_SOURCE_ACTIONS]
    for name, task in of_type(template, "AWS::ECS::TaskDefinition").items():
        props = task["Properties"]
        role = props["ExecutionRoleArn"]["Fn::GetAtt"][0]
        needs[role].append(Need("ecr:GetAuthorizationToken", "*", (), "ECS logs in to ECR"))
        for container in props["ContainerDefinitions"]:
            repository = container["Image"]["Fn::Sub"].split(".RepositoryUri")[0].lstrip("${")
            needs[role] += [Need(a, render({"Fn::GetAtt": [repository, "Arn"]}, refs), (), f"ECS pulls {name}'s image")
                            for a in IMAGE_PULL_ACTIONS]
            group = render({"Fn::GetAtt": [container["LogConfiguration"]["Options"]["awslogs-group"]["Ref"], "Arn"]}, refs)
            needs[role] += [Need(a, group, (), f"awslogs ships {name}'s output") for a in LOG_DELIVERY_ACTIONS]
    return needs


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str
    conditions: tuple[tuple[str, str, str], ...]
    where: str


def grants_of(role: dict[str, Any], refs: dict[str, str], role_name: str) -> list[Grant]:
    grants = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            conditions = tuple((op, key, str(render(value, refs)))
                               for op, pairs in statement.get("Condition", {}).items() for key, value in pairs.items())
            for action in actions:
                assert "*" not in action, f"{role_name}: wildcard action {action}"
                grants += [Grant(action, str(render(r, refs)), conditions, f"{role_name}/{statement.get('Sid', '?')}")
                           for r in resources]
    return grants


def allows(grant: Grant, need: Need) -> bool:
    if grant.action != need.action or not fnmatch.fnmatchcase(need.resource, grant.resource):
        return False
    context = dict(need.context)
    for op, key, value in grant.conditions:
        assert op in ("StringEquals", "ArnEquals"), f"{grant.where}: condition operator {op} not understood here"
        if context.get(key) != value:
            return False
    return True


# --- the test --------------------------------------------------------------------------------------------
def static_client_operations() -> set[tuple[str, str]]:
    """boto3 client calls in the code: `<...>._<service>.<method>(` / `<service>.<method>(`."""
    found = set()
    session = boto3.session.Session(region_name="us-east-1")
    clients: dict[str, Any] = {}
    for path in [ROOT / "app.py", *ROOT.glob("chalicelib/**/*.py"), *ROOT.glob("provider/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            service = name.lstrip("_")
            if service in CLIENT_ATTRIBUTES:
                client = clients.get(service) or clients.setdefault(service, session.client(service))
                operation = client.meta.method_to_api_mapping.get(node.func.attr)
                if operation:
                    found.add((client.meta.service_model.signing_name, operation))
    return found


def dynamo_adapter_methods() -> dict[str, Any]:
    """Public methods of the DynamoDB adapters that some code calls (a method nobody calls needs no grant)."""
    paths = [ROOT / "app.py", *ROOT.glob("chalicelib/**/*.py"), *ROOT.glob("provider/**/*.py")]
    sources = "\n".join(p.read_text() for p in paths)
    methods = {}
    for relative in DYNAMO_ADAPTERS:
        module_name = relative[:-3].replace("/", ".")
        module = __import__(module_name, fromlist=["*"])
        for cls_name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module_name:
                continue
            for name, member in vars(cls).items():
                if name.startswith("_") or not inspect.isfunction(member):
                    continue
                if f".{name}(" in sources or f".{name}," in sources or f".{name})" in sources:
                    methods[f"{cls_name}.{name}"] = (cls, name)
    return methods


def shared(method: Any) -> Any:
    """A loader method cached across every Loader (they all read the same files here)."""
    cache: dict[Any, Any] = {}

    @functools.wraps(method)
    def load(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = method(self, *args, **kwargs)
        return cache[key]

    return load


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Recorder, set[tuple[str, str]]]]:
    """One run of the whole scenario for the module (it takes a few seconds)."""
    recorder = Recorder()
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if recorder.role is not None:
            recorder.calls[recorder.role].append((client.meta.service_model.signing_name, operation_name, api_params))
        return original(client, operation_name, api_params)

    receiver = receiver_for_the_run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
        # Every cold start below makes new sessions, each parsing botocore's JSON models again: share them.
        for loader_method in ("load_service_model", "load_data"):
            patch.setattr(botocore.loaders.Loader, loader_method, shared(getattr(botocore.loaders.Loader, loader_method)))
        for qualified, (cls, name) in dynamo_adapter_methods().items():
            method = getattr(cls, name)

            def traced(*args: Any, _method: Any = method, _qualified: str = qualified, **kwargs: Any) -> Any:
                recorder.methods.add(_qualified)
                return _method(*args, **kwargs)

            patch.setattr(cls, name, traced)
        try:
            for env in moto_environment():
                patch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
                patch.setenv("INSTANCE_PORT_RANGE", free_port_range())
                wiring.reset()
                called = run_everything(recorder, dict(env), receiver)
                refs = {**deployed_refs(boto3.session.Session()), "ProviderCluster": env["ECS_CLUSTER"],
                        "ProviderCluster.Arn": f"arn:aws:ecs:us-east-1:123456789012:cluster/{env['ECS_CLUSTER']}"}
                recorder.refs = refs
                yield recorder, called
        finally:
            receiver.close()
            wiring.reset()


def test_each_role_grants_exactly_what_its_code_calls(recorded: tuple[Recorder, set[tuple[str, str]]]) -> None:
    recorder, _ = recorded
    template = composed_template()
    refs = recorder.refs
    role_of = {name: r["Properties"]["Role"]["Fn::GetAtt"][0]
               for name, r in of_type(template, "AWS::Serverless::Function").items()}
    role_of |= {name: t["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
                for name, t in of_type(template, "AWS::ECS::TaskDefinition").items()}
    assert set(recorder.calls) == set(role_of), "every function and task ran"

    needs: dict[str, list[Need]] = defaultdict(list)
    for actor, calls in recorder.calls.items():
        called = [n for service, op, params in calls for n in needs_of_call(service, op, params, refs)]
        needs[role_of[actor]] += called + implied_needs(called, template, refs)
    for role_name, extra in platform_needs(template, refs).items():
        needs[role_name] += extra

    roles = of_type(template, "AWS::IAM::Role")
    assert set(roles) == set(needs), "every role belongs to a function or a task, and each has one"
    problems = []
    for role_name, resource in roles.items():
        grants = grants_of(resource, refs, role_name)
        for need in sorted(set(needs[role_name]), key=lambda n: (n.action, n.resource)):
            if not any(allows(g, need) for g in grants):
                problems.append(f"{role_name} lacks {need.action} on {need.resource} ({need.why}; context {dict(need.context)})")
        for grant in grants:
            used = [n for n in needs[role_name] if allows(grant, n)]
            if not used:
                problems.append(f"{grant.where} grants {grant.action} on {grant.resource}, which nothing needs")
            elif grant.resource == "*" and not any(n.resource == "*" for n in used):
                problems.append(f"{grant.where} grants {grant.action} on every resource; the code needs {used[0].resource}")
    assert not problems, "\n".join(problems)


def test_the_run_exercised_every_aws_operation_and_dynamodb_method_in_the_code(
        recorded: tuple[Recorder, set[tuple[str, str]]]) -> None:
    recorder, called = recorded
    seen = {(service, op) for calls in recorder.calls.values() for service, op, _ in calls}
    missing = static_client_operations() - seen
    assert not missing, f"the code calls {sorted(missing)} but the scenario in {__file__} never reaches them"
    unexercised = set(dynamo_adapter_methods()) - recorder.methods
    assert not unexercised, f"DynamoDB adapter methods the scenario never reaches: {sorted(unexercised)}"
    assert any(route == "/api/v1/instances/{instanceId}" and method == "DELETE" for route, method in called)


def test_the_run_made_no_call_outside_the_known_services(recorded: tuple[Recorder, set[tuple[str, str]]]) -> None:
    recorder, _ = recorded
    services = {service for calls in recorder.calls.values() for service, _, _ in calls}
    assert services <= {"dynamodb", "sqs", "logs", "kms", "ecs"}, services
