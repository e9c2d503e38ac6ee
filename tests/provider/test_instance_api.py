"""The instance API (provider/api.py) over real HTTP on loopback, with an engine that records what it is
asked to send: fuzzed bodies are 400 in the error shape and reach no engine."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from provider.api import make_app

KEY = "instance-key-for-tests"


class RecordingEngine:
    name = "recording"
    capabilities = frozenset[str]()

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def run(self, host: Any) -> None:
        return None

    async def send_text(self, chat_id: str, text: str) -> str:
        self.sent.append((chat_id, text))
        return f"{chat_id}:1"


def exchange(requests: list[tuple[str, str, str | bytes]]) -> tuple[list[tuple[int, dict[str, Any]]], RecordingEngine]:
    engine = RecordingEngine()

    async def go() -> list[tuple[int, dict[str, Any]]]:
        app = make_app(api_key=KEY, engine=engine, status=lambda: {"status": "client_ready"}, count_use=lambda: None)
        async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
            answers = []
            for method, path, body in requests:
                async with session.request(method, server.make_url(path), data=body,
                                           headers={"x-api-key": KEY}) as answer:
                    answers.append((answer.status, await answer.json()))
            return answers

    return asyncio.run(go()), engine


def test_fuzzed_message_bodies_are_refused_before_the_engine() -> None:
    bodies = ["[" * 2000 + "]" * 2000, '{"chatId": true, "text": "hi"}', '{"chatId": false, "text": "hi"}',
              '{"chatId": "", "text": "hi"}', '{"chatId": "1001"}', "not json", "[]"]
    answers, engine = exchange([("POST", "/api/v1/messages", body) for body in bodies])
    for status, body in answers:
        assert status == 400 and body["success"] is False and body["code"] == "VALIDATION_ERROR", body
    assert engine.sent == []


def test_a_good_message_goes_out_and_unknown_methods_are_405_in_the_error_shape() -> None:
    answers, engine = exchange([("POST", "/api/v1/messages", '{"chatId": 1001, "text": "hi"}'),
                                ("TRACE", "/api/v1/messages", ""), ("PROPFIND", "/api/v1/status", "")])
    assert answers[0] == (200, {"success": True, "data": {"id": "1001:1"}}) and engine.sent == [("1001", "hi")]
    for status, body in answers[1:]:
        assert status == 405 and body["code"] == "METHOD_NOT_ALLOWED"


def test_the_provider_builds_from_its_own_root_not_the_lambdas() -> None:
    import subprocess
    import sys

    probe = ("import sys, provider.__main__, provider.runtime; "
             "print('chalicelib.wiring' in sys.modules, 'chalicelib.services' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
