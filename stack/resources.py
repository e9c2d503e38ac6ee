"""Creates the stateful resources from infra/resources.yaml through (moto's) CloudFormation, and
gives the environment variables that point the code at them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "resources.yaml"
STACK_NAME = "instance-manager-resources"


def deploy(cloudformation: Any, prefix: str = "instance-manager") -> dict[str, str]:
    """Create the stack (or reuse it) and return its outputs."""
    try:
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Prefix", "ParameterValue": prefix}],
        )
    except cloudformation.exceptions.AlreadyExistsException:
        pass
    for _ in range(100):
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"].endswith("_COMPLETE"):
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        time.sleep(0.1)
    raise RuntimeError(f"stack {STACK_NAME} did not complete: {stack['StackStatus']}")


def environment(outputs: dict[str, str]) -> dict[str, str]:
    """The settings (see chalicelib/config.py) that name the deployed resources."""
    return {
        "INSTANCES_TABLE": outputs["InstancesTableName"],
        "LEASES_TABLE": outputs["LeasesTableName"],
        "AUTH_TABLE": outputs["AuthTableName"],
        "EVENTS_QUEUE_NAME": outputs["EventsQueueName"],
        "EVENTS_DLQ_NAME": outputs["EventsDeadLetterQueueName"],
        "DELIVERIES_TABLE": outputs["DeliveriesTableName"],
        "LOG_GROUP_NAME": outputs["LogGroupName"],
        "KMS_KEY_ID": outputs["KmsKeyId"],
    }
