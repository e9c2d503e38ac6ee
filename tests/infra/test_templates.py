"""The templates in infra/, read offline: cfn-lint on every deployable template (the resources alone,
and the merged template `chalice package` writes), and the properties the deployment depends on.

infra/service.yaml alone is a fragment (it patches the functions Chalice generates): it is linted
as part of the merged template, the only form in which it is deployed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from chalicelib.adapters.dynamo import define_tables
from chalicelib.config import Settings
from chalicelib.core.events import MAX_PAYLOAD_BYTES
from infra.compose import RESOURCES, compose
from stack import resources as local_stack_resources
from tests.infra.templates import (
    FUNCTIONS,
    REGION,
    ROOT,
    composed_template,
    container_environment,
    logical_ids,
    of_type,
    render,
    resources_template,
)

# Fargate's CPU (units) and memory (MiB) pairs, as AWS documents them.
FARGATE_MEMORY = {
    "256": {512, 1024, 2048},
    "512": set(range(1024, 4097, 1024)),
    "1024": set(range(2048, 8193, 1024)),
    "2048": set(range(4096, 16385, 1024)),
    "4096": set(range(8192, 30721, 1024)),
}
DEFAULT_PREFIX = "instance-manager"


def lint(path: Path) -> list[str]:
    matches = lint_file(path, config=ManualArgs(regions=[REGION]))
    return [str(m) for m in matches if m.rule.id[0] in "EW"]


def test_the_resources_template_passes_cfn_lint() -> None:
    assert lint(RESOURCES) == []


def test_the_merged_template_chalice_packages_passes_cfn_lint(packaged: tuple[Path, dict[str, Any]]) -> None:
    path, _ = packaged
    assert lint(path) == []


def test_the_merged_template_has_the_functions_chalice_generates_patched_not_invented(
        packaged: tuple[Path, dict[str, Any]]) -> None:
    _, template = packaged
    functions = of_type(template, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS), "service.yaml patches functions by the names Chalice gives them"
    roles = of_type(template, "AWS::IAM::Role")
    for name, function in functions.items():
        props = function["Properties"]
        assert props.get("Handler", "").startswith("app."), f"{name}: a patch without a Chalice function behind it"
        assert props["Role"] == {"Fn::GetAtt": [props["Role"]["Fn::GetAtt"][0], "Arn"]}, name
        assert props["Role"]["Fn::GetAtt"][0] in roles, f"{name} must run with a role from infra/service.yaml"
        assert props["Runtime"] == "python3.11"


def test_compose_refuses_a_key_defined_in_both_files(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    two.write_text("Description: x\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    with pytest.raises(ValueError, match="Queue"):
        compose(one, two)


def test_tables_are_on_demand_with_recovery_and_match_the_models_keys_indexes_and_ttl() -> None:
    template = resources_template()
    tables = {render(t["Properties"]["TableName"], {"Prefix": DEFAULT_PREFIX}): t["Properties"]
              for t in of_type(template, "AWS::DynamoDB::Table").values()}
    models = [m for m in vars(define_tables(Settings())).values()]
    assert {m.Meta.table_name for m in models} == set(tables), "one table per PynamoDB model, same names"
    for model in models:
        props = tables[model.Meta.table_name]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        schema = model._get_schema()
        assert _keys(props["KeySchema"]) == _keys(schema["key_schema"]), model.Meta.table_name
        types = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
        assert types == {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
        indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
        model_indexes = {i["index_name"]: i for i in schema["global_secondary_indexes"]}
        assert set(indexes) == set(model_indexes), model.Meta.table_name
        for name, index in model_indexes.items():
            assert _keys(indexes[name]["KeySchema"]) == _keys(index["key_schema"]), f"{model.Meta.table_name} {name}"
            assert indexes[name]["Projection"] == index["projection"]
        assert not schema["local_secondary_indexes"]
        ttl = [a.attr_name for a in model.get_attributes().values() if type(a).__name__ == "TTLAttribute"]
        if ttl:
            assert props.get("TimeToLiveSpecification") == {"AttributeName": ttl[0], "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props, "TTL on a table whose model has no TTL attribute"


def _keys(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def test_every_queue_has_a_dead_letter_queue_of_its_kind() -> None:
    queues = of_type(resources_template(), "AWS::SQS::Queue")
    targets = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for q in queues.values() if "RedrivePolicy" in q["Properties"]}
    for name, queue in queues.items():
        if name in targets:
            continue
        policy = queue["Properties"].get("RedrivePolicy")
        assert policy, f"{name} has no dead-letter queue"
        dead = queues[policy["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        assert queue["Properties"].get("FifoQueue", False) == dead["Properties"].get("FifoQueue", False)
        assert policy["maxReceiveCount"]
    for name, queue in queues.items():  # an event carries a payload of up to MAX_PAYLOAD_BYTES, plus its envelope
        assert queue["Properties"].get("MaximumMessageSize", 262144) >= MAX_PAYLOAD_BYTES + 16 * 1024, name


def test_every_log_group_has_a_retention_and_everything_logs_into_one_of_them() -> None:
    template = composed_template()
    groups = of_type(template, "AWS::Logs::LogGroup")
    assert groups and all(g["Properties"].get("RetentionInDays") for g in groups.values())
    for name in FUNCTIONS:
        log_group = template["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]
        assert log_group["Ref"] in groups, f"{name} would log to an implicit group without a retention"
    for name, task in of_type(template, "AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            options = container["LogConfiguration"]["Options"]
            assert container["LogConfiguration"]["LogDriver"] == "awslogs"
            assert options["awslogs-group"]["Ref"] in groups, name


def test_the_webhook_handler_reports_partial_batch_failures_from_the_events_queue(
        packaged: tuple[Path, dict[str, Any]]) -> None:
    _, template = packaged
    function = template["Resources"]["DeliverWebhooks"]["Properties"]
    (event,) = function["Events"].values()
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert logical_ids(props["Queue"]) == {"EventsQueue"}
    queue = template["Resources"]["EventsQueue"]["Properties"]
    if queue.get("FifoQueue"):
        assert props["BatchSize"] <= 10
        assert props.get("MaximumBatchingWindowInSeconds", {"Ref": "AWS::NoValue"}) == {"Ref": "AWS::NoValue"}, \
            "FIFO event sources take no batching window"
    # Lambda refuses an SQS event source whose queue's visibility timeout is shorter than the function's.
    assert function["Timeout"] <= queue["VisibilityTimeout"]


def test_the_reconcile_schedule_cannot_pile_up(packaged: tuple[Path, dict[str, Any]]) -> None:
    _, template = packaged
    function = template["Resources"]["ReconcileInstances"]["Properties"]
    (event,) = function["Events"].values()
    assert event["Properties"]["Schedule"] == "rate(1 minute)"
    assert function["Timeout"] < 60
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def _code_reads() -> set[str]:
    read: set[str] = set()
    for path in [*ROOT.glob("chalicelib/**/*.py"), *ROOT.glob("provider/**/*.py")]:
        read |= set(re.findall(r"""(?:environ\.get|env\.get|get|csv)\(\s*["']([A-Z][A-Z0-9_]+)["']""",
                               path.read_text()))
    return read


