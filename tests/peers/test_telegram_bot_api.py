"""Drive the real python-telegram-bot library against the fake Telegram Bot API server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    MessageHandler,
    filters,
)

from .telegram_bot_api import SAMPLE_PNG, FakeTelegramServer, make_png

_ids = itertools.count(700001)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
def token(server: FakeTelegramServer) -> str:
    # A fresh bot per test keeps tests independent while sharing one server.
    value = f"{next(_ids)}:TEST-{os.urandom(4).hex()}"
    server.add_bot(value)
    return value


def make_bot(server: FakeTelegramServer, token: str) -> Bot:
    root = server.api_root
    return Bot(token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")


def make_app(server: FakeTelegramServer, token: str) -> Application[Any, Any, Any, Any, Any, Any]:
    root = server.api_root
    return ApplicationBuilder().token(token).base_url(f"{root}/bot").base_file_url(f"{root}/file/bot").build()


def http_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_get_me_returns_username(server: FakeTelegramServer) -> None:
    token = f"{next(_ids)}:ABC-def"
    server.add_bot(token, username="shop_helper_bot")

    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            me = await bot.get_me()
            assert me.username == "shop_helper_bot"
            assert me.id == int(token.split(":")[0])
            assert me.is_bot

    asyncio.run(scenario())
    assert "getMe" in server.calls(token)


def test_polling_receives_message_and_confirms_it(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        app = make_app(server, token)
        received: asyncio.Queue[Update] = asyncio.Queue()

        async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await received.put(update)
            assert update.message is not None
            await update.message.reply_text(f"echo: {update.message.text}")

        app.add_handler(MessageHandler(filters.TEXT, on_text))
        await asyncio.wait_for(app.initialize(), 5)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5, poll_interval=0)
        alice = {"id": 1001, "first_name": "Alice", "last_name": "Liddell", "username": "alice"}
        pushed = await asyncio.to_thread(server.push_message, token, 1001, "hi there", alice)
        update = await asyncio.wait_for(received.get(), 5)
        # Let the reply land before stopping.
        for _ in range(50):
            if server.sent(token):
                break
            await asyncio.sleep(0.05)
        await app.updater.stop()
        await app.stop()
        await app.shutdown()

        assert update.update_id == pushed["update_id"]
        assert update.message is not None and update.message.text == "hi there"
        assert update.message.message_id == pushed["message_id"]
        assert update.message.chat.id == 1001 and update.message.chat.type == "private"
        assert update.message.from_user is not None and update.message.from_user.username == "alice"
        assert update.message.from_user.last_name == "Liddell"
        # Stopping confirmed the update: a new poller must not see it again.
        async with make_bot(server, token) as bot:
            assert await bot.get_updates(timeout=0) == ()

    asyncio.run(scenario())
    sent = server.sent(token)
    assert [(s["method"], s["chat_id"], s["text"]) for s in sent] == [("sendMessage", 1001, "echo: hi there")]
    assert sent[0]["message_id"] == 2  # shares the chat's counter with Alice's message 1
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage"} <= set(server.calls(token))


def test_get_updates_offset_and_limit(server: FakeTelegramServer, token: str) -> None:
    first = server.push_message(token, 42, "one")
    second = server.push_message(token, 42, "two", chat_type="group", chat_title="Team")
    assert second["update_id"] == first["update_id"] + 1

    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            assert [u.message.text for u in await bot.get_updates(limit=1) if u.message] == ["one"]
            both = await bot.get_updates()
            assert [u.update_id for u in both] == [first["update_id"], second["update_id"]]
            group = both[1].message
            assert group is not None and group.chat.type == "group" and group.chat.title == "Team"
            # Unconfirmed updates are redelivered; offset confirms everything before it.
            assert len(await bot.get_updates()) == 2
            rest = await bot.get_updates(offset=first["update_id"] + 1)
            assert [u.update_id for u in rest] == [second["update_id"]]
            assert await bot.get_updates(offset=second["update_id"] + 1) == ()
            assert await bot.get_updates() == ()

    asyncio.run(scenario())


def test_long_poll_waits_and_is_released_early(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            started = time.monotonic()
            assert await bot.get_updates(timeout=1) == ()
            assert 0.9 <= time.monotonic() - started < 3  # really waited, no instant empty answer

            pusher = threading.Timer(0.5, server.push_message, args=(token, 7, "wake up"))
            pusher.start()
            started = time.monotonic()
            updates = await bot.get_updates(timeout=10)
            elapsed = time.monotonic() - started
            pusher.join()
            assert [u.message.text for u in updates if u.message] == ["wake up"]
            assert 0.4 <= elapsed < 3

    asyncio.run(scenario())


def test_send_message_appears_in_sent(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            first = await bot.send_message(chat_id=555, text="hello")
            second = await bot.send_message(chat_id=555, text="again", parse_mode="HTML")
            other = await bot.send_message(chat_id=556, text="elsewhere")
            assert first.text == "hello" and first.chat.id == 555
            assert first.from_user is not None and first.from_user.id == bot.id and first.from_user.is_bot
            assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
            assert first.date.timestamp() == pytest.approx(time.time(), abs=5)

    asyncio.run(scenario())
    sent = server.sent(token)
    assert [(s["method"], s["chat_id"], s["message_id"], s["text"]) for s in sent] == [
        ("sendMessage", 555, 1, "hello"), ("sendMessage", 555, 2, "again"), ("sendMessage", 556, 1, "elsewhere"),
    ]
    assert sent[1]["params"]["parse_mode"] == "HTML"


def test_photo_and_document_upload_roundtrip(server: FakeTelegramServer, token: str) -> None:
    picture = make_png(3, 2, (200, 10, 10))
    report = os.urandom(2048)

    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            message = await bot.send_photo(chat_id=9, photo=picture, caption="look")
            size = message.photo[-1]
            assert message.caption == "look" and (size.width, size.height) == (3, 2)
            photo_file = await bot.get_file(size.file_id)
            assert photo_file.file_size == len(picture)
            assert bytes(await photo_file.download_as_bytearray()) == picture

            doc_message = await bot.send_document(chat_id=9, document=report, filename="report.bin")
            assert doc_message.document is not None and doc_message.document.file_name == "report.bin"
            doc_file = await bot.get_file(doc_message.document.file_id)
            assert bytes(await doc_file.download_as_bytearray()) == report

            # Re-sending by file_id reuses the stored file instead of uploading again.
            again = await bot.send_photo(chat_id=9, photo=size.file_id)
            assert again.photo[-1].file_id == size.file_id

    asyncio.run(scenario())
    assert [s["method"] for s in server.sent(token)] == ["sendPhoto", "sendDocument", "sendPhoto"]
    assert server.sent(token)[0]["caption"] == "look" and server.sent(token)[0]["file_id"]


def test_pushed_photo_can_be_downloaded(server: FakeTelegramServer, token: str) -> None:
    pushed = server.push_message(token, 31, "a caption", photo=True)

    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            (update,) = await bot.get_updates()
            assert update.message is not None and update.message.caption == "a caption"
            assert update.message.text is None
            file = await bot.get_file(update.message.photo[-1].file_id)
            assert file.file_id == pushed["file_id"]
            assert bytes(await file.download_as_bytearray()) == SAMPLE_PNG

    asyncio.run(scenario())


def test_unknown_and_malformed_tokens(server: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(server, "424242:not-registered"):
            pass

    with pytest.raises(InvalidToken):
        asyncio.run(scenario())
    status, body = http_json(f"{server.api_root}/bot424242:nope/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = http_json(f"{server.api_root}/botnocolon/getMe")
    assert (status, body["error_code"], body["description"]) == (404, 404, "Not Found")


def test_unknown_method_is_404(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            with pytest.raises(InvalidToken, match="method not found"):
                await bot.delete_my_commands()

    asyncio.run(scenario())
    status, body = http_json(f"{server.api_root}/bot{token}/logOut", {})
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_injected_failures(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            server.fail(token, "sendMessage", 429, retry_after=7)
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(chat_id=1, text="x")
            retry_after = caught.value.retry_after  # int in PTB 22, timedelta later
            seconds = retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after
            assert seconds == 7
            assert (await bot.send_message(chat_id=1, text="x")).text == "x"  # only one 429 was asked for

            server.fail(token, "*", 500, times=2)
            for _ in range(2):
                with pytest.raises(NetworkError, match="Internal Server Error"):
                    await bot.get_me()
            server.fail(token, "getMe", 409)
            with pytest.raises(Conflict):
                await bot.get_me()
            server.fail(token, "getMe", 401)
            with pytest.raises(InvalidToken):
                await bot.get_me()
            assert (await bot.get_me()).username  # injected failures are one-offs, unlike revoke

    asyncio.run(scenario())
    assert server.calls(token) == ["getMe", "sendMessage", "sendMessage"] + ["getMe"] * 5


def test_second_poller_ends_first_with_conflict(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as first, make_bot(server, token) as second:
            older = asyncio.create_task(first.get_updates(timeout=5))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            newer = asyncio.create_task(second.get_updates(timeout=1))
            with pytest.raises(Conflict, match="terminated by other getUpdates request"):
                await older
            assert time.monotonic() - started < 1
            assert await newer == ()

    asyncio.run(scenario())


def test_the_conflict_is_the_bot_apis_own_answer_on_the_wire(server: FakeTelegramServer, token: str) -> None:
    older: dict[str, tuple[int, Any]] = {}
    poll = threading.Thread(target=lambda: older.update(
        answer=http_json(f"{server.api_root}/bot{token}/getUpdates?timeout=5")))
    poll.start()
    time.sleep(0.3)
    assert http_json(f"{server.api_root}/bot{token}/getUpdates?timeout=0") == (200, {"ok": True, "result": []})
    poll.join(timeout=5)
    assert older["answer"] == (409, {
        "ok": False, "error_code": 409,
        "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    })


async def start_receiver(status: int = 200) -> tuple[web.AppRunner, str, asyncio.Queue[tuple[dict[str, str], Any]]]:
    seen: asyncio.Queue[tuple[dict[str, str], Any]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        await seen.put((dict(request.headers), await request.json()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook", seen


def test_webhook_delivers_with_secret(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        runner, url, seen = await start_receiver()
        try:
            async with make_bot(server, token) as bot:
                assert await bot.set_webhook(url, secret_token="s3cret-Token_1")
                pushed = await asyncio.to_thread(server.push_message, token, 77, "via hook")
                headers, body = await asyncio.wait_for(seen.get(), 5)
                assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret-Token_1"
                update = Update.de_json(body, bot)
                assert update.update_id == pushed["update_id"]
                assert update.message is not None and update.message.text == "via hook"
                with pytest.raises(Conflict, match="webhook is active"):
                    await bot.get_updates()
                info = await bot.get_webhook_info()
                assert info.url == url and info.pending_update_count == 0
                assert await bot.delete_webhook()
                assert (await bot.get_webhook_info()).url == ""
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_failing_webhook_keeps_update_and_server_alive(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        runner, url, seen = await start_receiver(status=500)
        try:
            async with make_bot(server, token) as bot:
                await bot.set_webhook(url)
                await asyncio.to_thread(server.push_message, token, 5, "retry me")
                headers, _ = await asyncio.wait_for(seen.get(), 5)
                assert "X-Telegram-Bot-Api-Secret-Token" not in headers
                await asyncio.wait_for(seen.get(), 5)  # retried after the 500
                info = await bot.get_webhook_info()
                assert info.pending_update_count == 1 and "500" in (info.last_error_message or "")
                # Nobody listening at all must not hurt either.
                await bot.set_webhook("http://127.0.0.1:9/nothing-here")
                await asyncio.sleep(0.3)
                assert (await bot.get_me()).username
                await bot.delete_webhook()
                (update,) = await bot.get_updates()
                assert update.message is not None and update.message.text == "retry me"
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_revoke_makes_calls_fail(server: FakeTelegramServer, token: str) -> None:
    async def scenario() -> None:
        async with make_bot(server, token) as bot:
            assert (await bot.get_me()).id == bot.id
            server.revoke(token)
            with pytest.raises(InvalidToken, match="Unauthorized"):
                await bot.get_me()

    asyncio.run(scenario())


def test_control_api_over_http(server: FakeTelegramServer) -> None:
    root, token = server.api_root, f"{next(_ids)}:HTTP-ctl"
    assert http_json(f"{root}/_fake/bots", {"token": token, "username": "ctl_bot"}) == (
        200, {"token": token, "id": int(token.split(":")[0]), "username": "ctl_bot"})
    assert http_json(f"{root}/_fake/bots", {"token": "no-colon"})[0] == 400
    status, pushed = http_json(f"{root}/_fake/bots/{token}/updates", {
        "chat_id": -100, "text": "hi all", "from": {"id": 1001, "first_name": "Alice"},
        "chat_type": "group", "chat_title": "Crew"})
    assert status == 200 and set(pushed) == {"update_id", "message_id"}
    assert http_json(f"{root}/_fake/bots/{token}/fail", {"method": "getMe", "error_code": 418})[0] == 400
    fail_429 = {"method": "getMe", "error_code": 429, "retry_after": 3}
    assert http_json(f"{root}/_fake/bots/{token}/fail", fail_429)[0] == 200
    status, body = http_json(f"{root}/bot{token}/getMe")
    assert (status, body) == (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                                    "parameters": {"retry_after": 3}})
    # Form bodies (what PTB sends) and GET queries both work.
    request = urllib.request.Request(f"{root}/bot{token}/sendMessage", data=b"chat_id=-100&text=hello+crew")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert json.loads(resp.read())["result"]["chat"] == {"id": -100, "type": "group", "title": "Crew"}
    status, body = http_json(f"{root}/bot{token}/getUpdates?offset={pushed['update_id'] + 1}")
    assert (status, body) == (200, {"ok": True, "result": []})
    assert http_json(f"{root}/_fake/bots/{token}/calls") == (200, ["getMe", "sendMessage", "getUpdates"])
    status, sent = http_json(f"{root}/_fake/bots/{token}/sent")
    assert [(s["chat_id"], s["message_id"], s["text"]) for s in sent] == [(-100, 2, "hello crew")]
    assert http_json(f"{root}/_fake/bots/{token}/revoke", {})[0] == 200
    assert http_json(f"{root}/bot{token}/getMe")[0] == 401
    assert http_json(f"{root}/_fake/bots/1:unknown/sent")[0] == 404


def test_runs_from_the_command_line() -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.telegram_bot_api", "--port", "0", "--bot", "31337:CLI-token=cli_bot"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first_line
        root = first_line.rsplit(" ", 1)[1].strip()
        assert "curl" in proc.stdout.readline()
        assert http_json(f"{root}/bot31337:CLI-token/getMe")[1]["result"]["username"] == "cli_bot"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
