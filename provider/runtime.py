"""The runtime around an engine: loads the instance, serves its API, reports status, publishes
incoming messages to SQS and ships its log lines to CloudWatch Logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from chalicelib.adapters.shared import SharedAdapters
from chalicelib.core.events import envelope
from chalicelib.core.types import AuthStatus, Instance, LogLine, MessageEvent, MessageView, Status

from .api import make_app
from .engine import Engine

SOURCE = "provider-runtime"
PUBLISH_RETRY_LIMIT_S = 300.0


class RuntimeHost:
    """EngineHost: what an engine reports goes to DynamoDB, SQS and the logs."""

    def __init__(self, instance: Instance, container: SharedAdapters) -> None:
        self.instance = instance
        self._c = container
        self._log = container.instance_log
        self._pending: list[LogLine] = []
        self._publish_lock = asyncio.Lock()  # one publish at a time keeps each group's order
        self.state: dict[str, Any] = {
            "status": instance.status.value,
            "auth_status": instance.auth_status.value,
            "account": instance.account,
        }
        for secret in [instance.api_key.value, *instance.secrets.values(),
                       *(instance.webhook.headers.values() if instance.webhook else ())]:
            self._log.redact.add(secret)

    async def set_state(
        self, status: Status | None = None, auth_status: AuthStatus | None = None, account: str | None = None
    ) -> None:
        before = dict(self.state)
        for name, value in (("status", status), ("auth_status", auth_status)):
            if value is not None:
                self.state[name] = value.value
        if account is not None:
            self.state["account"] = account or None
        await asyncio.to_thread(
            self._c.repository.report, self.instance.id, status=status, auth_status=auth_status, account=account
        )
        if self.state != before:
            await self._publish("instance.status", {**self._about(), "event": "instance.status", "data": dict(self.state)},
                                group="status")

    async def set_qr(self, qr: str | None) -> None:
        await asyncio.to_thread(self._c.repository.set_qr, self.instance.id, qr)
        if qr:
            await self._publish("qr", {**self._about(), "event": "qr", "data": {"qr": qr}}, group="status")

    async def emit_message(self, message: MessageView) -> None:
        payload = MessageEvent(instance_id=self.instance.id, provider=self.instance.provider.value, message=message)
        await self._publish("message", dict(payload), group=message["chatId"])

    async def emit_ack(self, message_id: str, chat_id: str, status: str) -> None:
        data = {"id": message_id, "chatId": chat_id, "status": status}
        await self._publish("message.ack", {**self._about(), "event": "message.ack", "data": data}, group=chat_id)

    def _about(self) -> dict[str, Any]:
        return {"instance_id": self.instance.id, "provider": self.instance.provider.value}

    async def _publish(self, kind: str, payload: dict[str, Any], group: str) -> None:
        """To SQS, in order per group (a chat, or the instance's status); held and retried, not dropped."""
        event = envelope(kind, self.instance.id, payload, group=f"{self.instance.id}:{group}")
        delay, waited = 0.5, 0.0
        async with self._publish_lock:
            while True:
                try:
                    await asyncio.to_thread(self._c.publisher.publish, event)
                    return
                except Exception as exc:  # SQS unreachable
                    if waited >= PUBLISH_RETRY_LIMIT_S:
                        self.log("error", f"Could not publish {kind} event {event['event_id']} to SQS: {exc}")
                        return
                    self.log("warn", f"Publishing {kind} event {event['event_id']} failed ({exc}); retrying")
                    await asyncio.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, 30.0)

    def log(self, level: str, message: str, source: str | None = None) -> None:
        line = self._log.line(level, message, source or SOURCE)
        print(json.dumps(line), flush=True)
        self._pending.append(line)

    async def ship_logs_forever(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush_logs()

    async def flush_logs(self) -> None:
        lines, self._pending = self._pending, []
        if not lines:
            return
        try:
            await asyncio.to_thread(self._log.write_many, self.instance.id, lines)
        except Exception as exc:  # keep them for the next round
            self._pending[:0] = lines
            print(json.dumps({"level": "error", "message": f"log shipping failed: {exc}"}), file=sys.stderr)

    def status_view(self) -> dict[str, Any]:
        return {"instance_id": self.instance.id, "provider": self.instance.provider.value, **self.state}


async def run(
    instance_id: str,
    container: SharedAdapters,
    make_engine: Callable[[Instance], Engine],
    bind_host: str = "0.0.0.0",
    advertise_host: str | None = None,
) -> int:
    instance = await asyncio.to_thread(container.repository.get, instance_id)
    if instance is None:
        print(json.dumps({"level": "error", "message": f"instance {instance_id} does not exist"}), file=sys.stderr)
        return 0  # deleted: nothing to run, and nothing to restart
    host = RuntimeHost(instance, container)
    engine = make_engine(instance)
    usage: set[asyncio.Future[None]] = set()

    def count_use() -> None:
        future = asyncio.ensure_future(asyncio.to_thread(container.repository.count_key_use, instance.id))
        usage.add(future)
        future.add_done_callback(usage.discard)

    api = make_app(api_key=instance.api_key.value, engine=engine,
                   status=host.status_view, count_use=count_use)
    runner = web.AppRunner(api, access_log=None)
    await runner.setup()
    port = instance.ports["api"]
    await web.TCPSite(runner, bind_host, port, reuse_address=True).start()
    await asyncio.to_thread(container.repository.report, instance.id, host=advertise_host or bind_host)
    host.log("info", f"Provider runtime started ({engine.name} engine), instance API on port {port}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    shipper = asyncio.create_task(host.ship_logs_forever())
    engine_task = asyncio.create_task(engine.run(host))
    crashed: list[BaseException] = []

    def engine_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            crashed.append(error)
            host.log("error", f"The {engine.name} engine crashed: {type(error).__name__}: {error}; the task restarts")
            stop.set()

    engine_task.add_done_callback(engine_ended)
    watch_parent = asyncio.create_task(_exit_with_parent(stop))
    await stop.wait()
    host.log("info", "Provider runtime stopping")
    engine_task.cancel()
    await asyncio.gather(engine_task, return_exceptions=True)
    await runner.cleanup()
    if usage:
        await asyncio.gather(*usage, return_exceptions=True)
    shipper.cancel()
    watch_parent.cancel()
    if crashed:
        await host.set_state(status=Status.ERROR)
    await host.flush_logs()
    return 1 if crashed else 0


async def _exit_with_parent(stop: asyncio.Event) -> None:
    """Locally the supervisor starts us; if it dies without stopping us, we stop too."""
    parent = os.environ.get("EXIT_WITH_PARENT")
    if not parent:
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(1.0)
    stop.set()
