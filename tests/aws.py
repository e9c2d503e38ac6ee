"""moto-backed AWS for tests: the resources from infra/resources.yaml plus the ECS pieces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3

from stack import resources

REGION = "us-east-1"
TASK_FAMILIES = {"telegram": "instance-manager-telegram", "whatsappweb": "instance-manager-whatsappweb"}


def fake_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def create_ecs(session: Any) -> dict[str, str]:
    """A cluster, a VPC subnet and security group, and a Fargate task definition per provider.
    Registered through boto3: moto's CloudFormation drops Fargate fields (see the notes)."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto gives task ENIs a DNS name only in a VPC with DNS host names (as Fargate VPCs have).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="providers", Description="provider tasks", VpcId=vpc)["GroupId"]
    ecs = session.client("ecs")
    ecs.create_cluster(clusterName="instance-manager")
    for provider, family in TASK_FAMILIES.items():
        ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "provider",
                    "image": f"instance-manager-provider-{provider}:latest",
                    "memory": 512,
                    "essential": True,
                    "environment": [{"name": "PROVIDER", "value": provider}],
                }
            ],
        )
    return {"ECS_CLUSTER": "instance-manager", "ECS_SUBNETS": subnet, "ECS_SECURITY_GROUPS": group}


def pin_ecs_tasks() -> None:
    """moto advances a task's status on every describe; keep tasks where they are."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})


def moto_environment() -> Iterator[dict[str, str]]:
    from moto import mock_aws

    saved = dict(os.environ)
    os.environ.update(fake_credentials())
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        pin_ecs_tasks()
        session = boto3.session.Session(region_name=REGION)
        env = resources.environment(resources.deploy(session.client("cloudformation")))
        env.update(create_ecs(session))
        env.update({"LAUNCHER": "ecs", "ADMIN_API_KEY": "", "SECRETS_KEY_FILE": ""})
        os.environ.update(env)
        try:
            yield env
        finally:
            os.environ.clear()
            os.environ.update(saved)
