"""Checks real HTTP exchanges against the OpenAPI document: the operation exists, the status is
documented for it, and the body matches the documented schema (required fields, types, enums)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: Any


def operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path template, operation)."""
    return {op["operationId"]: (method.upper(), path, op)
            for path, methods in doc["paths"].items() for method, op in methods.items()}


def json_operations(doc: dict[str, Any]) -> set[str]:
    return {op_id for op_id, (_, _, op) in operations(doc).items() if "application/json" in op["responses"]["200"]["content"]}


def match(doc: dict[str, Any], method: str, path: str) -> str | None:
    for op_id, (op_method, template, _) in operations(doc).items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if op_method == method and re.match(pattern, path):
            return op_id
    return None


def schema_errors(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")  # moto[server] brings it (through openapi-spec-validator)
    root = {**schema, "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(root)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]


def check(doc: dict[str, Any], exchange: Exchange) -> str:
    """The exchange's operationId, after checking the exchange against the document."""
    op_id = match(doc, exchange.method, exchange.path)
    assert op_id, f"{exchange.method} {exchange.path} is not a documented operation"
    responses = operations(doc)[op_id][2]["responses"]
    assert str(exchange.status) in responses, f"{op_id}: HTTP {exchange.status} is not documented ({sorted(responses)})"
    content = responses[str(exchange.status)]["content"]
    media = exchange.content_type.split(";")[0].strip()
    assert media in content, f"{op_id}: {media} is not a documented content type ({sorted(content)})"
    if media == "application/json":
        errors = schema_errors(doc, content[media]["schema"], exchange.body)
        assert not errors, f"{op_id} HTTP {exchange.status}: the answer does not match the document: {errors}\n{exchange.body}"
    return op_id


class Recorder:
    """Records every exchange of a requests.Session through its response hook (no patching)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def attach(self, session: requests.Session) -> requests.Session:
        session.hooks["response"].append(self._record)
        return session

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        content_type = response.headers.get("Content-Type", "")
        body: Any = response.text
        if content_type.startswith("application/json"):
            body = response.json()
        request = response.request
        self.exchanges.append(Exchange(str(request.method), urlsplit(str(request.url)).path, response.status_code,
                                       content_type, body))

    def take(self) -> list[Exchange]:
        taken, self.exchanges = self.exchanges, []
        return taken