def _outputs_env() -> dict[str, Any]:
    """What the local stack derives from the resources template's outputs, as template values."""
    outputs = resources_template()["Outputs"]
    return local_stack_resources.environment({k: v["Value"] for k, v in outputs.items()})


def test_resource_names_reach_every_function_and_task_from_the_template() -> None:
    template = composed_template()
    wanted = _outputs_env()
    lambda_env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name, value in wanted.items():
        assert lambda_env.get(name) == value, f"Lambda {name} must be the template's own {value}"
    for task_name, task in of_type(template, "AWS::ECS::TaskDefinition").items():
        env = container_environment(task, {"HasWhatsAppWsUrl": True})
        for name, value in wanted.items():
            assert env.get(name) == value, f"{task_name}: {name} must be the template's own {value}"
        assert env["AWS_REGION"] == {"Ref": "AWS::Region"}


def test_every_variable_the_template_sets_is_one_the_code_reads() -> None:
    template = composed_template()
    read = _code_reads() | {"AWS_REGION", "LAUNCHER"}
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for name in FUNCTIONS:
        names |= set(template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {}))
    for task in of_type(template, "AWS::ECS::TaskDefinition").values():
        names |= set(container_environment(task, {"HasWhatsAppWsUrl": True}))
    assert names - read == set(), "set in infra/ but read by nothing"


