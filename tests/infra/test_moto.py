"""infra/resources.yaml deployed into moto's CloudFormation (tests/aws.py), and the code's own adapters
working on exactly what it created; the task definitions of infra/service.yaml registered through
boto3 (moto's CloudFormation drops their Fargate fields) and started by the code's own launcher."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import wiring
from chalicelib.adapters.ecs import EcsLauncher
from chalicelib.config import Settings
from chalicelib.core.types import ApiKey, Instance, Provider
from tests.aws import moto_environment
from tests.infra.templates import composed_template, container_environment, deployed_refs, of_type, render

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    """The conftest's `aws` (infra/resources.yaml deployed into moto), once for this module."""
    for env in moto_environment():
        wiring.reset()
        yield env
    wiring.reset()


def new_instance(provider: Provider, company: str = "acme", token: str = "123456:AAtest") -> Instance:
    return Instance(
        id=str(uuid.uuid4()), company_id=company, provider=provider, type_instance=("api",), ports={},
        api_key=ApiKey("k-" + uuid.uuid4().hex, NOW), created_at=NOW, updated_at=NOW,
        secrets={"bot_token": token} if provider is Provider.TELEGRAM else {},
    )


def test_the_code_reads_and_writes_the_tables_the_template_created(aws: dict[str, str]) -> None:
    settings = Settings.from_env()
    dynamodb = boto3.client("dynamodb")
    created = set(dynamodb.list_tables()["TableNames"])
    assert {settings.instances_table, settings.leases_table, settings.auth_table, settings.deliveries_table} <= created

    repository = wiring.container().repository
    one = repository.create(new_instance(Provider.TELEGRAM), settings.max_instances_per_company, settings.port_range)
    two = repository.create(new_instance(Provider.WHATSAPPWEB), settings.max_instances_per_company, settings.port_range)
    other = repository.create(new_instance(Provider.TELEGRAM, "globex", "654321:AAother"),  # one token, one instance
                              settings.max_instances_per_company,
                              settings.port_range)

    fetched = repository.get(one.id)
    assert fetched is not None and fetched.api_key.value == one.api_key.value
    assert fetched.secrets == {"bot_token": "123456:AAtest"}
    assert {i.id for i in repository.list_by_company("acme")} == {one.id, two.id}  # the by_company index
    assert {i.id for i in repository.list_all()} == {one.id, two.id, other.id}  # the by_record_type index
    assert len({one.ports["api"], two.ports["api"], other.ports["api"]}) == 3  # the leases table

    auth = wiring.container().auth_store  # the auth table (hash and range key)
    auth.put(two.id, {"creds": {"me": "15551234567"}, "pre-key/1": {"k": 1}})
    assert auth.load(two.id) == {"creds": {"me": "15551234567"}, "pre-key/1": {"k": 1}}
    auth.wipe(two.id)
    assert auth.load(two.id) == {}

    repository.delete(two)
    assert repository.get(two.id) is None


def test_the_queues_logs_and_key_the_template_created_are_the_ones_the_code_names(aws: dict[str, str]) -> None:
    settings = Settings.from_env()
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.events_queue)["QueueUrl"]
    dead = sqs.get_queue_url(QueueName=settings.events_dlq)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert dead_arn in attributes["RedrivePolicy"]
    assert (attributes.get("FifoQueue") == "true") == settings.events_queue.endswith(".fifo")

    logs = boto3.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=settings.log_group)["logGroups"]
    assert group["logGroupName"] == settings.log_group and group["retentionInDays"] > 0

    aliases = {a["AliasName"] for a in boto3.client("kms").list_aliases()["Aliases"]}
    assert settings.kms_key_id in aliases
    box = wiring.container().secret_box  # KMS envelope encryption under the template's key
    assert box.open(box.seal("a secret")) == "a secret"


def _register(ecs: Any, task: dict[str, Any], refs: dict[str, str]) -> str:
    """register_task_definition with the template's properties (the same keys, camelCased)."""
    props = render(task["Properties"], refs, {"HasWhatsAppWsUrl": True})
    (container,) = props["ContainerDefinitions"]
    environment = container_environment(task, {"HasWhatsAppWsUrl": True})
    answer = ecs.register_task_definition(
        family=props["Family"],
        requiresCompatibilities=props["RequiresCompatibilities"],
        networkMode=props["NetworkMode"],
        cpu=props["Cpu"],
        memory=props["Memory"],
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": props["RuntimePlatform"]["CpuArchitecture"]},
        executionRoleArn="arn:aws:iam::123456789012:role/execution",
        taskRoleArn="arn:aws:iam::123456789012:role/task",
        containerDefinitions=[{
            "name": container["Name"],
            "image": container["Image"],
            "essential": container["Essential"],
            "memoryReservation": 128,  # moto insists on a container-level memory; Fargate does not
            "environment": [{"name": k, "value": str(render(v, refs))} for k, v in environment.items()],
            "healthCheck": {"command": container["HealthCheck"]["Command"]},
            "linuxParameters": {"initProcessEnabled": True},
        }],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def test_the_launcher_starts_each_provider_from_the_template_s_task_definition(aws: dict[str, str]) -> None:
    template = composed_template()
    refs = {**deployed_refs(boto3.session.Session()), "ImageTag": "src-test", "TelegramApiRoot": "https://api.telegram.org",
            "WhatsAppWsUrl": "wss://web.whatsapp.com/ws/chat"}
    ecs = boto3.client("ecs")
    arns = {name: _register(ecs, task, refs) for name, task in of_type(template, "AWS::ECS::TaskDefinition").items()}
    # What the Lambda gets: ECS_TASK_DEFINITION_* = the ARN of the template's task definition.
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    env = {**aws, "ECS_CONTAINER_NAME": globals_env["ECS_CONTAINER_NAME"],
           "ECS_TASK_DEFINITION_TELEGRAM": arns[globals_env["ECS_TASK_DEFINITION_TELEGRAM"]["Ref"]],
           "ECS_TASK_DEFINITION_WHATSAPPWEB": arns[globals_env["ECS_TASK_DEFINITION_WHATSAPPWEB"]["Ref"]]}
    launcher = EcsLauncher(ecs, Settings.from_env(env))
    for provider in Provider:
        target = new_instance(provider).replace(ports={"api": 8123})
        handle = launcher.launch(target)
        (task,) = ecs.describe_tasks(cluster=env["ECS_CLUSTER"], tasks=[handle])["tasks"]
        assert task["taskDefinitionArn"] == env[f"ECS_TASK_DEFINITION_{provider.value.upper()}"]
        (override,) = task["overrides"]["containerOverrides"]
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        assert override["name"] == container["name"], "the launcher must override the template's container"
        variables = {e["name"]: e["value"] for e in [*container["environment"], *override["environment"]]}
        assert variables["INSTANCE_PORT"] == "8123"  # what the image's health check reads
        assert variables["INSTANCES_TABLE"] == aws["INSTANCES_TABLE"]
        assert definition["cpu"] and definition["memory"] and definition["requiresCompatibilities"] == ["FARGATE"]
