"""EcsLauncher against moto's ECS: what RunTask is asked for, and how task states map."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import wiring
from chalicelib.adapters.ecs import EcsLauncher
from chalicelib.config import Settings
from chalicelib.core.types import ApiKey, Instance, Provider
from chalicelib.ports import TaskState
from tests.aws import TASK_FAMILIES, moto_environment

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    """The conftest's `aws`, deployed once for this module (a deployment costs about a second): each
    test here only adds things of its own."""
    for env in moto_environment():
        wiring.reset()
        yield env
    wiring.reset()


def instance(provider: Provider = Provider.TELEGRAM, port: int = 8081) -> Instance:
    return Instance(
        id=str(uuid.uuid4()),
        company_id="user-002",
        provider=provider,
        type_instance=("api",),
        ports={"api": port},
        api_key=ApiKey("never-sent-to-ecs", NOW),
        created_at=NOW,
        updated_at=NOW,
        secrets={"bot_token": "123:never-sent-to-ecs"},
    )


@pytest.fixture
def ecs(aws: dict[str, str]) -> Any:
    return boto3.client("ecs")


@pytest.fixture
def launcher(ecs: Any) -> EcsLauncher:
    return EcsLauncher(ecs, Settings.from_env())


def described(ecs: Any, handle: str) -> dict[str, Any]:
    return dict(ecs.describe_tasks(cluster="instance-manager", tasks=[handle], include=["TAGS"])["tasks"][0])


@pytest.mark.parametrize("provider", list(Provider))
def test_launch_runs_the_providers_task_definition_with_the_instances_settings(aws, ecs, launcher, provider):
    target = instance(provider)
    handle = launcher.launch(target)

    task = described(ecs, handle)
    assert task["taskArn"] == handle
    assert task["taskDefinitionArn"].split("/")[-1].startswith(TASK_FAMILIES[provider.value] + ":")
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == target.id
    assert {t["key"]: t["value"] for t in task["tags"]} == {"instance-id": target.id, "company-id": "user-002"}
    [override] = task["overrides"]["containerOverrides"]
    assert override["name"] == "provider"
    assert {e["name"]: e["value"] for e in override["environment"]} == {
        "INSTANCE_ID": target.id, "PROVIDER": provider.value, "INSTANCE_PORT": "8081"}
    assert "never-sent-to-ecs" not in str(task), "secrets stay in DynamoDB; the task reads them itself"


def test_launch_places_the_task_in_the_configured_subnet_and_group(aws, ecs, launcher):
    handle = launcher.launch(instance())

    [attachment] = described(ecs, handle)["attachments"]
    details = {d["name"]: d["value"] for d in attachment["details"]}
    assert attachment["type"] == "ElasticNetworkInterface"
    assert details["subnetId"] == aws["ECS_SUBNETS"]
    eni = boto3.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])
    assert [g["GroupId"] for g in eni["NetworkInterfaces"][0]["Groups"]] == [aws["ECS_SECURITY_GROUPS"]]


def test_launch_twice_keeps_the_one_running_task(aws, ecs, launcher):
    target = instance()
    handle = launcher.launch(target)
    assert launcher.launch(target) == handle
    assert ecs.list_tasks(cluster="instance-manager", startedBy=target.id)["taskArns"] == [handle]


def test_a_stopped_task_is_replaced_by_a_new_one(aws, ecs, launcher):
    target = instance()
    first = launcher.launch(target)
    launcher.stop(first)
    second = launcher.launch(target)
    assert second != first
    assert launcher.describe(second).state is TaskState.RUNNING


def test_describe_maps_running_and_stop_makes_it_stopped(aws, ecs, launcher):
    handle = launcher.launch(instance())
    assert launcher.describe(handle).state is TaskState.RUNNING

    launcher.stop(handle)

    info = launcher.describe(handle)
    assert (info.handle, info.state, info.detail) == (handle, TaskState.STOPPED, "Stopped by Instance Manager")
    assert described(ecs, handle)["desiredStatus"] == "STOPPED"


def test_a_task_ecs_does_not_know_is_stopped(aws, launcher):
    launcher.launch(instance())  # moto answers "no tasks" only for a cluster that has some
    unknown = "arn:aws:ecs:us-east-1:123456789012:task/instance-manager/0123456789abcdef0123456789abcdef"
    assert launcher.describe(unknown).state is TaskState.STOPPED


def test_launch_fails_loudly_when_ecs_cannot_run_it(aws, ecs):
    settings = Settings.from_env({**aws, "ECS_TASK_DEFINITION_TELEGRAM": "no-such-family"})
    before = ecs.list_tasks(cluster="instance-manager")["taskArns"]
    with pytest.raises(ClientError, match="task definition"):
        EcsLauncher(ecs, settings).launch(instance())
    assert ecs.list_tasks(cluster="instance-manager")["taskArns"] == before
