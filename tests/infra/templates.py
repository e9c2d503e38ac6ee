"""Helpers for the infrastructure tests: the templates, `chalice package`, and a small renderer of
CloudFormation intrinsic functions (enough for the forms infra/ uses)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.compose import RESOURCES, SERVICE, compose, load

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
FUNCTIONS = ("APIHandler", "DeliverWebhooks", "ReconcileInstances")
NO_VALUE = object()


def resources_template() -> dict[str, Any]:
    return load(RESOURCES)


def service_template() -> dict[str, Any]:
    return load(SERVICE)


def composed_template() -> dict[str, Any]:
    return compose()


def chalice_executable() -> str | None:
    beside = Path(sys.executable).parent / "chalice"
    return str(beside) if beside.exists() else shutil.which("chalice")


def chalice_package(out: Path) -> Path:
    """What scripts/deploy.sh does before uploading: compose, then `chalice package --merge-template`."""
    chalice = chalice_executable()
    assert chalice is not None
    merge = out / "merge.json"
    merge.write_text(json.dumps(compose(), indent=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = REGION
    done = subprocess.run([chalice, "package", "--stage", "prod", "--merge-template", str(merge), str(out / "sam")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"chalice package failed:\n{done.stdout}\n{done.stderr}"
    return out / "sam" / "sam.json"


def render(value: Any, refs: Mapping[str, str], conditions: Mapping[str, bool] | None = None) -> Any:
    """Resolve Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::If with `refs` ("Name" for Ref, "Name.Attr"
    for GetAtt). A name refs does not know renders as "<Name>" / "<Name.Attr>", so templates can be
    compared symbolically. AWS::NoValue drops the key or list item."""
    conditions = conditions or {}
    if isinstance(value, list):
        return [r for r in (render(v, refs, conditions) for v in value) if r is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else refs.get(arg, f"<{arg}>")
        if key == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else arg
            return refs.get(name, f"<{name}>")
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in local:
                    return str(render(local[name], refs, conditions))
                return str(refs.get(name, f"<{name}>"))

            return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
        if key == "Fn::Join":
            separator, items = arg
            parts = render(items, refs, conditions)
            return separator.join(str(p) for p in (parts if isinstance(parts, list) else [parts]))
        if key == "Fn::If":
            name, then, otherwise = arg
            return render(then if conditions.get(name, False) else otherwise, refs, conditions)
    rendered = {k: render(v, refs, conditions) for k, v in value.items()}
    return {k: v for k, v in rendered.items() if v is not NO_VALUE}


def logical_ids(value: Any) -> set[str]:
    """Every resource or parameter a value refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= logical_ids(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text)}
                if not isinstance(arg, str):
                    found |= logical_ids(arg[1])
            else:
                found |= logical_ids(arg)
    return found


def deployed_refs(session: Any) -> dict[str, str]:
    """Ref and GetAtt values of the resources stack as (moto's) CloudFormation created it."""
    from stack.resources import STACK_NAME

    cloudformation = session.client("cloudformation")
    region = session.region_name
    account = session.client("sts").get_caller_identity()["Account"]
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    refs = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    refs.update({"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})
    for resource in cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]:
        name, physical, kind = resource["LogicalResourceId"], resource["PhysicalResourceId"], resource["ResourceType"]
        refs[name] = physical
        if kind == "AWS::DynamoDB::Table":
            refs[f"{name}.Arn"] = f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
        elif kind == "AWS::SQS::Queue":
            queue = physical.rsplit("/", 1)[-1]
            refs[f"{name}.QueueName"] = queue
            refs[f"{name}.Arn"] = f"arn:aws:sqs:{region}:{account}:{queue}"
        elif kind == "AWS::Logs::LogGroup":
            refs[f"{name}.Arn"] = f"arn:aws:logs:{region}:{account}:log-group:{physical}:*"
        elif kind == "AWS::KMS::Key":
            refs[f"{name}.Arn"] = f"arn:aws:kms:{region}:{account}:key/{physical}"
    if "Prefix" not in refs:
        refs["Prefix"] = "instance-manager"
    return refs


def container_environment(task_definition: dict[str, Any], conditions: Mapping[str, bool]) -> dict[str, Any]:
    """The provider container's environment, values left as written (intrinsics unresolved)."""
    (container,) = task_definition["Properties"]["ContainerDefinitions"]
    variables: dict[str, Any] = {}
    for item in container.get("Environment", []):
        if "Fn::If" in item:
            name, then, otherwise = item["Fn::If"]
            item = then if conditions.get(name, False) else otherwise
            if item == {"Ref": "AWS::NoValue"}:
                continue
        variables[item["Name"]] = item["Value"]
    return variables


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}
