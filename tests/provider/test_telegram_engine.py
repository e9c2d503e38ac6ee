"""The real Telegram engine (python-telegram-bot, its own getUpdates loop) against the fake Bot API over
real HTTP. Mostly: another client polls the same bot. Telegram ends the older of two getUpdates with
409 Conflict, so two pollers take the updates from each other on every poll; the engine must say so
(`error`, the reason in its log), stop fighting, retry slowly, come back when polling works, and give
up when it never does. Also what the loop took over from the library's Updater: a token revoked while
polling, and handled updates confirmed at shutdown (never delivered twice)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from telegram import Bot
from telegram.error import Conflict

from chalicelib.core.errors import ErrorCode, InstanceManagerError
from chalicelib.core.types import AuthStatus, MessageView, Status
from provider.engines.telegram import TelegramEngine
from tests.peers.telegram_bot_api import FakeTelegramServer

DELAYS = (1.5, 1.5, 1.5)


class Host:
    """EngineHost: what the engine reports, kept."""

    def __init__(self, name: str = "engine") -> None:
        self.name = name
        self.status: Status | None = None
        self.auth: AuthStatus | None = None
        self.statuses: list[Status] = []
        self.lines: list[tuple[str, str]] = []
        self.messages: list[MessageView] = []

    async def set_state(self, status: Status | None = None, auth_status: AuthStatus | None = None,
                        account: str | None = None) -> None:
        if status is not None:
            self.status = status
            self.statuses.append(status)
        if auth_status is not None:
            self.auth = auth_status

    async def emit_message(self, message: MessageView) -> None:
        self.messages.append(message)

    async def emit_ack(self, message_id: str, chat_id: str, status: str) -> None:
        pass

    async def set_qr(self, qr: str | None) -> None:
        pass

    def log(self, level: str, message: str, source: str | None = None) -> None:
        self.lines.append((level, message))

    def errors(self) -> list[str]:
        return [message for level, message in self.lines if level == "error"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
def token(server: FakeTelegramServer) -> str:
    value = f"{700000 + int.from_bytes(os.urandom(2), 'big')}:CONFLICT-{os.urandom(4).hex()}"
    server.add_bot(value)
    return value


def engine(server: FakeTelegramServer, token: str, delays: tuple[float, ...] = DELAYS) -> TelegramEngine:
    return TelegramEngine(token, server.api_root, poll_timeout=1, conflict_retry_delays=delays)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(made: TelegramEngine, host: Host) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(made.run(host))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def other_poller(server: FakeTelegramServer, token: str) -> AsyncIterator[list[int]]:
    """A naive client of the same bot elsewhere: polls on and on (short polls, ten a second), whatever
    Conflict it gets. Each of its polls ends a long poll waiting before it. Yields its count of
    successful polls."""
    polled = [0]

    async def loop() -> None:
        async with Bot(token, base_url=f"{server.api_root}/bot") as bot:
            while True:
                with contextlib.suppress(Conflict):
                    await bot.get_updates(timeout=0)
                    polled[0] += 1
                await asyncio.sleep(0.1)

    task = asyncio.create_task(loop())
    try:
        yield polled
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_another_poller_puts_the_engine_in_error_with_the_reason_and_it_comes_back(server, token):
    host = Host()

    async def scenario() -> None:
        async with running(engine(server, token), host):
            await until(lambda: host.status is Status.CLIENT_READY, 10, "client_ready")
            async with other_poller(server, token) as polled:
                await until(lambda: host.status is Status.ERROR, 5, "error on the Conflict")
                assert host.auth is AuthStatus.AUTHENTICATED, "the token itself is fine"
                reason = host.errors()[0]
                assert "409 Conflict" in reason and "terminated by other getUpdates request" in reason
                assert "same bot token" in reason and "polling again in 2 s" in reason
                assert token not in reason and token.split(":")[1] not in reason
                before = polled[0]
                await asyncio.sleep(1.0)  # inside the engine's retry delay: the other client polls undisturbed
                assert polled[0] > before and host.status is Status.ERROR
            await until(lambda: host.status is Status.CLIENT_READY, 10, "client_ready once the other client stopped")
            assert any("Polling works again" in message for _, message in host.lines)
            server.push_message(token, 4242, "after the conflict")
            await until(lambda: any(m["body"] == "after the conflict" for m in host.messages), 10, "the message")

    asyncio.run(scenario())


def test_an_engine_whose_conflict_lasts_gives_up_after_its_retries(server, token):
    host = Host()

    async def scenario() -> None:
        quitter = engine(server, token, delays=(0.3, 0.3))
        async with other_poller(server, token) as polled, running(quitter, host) as task:
            await asyncio.wait_for(task, 20)  # run() returns: idle for good, the runtime keeps its API
            assert host.status is Status.ERROR
            assert "Still so after 2 retries: stopped polling" in host.errors()[-1]
            assert "POST .../start" in host.errors()[-1]
            calls = server.calls(token).count("getUpdates")
            before = polled[0]
            await asyncio.sleep(2.5)
            assert polled[0] >= before + 2, "the other client polls in peace"
            assert server.calls(token).count("getUpdates") - calls == polled[0] - before, "none from the engine"
            with pytest.raises(InstanceManagerError) as refused:
                await quitter.send_text("1", "x")
            assert refused.value.code is ErrorCode.INSTANCE_NOT_READY

    asyncio.run(scenario())


def test_two_engines_on_one_token_stop_fighting_and_one_keeps_polling(server, token):
    """The issue's case: two instances given one token both said client_ready while each poll of one
    ended the other's. Now both report the Conflict, and once one has given up the other polls alone."""
    first, second = Host("first"), Host("second")

    async def scenario() -> None:
        async with running(engine(server, token, delays=(0.5, 0.5, 0.5)), first) as one, \
                running(engine(server, token, delays=(0.5, 0.5, 0.5)), second) as other:
            await until(lambda: Status.ERROR in first.statuses + second.statuses, 10, "a Conflict reported")
            done, _ = await asyncio.wait({one, other}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1, "one engine gave up"
            survivor = second if one in done else first
            quitter = first if one in done else second
            assert quitter.status is Status.ERROR and "stopped polling" in quitter.errors()[-1]
            await until(lambda: survivor.status is Status.CLIENT_READY, 10, "the other one ready again")
            server.push_message(token, 77, "one poller now")
            await until(lambda: any(m["body"] == "one poller now" for m in survivor.messages), 10, "the message")
            assert not (one.done() and other.done())

    asyncio.run(scenario())


def test_a_webhook_set_elsewhere_is_a_conflict_too(server: FakeTelegramServer, token: str) -> None:
    host = Host()

    async def scenario() -> None:
        async with running(engine(server, token), host):
            await until(lambda: host.status is Status.CLIENT_READY, 10, "client_ready")
            async with Bot(token, base_url=f"{server.api_root}/bot") as bot:
                await bot.set_webhook("https://elsewhere.example/hook")
                await until(lambda: host.status is Status.ERROR, 5, "error on the webhook's Conflict")
                assert "webhook" in host.errors()[0]
                await bot.delete_webhook()
            await until(lambda: host.status is Status.CLIENT_READY, 10, "back once the webhook is gone")

    asyncio.run(scenario())


def test_a_token_revoked_while_polling_ends_in_failed(server: FakeTelegramServer, token: str) -> None:
    host = Host()

    async def scenario() -> None:
        async with running(engine(server, token), host) as task:
            await until(lambda: host.status is Status.CLIENT_READY, 10, "client_ready")
            server.revoke(token)
            await asyncio.wait_for(task, 10)
            assert (host.status, host.auth) == (Status.ERROR, AuthStatus.FAILED)
            assert "rejected the bot token" in host.errors()[-1]

    asyncio.run(scenario())


def test_handled_updates_are_confirmed_at_shutdown_and_never_delivered_twice(server: FakeTelegramServer,
                                                                             token: str) -> None:
    first, second = Host("first"), Host("second")

    def pending() -> int:
        with urllib.request.urlopen(f"{server.api_root}/_fake/bots", timeout=5) as answer:
            bots = json.loads(answer.read())
        return int(next(b["pending_updates"] for b in bots if b["token"] == token))

    async def scenario() -> None:
        async with running(engine(server, token), first):
            await until(lambda: first.status is Status.CLIENT_READY, 10, "client_ready")
            server.push_message(token, 31, "only once")
            await until(lambda: [m["body"] for m in first.messages] == ["only once"], 10, "the message")
        assert pending() == 0, "confirmed before the engine stopped"
        async with running(engine(server, token), second):
            await until(lambda: second.status is Status.CLIENT_READY, 10, "client_ready")
            server.push_message(token, 31, "after the restart")
            await until(lambda: [m["body"] for m in second.messages] == ["after the restart"], 10, "only the new one")

    asyncio.run(scenario())