def test_the_launcher_settings_point_at_the_template_s_cluster_tasks_and_network() -> None:
    template = composed_template()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    assert stage["environment_variables"]["LAUNCHER"] == "ecs"
    assert stage["api_gateway_stage"] == "prod"
    assert env["ECS_CLUSTER"] == {"Ref": "ProviderCluster"}
    assert env["ECS_TASK_DEFINITION_TELEGRAM"] == {"Ref": "TelegramTaskDefinition"}
    assert env["ECS_TASK_DEFINITION_WHATSAPPWEB"] == {"Ref": "WhatsAppTaskDefinition"}
    assert env["ECS_SUBNETS"] == {"Fn::Join": [",", {"Ref": "SubnetIds"}]}
    assert env["ECS_SECURITY_GROUPS"] == {"Fn::GetAtt": ["ProviderSecurityGroup", "GroupId"]}
    assert env["INSTANCE_PORT_RANGE"] == {"Fn::Sub": "${InstancePortFrom}-${InstancePortTo}"}
    for task in of_type(template, "AWS::ECS::TaskDefinition").values():
        names = [c["Name"] for c in task["Properties"]["ContainerDefinitions"]]
        assert names == [env["ECS_CONTAINER_NAME"]], "the launcher overrides the container by this name"
    # Only the API function reaches the tasks, and only on the instance ports.
    (ingress,) = template["Resources"]["ProviderSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["FromPort"] == {"Ref": "InstancePortFrom"} and ingress["ToPort"] == {"Ref": "InstancePortTo"}
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": ["ApiSecurityGroup", "GroupId"]}
    vpc = template["Resources"]["APIHandler"]["Properties"]["VpcConfig"]
    assert vpc == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": [{"Fn::GetAtt": ["ApiSecurityGroup", "GroupId"]}]}
    for name in ("DeliverWebhooks", "ReconcileInstances"):
        assert "VpcConfig" not in template["Resources"][name]["Properties"], f"{name} needs no VPC"


def test_only_the_api_function_gets_the_admin_key_and_from_the_secret() -> None:
    template = composed_template()
    assert "ADMIN_API_KEY" not in template["Globals"]["Function"]["Environment"]["Variables"]
    for name in FUNCTIONS:
        env = template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
        if name == "APIHandler":
            assert env["ADMIN_API_KEY"] == {"Fn::Sub": "{{resolve:secretsmanager:${AdminApiKeySecret}}}"}
        else:
            assert "ADMIN_API_KEY" not in env
    for task in of_type(template, "AWS::ECS::TaskDefinition").values():
        assert "ADMIN_API_KEY" not in container_environment(task, {"HasWhatsAppWsUrl": True})
    secret = template["Resources"]["AdminApiKeySecret"]["Properties"]
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32


def test_task_definitions_are_fargate_sized_as_documented_with_a_health_check() -> None:
    template = composed_template()
    deploy_doc = (ROOT / "docs" / "DEPLOY.md").read_text()
    for name, task in of_type(template, "AWS::ECS::TaskDefinition").items():
        props = task["Properties"]
        assert props["RequiresCompatibilities"] == ["FARGATE"] and props["NetworkMode"] == "awsvpc"
        cpu, memory = props["Cpu"], props["Memory"]
        assert int(memory) in FARGATE_MEMORY[cpu], f"{name}: {cpu}/{memory} is not a Fargate size"
        family = render(props["Family"], {"Prefix": DEFAULT_PREFIX})
        assert f"`{family}`: {cpu} CPU units, {memory} MiB" in deploy_doc, f"docs/DEPLOY.md must give {name}'s size"
        (container,) = props["ContainerDefinitions"]
        assert container["Essential"] is True
        assert container["LinuxParameters"]["InitProcessEnabled"] is True
        check = container["HealthCheck"]["Command"]
        assert check[0] == "CMD" and check[-1] == "/app/healthcheck.py"
        image = container["Image"]["Fn::Sub"]
        repository = re.fullmatch(r"\$\{(\w+)\.RepositoryUri\}:\$\{ImageTag\}", image)
        assert repository and template["Resources"][repository.group(1)]["Type"] == "AWS::ECR::Repository"
        assert props["TaskRoleArn"] != props["ExecutionRoleArn"]
    assert Settings().ecs_task_definitions == (("telegram", f"{DEFAULT_PREFIX}-telegram"),
                                               ("whatsappweb", f"{DEFAULT_PREFIX}-whatsappweb"))
