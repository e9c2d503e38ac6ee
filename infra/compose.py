"""Joins infra/resources.yaml and infra/service.yaml into the one template that
`chalice package --merge-template` merges into what Chalice generates.

    python infra/compose.py out/merge.json

Two files because the local stack and the tests deploy resources.yaml alone into moto, while the
rest (Lambda patches, ECS, IAM, the secret) only makes sense merged with Chalice's output. A key
defined in both files is an error: nothing is silently overridden."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

INFRA = Path(__file__).resolve().parent
RESOURCES = INFRA / "resources.yaml"
SERVICE = INFRA / "service.yaml"
SECTIONS = ("Parameters", "Conditions", "Globals", "Resources", "Outputs")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt ...) turned into long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_CfnLoader)
    assert isinstance(document, dict), f"{path} is not a template"
    return document


def compose(resources: Path = RESOURCES, service: Path = SERVICE) -> dict[str, Any]:
    base, extra = load(resources), load(service)
    unknown = set(extra) - {"AWSTemplateFormatVersion", "Description", *SECTIONS}
    if unknown:
        raise ValueError(f"{service.name}: unexpected top-level keys {sorted(unknown)}")
    merged: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Description": extra["Description"]}
    for section in SECTIONS:
        left, right = base.get(section, {}), extra.get(section, {})
        clash = set(left) & set(right)
        if clash:
            raise ValueError(f"{section} defined in both {resources.name} and {service.name}: {sorted(clash)}")
        if left or right:
            merged[section] = {**left, **right}
    return merged


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(compose(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
