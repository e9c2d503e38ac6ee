"""Figures 8 and 9: webhook delivery.

8. the fan-out handler's throughput, in-process against moto as tests/test_fanout.py drives it: events
   published to the FIFO queue, received 10 at a time and handed to `app.deliver_webhooks` (Lambda's SQS
   event), delivered to a receiver in its own process; next to a plain `requests.Session` POST loop with
   the same bytes, same run, same concurrency (1). Plus the AWS calls per delivered event.
9. event-to-delivery latency on the local stack at a steady rate: a Telegram instance against the fake
   Bot API server, `push_message` at 10/s for 30 s, until each POST reaches a receiver in this process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .aws_calls import CallCounter
from .common import PYTHON, ROOT, SectionResult, say, table
from .flow import LATENCY_HEADERS, Paced, Spend, latency_rows, paced_run, stack_roles, trend_line
from .local_stack import Ports, _tail
from .peers import TimedReceiver
from .stackctl import WIDE_PORTS, StackProcess

if TYPE_CHECKING:
    from chalicelib.core.urls import HttpUrl
    from chalicelib.outbound import PostResult

KEY_FANOUT = "webhook-fanout"
KEY_LATENCY = "webhook-latency"
TITLE_FANOUT = "Webhook fan-out throughput and AWS calls per event (in-process, moto)"
TITLE_LATENCY = "Event to webhook delivery (Telegram, local stack)"

BATCH = 10
CHATS = 50
TOKEN = "7100001:AAHbenchWebhookLatencyAAAAAAAAAAAA"
RATE = 10.0
SECONDS = 30


# ---- 8: the fan-out, in-process ----------------------------------------------------------------------
@dataclass
class Loop:
    label: str
    posts: int = 0
    seconds: float = 0.0

    def rate(self) -> float:
        return self.posts / self.seconds if self.seconds else 0.0


@dataclass
class Fanout:
    events: int
    delivered: int = 0
    failures: int = 0
    batches: int = 0
    handler_s: float = 0.0
    post_s: float = 0.0
    aws_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    warmup_calls: Counter[str] = field(default_factory=Counter)
    warmup_s: float = 0.0
    plain: list[Loop] = field(default_factory=list)
    body_bytes: int = 0
    header_names: list[str] = field(default_factory=list)
    receiver_posts: int = 0
    expected_posts: int = 0
    problems: list[str] = field(default_factory=list)

    def rate(self) -> float:
        return self.delivered / self.handler_s if self.handler_s else 0.0


@contextlib.contextmanager
def _receiver_process() -> Any:
    process = subprocess.Popen([PYTHON, "-m", "bench.peers", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"the receiver did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(10)


def _receiver_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
        return int(answer.read())


def _plain_loop(label: str, url: str, body: bytes, headers: dict[str, str], count: int) -> Loop:
    import requests

    loop = Loop(label)
    with requests.Session() as session:
        started = time.perf_counter()
        for _ in range(count):
            answer = session.post(url, data=body, headers=headers, timeout=10, allow_redirects=False, verify=True)
            answer.raise_for_status()
        loop.seconds = time.perf_counter() - started
    loop.posts = count
    return loop


def _fanout(events: int) -> Fanout:
    counter = CallCounter.install()  # before any botocore session exists
    from tests.aws import moto_environment

    result = Fanout(events)
    with _receiver_process() as port:
        url = f"http://127.0.0.1:{port}/hook"
        captured: list[tuple[bytes, dict[str, str]]] = []
        with contextlib.contextmanager(moto_environment)():
            os.environ["WEBHOOK_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
            os.environ["WEBHOOK_RATE_PER_SECOND"] = "1000000"  # measure the handler, not the limit (still called)
            from chalicelib import wiring
            from chalicelib.core.events import envelope
            from chalicelib.core.types import iso, utc_now

            wiring.reset()
            c = wiring.container()
            instance = c.instances.create({
                "company_id": "bench-fanout", "provider": "telegram", "config": {"bot_token": "123456:AAHbenchFanout"},
                "api_webhook_schema": {"url": url, "headers": {"Authorization": "Bearer bench-receiver"}},
            })
            import app

            for n in range(events + BATCH):  # the first batch warms the handler up
                chat = str(1000 + n % CHATS)
                payload = {"instance_id": instance.id, "provider": "telegram",
                           "message": {"id": f"{chat}:{n}", "body": f"benchmark message {n}", "fromMe": False,
                                       "timestamp": iso(utc_now()), "contact": "Alice (@alice)", "type": "text",
                                       "chatId": chat}}
                c.publisher.publish(envelope("message", instance.id, payload, group=f"{instance.id}:{chat}"))
            sqs, queue_url = c.client("sqs"), c.publisher.queue_url
            deliverer = c.webhooks
            post = deliverer.post

            def timed_post(url: HttpUrl, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
                started = time.perf_counter()
                try:
                    return post(url, body, headers, timeout)
                finally:
                    result.post_s += time.perf_counter() - started
                    if not captured:
                        captured.append((body, dict(headers)))

            deliverer.post = timed_post

            def batch() -> list[dict[str, Any]]:
                answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=BATCH, AttributeNames=["All"])
                return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": m.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
                        for m in answer.get("Messages", [])]

            def handle(records: list[dict[str, Any]], warm_up: bool) -> None:
                post_before = result.post_s
                with counter.window() as window:
                    started = time.perf_counter()
                    answer = app.deliver_webhooks({"Records": records}, None)
                    spent = time.perf_counter() - started
                failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
                if warm_up:
                    result.warmup_s, result.warmup_calls = spent, window.calls
                    result.post_s = post_before
                else:
                    result.handler_s += spent
                    result.aws_s += window.seconds
                    result.calls.update(window.calls)
                    result.batches += 1
                    result.delivered += len(records) - len(failed)
                    result.failures += len(failed)
                done = [r for r in records if r["messageId"] not in failed]
                if done:  # what Lambda's event source mapping does with the rest: outside the window
                    sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                        {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)])

            handle(batch(), warm_up=True)
            if not captured:
                result.problems.append("the warm-up batch posted nothing")
                return result
            body, headers = captured[0]
            result.body_bytes, result.header_names = len(body), sorted(headers)
            result.plain.append(_plain_loop("plain POST loop, before the handler (moto's mock active)", url, body,
                                            headers, events))
            empty = 0
            while result.delivered + result.failures < events and empty < 3:
                records = batch()
                if not records:
                    empty += 1
                    continue
                handle(records, warm_up=False)
            result.plain.append(_plain_loop("plain POST loop, after the handler (moto's mock active)", url, body,
                                            headers, events))
            wiring.reset()
        result.plain.append(_plain_loop("plain POST loop, moto's mock off", url, body, headers, events))
        result.receiver_posts = _receiver_count(port)
        result.expected_posts = len(captured) and (BATCH + result.delivered + sum(p.posts for p in result.plain))
    return result


def _fanout_section(f: Fanout) -> SectionResult:
    delivered = max(1, f.delivered)
    plain_mocked = [p for p in f.plain if "active" in p.label]
    plain_rate = sum(p.posts for p in plain_mocked) / sum(p.seconds for p in plain_mocked) if plain_mocked else 0.0
    rows: list[list[object]] = [
        [f"`app.deliver_webhooks`, {f.batches} batches of {BATCH}", f.delivered, f"{f.handler_s:.2f}",
         f"{f.rate():.0f}", f"{f.handler_s / delivered * 1000:.2f}"],
        *[[p.label, p.posts, f"{p.seconds:.2f}", f"{p.rate():.0f}", f"{p.seconds / max(1, p.posts) * 1000:.2f}"]
          for p in f.plain],
    ]
    other = f.handler_s - f.post_s - f.aws_s
    total_calls = sum(f.calls.values())
    call_rows = [[name, count, f"{count / delivered:.2f}"] for name, count in f.calls.most_common()]
    call_rows.append(["all", total_calls, f"{total_calls / delivered:.2f}"])
    lines = [
        f"In-process, as tests/test_fanout.py drives it: moto (`tests/aws.py` `moto_environment`), one Telegram "
        f"instance whose webhook (with one custom header) points at a receiver in its own process "
        f"(`python -m bench.peers`: HTTP/1.1 keep-alive, answers 200 at once). {f.events} `message` events over "
        f"{CHATS} chats published to the FIFO queue, received {BATCH} at a time (`ReceiveMessage`, not timed) and "
        "handed to `app.deliver_webhooks` as Lambda's SQS event; the delivered ones are deleted afterwards as the "
        "event source mapping would (not timed, not counted). One batch before the measurement warms the handler "
        "up. WEBHOOK_RATE_PER_SECOND is raised so that the limit never defers an event (its `UpdateItem` still "
        "runs for each one). The plain loop POSTs the very bytes and headers the handler sent "
        f"({f.body_bytes} bytes; headers {', '.join(f.header_names)}) with one `requests.Session`, the same "
        "bytes the handler's pinned client (chalicelib/outbound.py) sends, one at a time, the same number of times, before "
        "and after the handler, and once more with moto's mock off (under `mock_aws`, every `requests` call also "
        "goes through moto's `responses` patch).",
        "",
        table(["Loop", "POSTs", "Seconds", "Per second", "ms each"], rows),
        "",
        f"**Ratio: the handler delivers {f.rate() / plain_rate:.2f}x as many events a second as the plain loop "
        f"posts** ({f.rate():.0f}/s against {plain_rate:.0f}/s, the two plain runs under the mock together; "
        f"{plain_rate / max(f.rate(), 1e-9):.1f}x slower).",
        "",
        f"Where the handler's {f.handler_s:.2f} s went: {f.post_s:.2f} s in the POSTs "
        f"({f.post_s / max(f.handler_s, 1e-9) * 100:.0f} %), {f.aws_s:.2f} s inside botocore calls answered by "
        f"in-process moto ({f.aws_s / max(f.handler_s, 1e-9) * 100:.0f} %), {other:.2f} s in our own code around them "
        f"({other / max(f.handler_s, 1e-9) * 100:.0f} %: parsing, signing, PynamoDB, the delivery log's zlib). "
        f"In-process moto answered each call in {f.aws_s / max(1, total_calls) * 1000:.1f} ms on average. "
        "DynamoDB answers in single-digit milliseconds over the network, so in AWS too the handler's pace is set "
        f"by its {total_calls / delivered:.1f} sequential AWS calls per event, not by the POST: one invocation "
        "delivers one event at a time, and one FIFO message group (one chat) has one batch in flight.",
        "",
        f"AWS calls made by the handler, counted with the `before-call` hook of section 1, per delivered event "
        f"({f.delivered} delivered, {f.failures} handed back):",
        "",
        table(["Call", "Count", "Per event"], call_rows),
        "",
        "Which they are: `DynamoDB.GetItem` is the instance (webhook URL, sealed headers, signing secret), once per "
        "batch and instance (`WebhookDeliverer._instance`, cached for one `handle_batch` only); the two "
        "`DynamoDB.UpdateItem` per event are the rate counter (`DynamoRateLimiter.acquire`: one per event, "
        "conditional on the second's count) and the delivery log (`DynamoDeliveryLog.record`, one item per event, "
        "chalicelib/adapters/deliveries.py). Nothing is published or moved on success; deleting the messages is "
        "the event source mapping's job.",
        "",
        f"Minimum with this data model (a log item per event, a counter per instance and second): for a batch of "
        f"{BATCH} events of one instance, one `GetItem`, one `UpdateItem` on the counter adding the batch's count "
        f"(with `ReturnValues=UPDATED_NEW`, to learn how many fit), and one `BatchWriteItem` of {BATCH} puts for "
        f"the log (a first attempt has no earlier entry to update; retries and user retries would keep the "
        f"conditional update): {3 / BATCH:.1f} calls per event, against {total_calls / delivered:.2f} measured. "
        f"Keeping one `UpdateItem` per log entry, as now, the floor is {1 + 2 / BATCH:.1f}.",
        "",
        f"First (warm-up) batch, for the cold path: {f.warmup_s * 1000:.0f} ms, calls "
        + (", ".join(f"{n} x{c}" for n, c in f.warmup_calls.most_common()) or "none") + ".",
        "",
        f"Check: the receiver counted {f.receiver_posts} POSTs; expected {f.expected_posts} (warm-up, handler and "
        "plain loops).",
    ]
    lines += [f"- PROBLEM: {p}" for p in f.problems]
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_FANOUT, TITLE_FANOUT, markdown, list(f.problems))


# ---- 9: latency on the local stack -------------------------------------------------------------------
@dataclass
class TgRun:
    ports: Ports
    problems: list[str] = field(default_factory=list)
    stack_up_s: float = 0.0
    ready_s: float | None = None
    paced: Paced | None = None
    spend: Spend | None = None
    stop_text: str = ""


def _telegram(ports: Ports, rate: float, seconds: int) -> TgRun:
    from tests.peers.telegram_bot_api import FakeTelegramServer

    run = TgRun(ports)
    telegram = FakeTelegramServer([TOKEN])
    telegram.start()
    receiver = TimedReceiver().start()
    stack = StackProcess(ports, {"TELEGRAM_API_ROOT": telegram.api_root}, "webhooks", probe=True)

    def send(text: str) -> None:
        telegram.push_message(TOKEN, 1001, text, {"id": 1001, "first_name": "Alice", "username": "alice"})

    try:
        failure = stack.start()
        if failure:
            run.problems.append(failure)
            return run
        run.stack_up_s = stack.up_s
        created = stack.create({"company_id": "bench-hooks", "provider": "telegram", "type_instance": ["api"],
                                "config": {"bot_token": TOKEN}, "api_webhook_schema": {"url": receiver.url}})
        instance_id = str(created["instance_id"])
        run.ready_s = stack.wait_status(instance_id, "client_ready", 60)
        pid = stack.provider_pid(instance_id)
        if run.ready_s is None or pid is None:
            run.problems.append(f"the instance did not become client_ready (status {stack.status(instance_id)})")
            return run
        time.sleep(2.0)
        run.spend = Spend({"provider (Telegram engine)": pid, **stack_roles(stack)})
        run.spend.start(stack)
        run.paced, _ = paced_run(send, receiver, "telegram", rate, int(rate * seconds), 0, 60.0)
        run.spend.stop(stack)
        say(f"  {len(run.paced.arrivals)}/{run.paced.count} webhooks, the last {run.paced.drain_span():.1f} s after the "
            "first push")
    except Exception as exc:
        run.problems.append(f"{type(exc).__name__}: {exc}; the stack's log ends:\n{_tail(stack.log_path)}")
    finally:
        run.stop_text = stack.stop().text()
        stack.cleanup()
        receiver.close()
        telegram.stop()
    return run


def _latency_section(r: TgRun, rate: float, seconds: int) -> SectionResult:
    lines = [
        f"`python -m stack` as a subprocess ({r.ports.describe()}, a temporary DATA_DIR, ADMIN_API_KEY set), started "
        "through `python -m bench.stack_probe` (which only counts the AWS requests its moto answers), "
        "TELEGRAM_API_ROOT at an in-process `FakeTelegramServer`. One Telegram instance, its webhook on a "
        "receiver thread in the benchmark's process (bench/peers.py)"
        + (f"; client_ready {r.ready_s:.1f} s after the create" if r.ready_s is not None else "")
        + f". A fake user writes to the bot {rate:.0f} times a second for {seconds} s (`push_message`, one chat, so "
        "one FIFO message group), one push after another on schedule. The clock starts just before the push and "
        "stops when the receiver has read the webhook's body; the split point is the event id's clock "
        "(`webhook-id: evt_<ms>_…`, set by the provider when it built the event). Before it: the long poll "
        "answering, python-telegram-bot, the engine. After it: `SendMessage`, the SQS loop's receive (short "
        "receives every 50 ms inside moto, stack/moto_state.py), `WebhookDeliverer.handle_batch` and the POST. "
        f"Percentiles are nearest-rank; ms. The stack came up in {r.stack_up_s:.1f} s; teardown: "
        f"{r.stop_text or 'not reached'}.",
        "",
    ]
    p = r.paced
    if p is not None and p.arrivals:
        lines += [table(LATENCY_HEADERS, latency_rows(p, "fake Bot API → long poll → provider", "push_message returned")),
                  "", trend_line(p)]
        delivered = len(p.arrivals)
        if r.spend is not None and r.spend.cpu:
            lines += ["", "CPU time each process used during the run (utime + stime), per message:", "",
                      r.spend.cpu_table(delivered)]
        if r.spend is not None and r.spend.requests:
            lines += ["", "AWS requests the stack's moto answered during the run, per message (the idle ones, the "
                      "reconcile loop's `Query` every second and the SQS loop's receives, included):", "",
                      r.spend.requests_table(delivered)]
            receives = r.spend.requests.get("SQS.ReceiveMessage", 0)
            gets = r.spend.requests.get("DynamoDB.GetItem", 0)
            if receives and delivered / receives < 2:
                lines += ["", f"At {rate:.0f}/s the SQS loop found {delivered / receives:.1f} message per receive on "
                          f"average, so the instance `GetItem`, cached for one batch only (`WebhookDeliverer._instance`, "
                          f"chalicelib/webhooks.py), was paid {gets / delivered:.2f} times per event, and so was the "
                          "batch's `DeleteMessageBatch`: at a steady low rate each event costs "
                          f"{(gets + r.spend.requests.get('DynamoDB.UpdateItem', 0)) / delivered:.1f} DynamoDB calls, "
                          "against 2 + 1/10 for a full batch of 10 (block 8)."]
            loop = next((s for role, s in r.spend.cpu.items() if role.startswith("SQS loop")), None)
            if loop is not None:
                lines += ["", f"The fan-out process itself (what Lambda would bill) used {loop / delivered * 1000:.1f} ms "
                          "of CPU per event: botocore and PynamoDB building and parsing requests, signing, the POST."]
    else:
        lines.append("No latency measured.")
    lines += [f"- PROBLEM: {problem}" for problem in r.problems]
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_LATENCY, TITLE_LATENCY, markdown, list(r.problems))


def run(port_offset: int = 0, events: int = 500) -> list[SectionResult]:
    say(f"== {TITLE_FANOUT}: {events} events ==")
    fanout = _fanout(events)
    first = _fanout_section(fanout)
    first.skipped = fanout.delivered == 0
    ports = WIDE_PORTS.shifted(port_offset)
    say(f"== {TITLE_LATENCY}: {RATE:.0f}/s for {SECONDS} s ({ports.describe()}) ==")
    telegram = _telegram(ports, RATE, SECONDS)
    second = _latency_section(telegram, RATE, SECONDS)
    second.skipped = telegram.paced is None or not telegram.paced.arrivals
    return [first, second]
