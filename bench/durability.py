"""Figure 10: what durable writes cost the local stack (stack/moto_state.py, LOCAL_DURABLE_WRITES).

The same requests against two fresh stacks running side by side, one with durable writes (the default)
and one with LOCAL_DURABLE_WRITES=false (a snapshot every 2 s only), alternating request by request:

1. `PATCH /api/v1/instances/{id}/webhook`, one after another (its writes: the webhook and the log-line
   counter, two DynamoDB UpdateItems, and the log line, a CloudWatch Logs PutLogEvents; and the reads);
2. `PutItem` straight to the stack's moto with boto3 (one journaled write and nothing else), first on
   an almost empty state, then after CloudWatch Logs has been filled with a few MiB of log lines: a
   snapshot's cost grows with the state, a journal record's does not;
3. `POST /api/v1/instances` (Telegram, each for a company of its own; each also starts a provider).

The clock runs from just before the request to the end of its answer's body, in this process. Ports:
3860/4860/4861 with instances on 9700-9724, and 3870/4870/4871 with 9725-9749."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import SectionResult, median, percentile, say, table
from .local_stack import Ports, _tail
from .stackctl import StackProcess

KEY = "durability"
TITLE = "Durable writes on the local stack (LOCAL_DURABLE_WRITES)"
DURABLE_PORTS = Ports(3860, 4860, 4861, (9700, 9724))
PLAIN_PORTS = Ports(3870, 4870, 4871, (9725, 9749))
FILL_MIB = 4


@dataclass
class Subject:
    """One of the two stacks, and what was measured against it."""

    label: str
    ports: Ports
    stack: StackProcess
    timings: dict[str, list[float]] = field(default_factory=dict)  # seconds per request
    instance_id: str = ""
    ddb: Any = None
    state_bytes: int = 0
    snapshot_ms: float = 0.0  # one whole snapshot of that state: pickle, write, fsync
    stop_text: str = ""

    def timed(self, name: str, call: Callable[..., Any], *args: Any) -> None:
        t0 = time.perf_counter()
        call(*args)
        self.timings.setdefault(name, []).append(time.perf_counter() - t0)

    def patch(self, i: int) -> None:
        status, answer = self.stack.api.call("PATCH", f"/api/v1/instances/{self.instance_id}/webhook",
                                             {"url": f"http://127.0.0.1:9/hooks/{i}"})
        if status != 200:
            raise RuntimeError(f"PATCH answered {status}: {answer}")

    def put(self, i: int) -> None:
        self.ddb.put_item(TableName="bench-durability", Item={"id": {"S": f"item-{i}"}, "body": {"S": "y" * 200}})


def _moto_client(ports: Ports, service: str) -> Any:
    import boto3

    return boto3.session.Session(region_name="us-east-1").client(
        service, endpoint_url=f"http://127.0.0.1:{ports.moto}", aws_access_key_id="local",
        aws_secret_access_key="local")


def _fill_logs(ports: Ports, mib: int) -> None:
    logs = _moto_client(ports, "logs")
    group = "/bench/durability"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="fill")
    line = "x" * 1000
    now = int(time.time() * 1000)
    for batch in range(mib * 2):
        logs.put_log_events(logGroupName=group, logStreamName="fill",
                            logEvents=[{"timestamp": now + batch, "message": line} for _ in range(512)])


def _prepare(subject: Subject, telegram: Any, token: str) -> None:
    failure = subject.stack.start()
    if failure:
        raise RuntimeError(failure)
    telegram.add_bot(token)
    created = subject.stack.create({"company_id": "bench-durability", "provider": "telegram",
                                    "config": {"bot_token": token}})
    subject.instance_id = str(created["instance_id"])
    subject.stack.wait_status(subject.instance_id, "client_ready", 60)
    subject.ddb = _moto_client(subject.ports, "dynamodb")
    subject.ddb.create_table(TableName="bench-durability", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
    for i in range(10):  # warm-up: first calls pay imports and connections
        subject.patch(i)
        subject.put(i)


def _alternating(subjects: list[Subject], count: int, step: Callable[[Subject, int], None]) -> None:
    """Each request to one stack, then the same to the other, the order swapped every round: both see the
    same moments of a noisy machine."""
    for i in range(count):
        for subject in subjects if i % 2 == 0 else subjects[::-1]:
            step(subject, i)


def _measure(patches: int, puts: int, creates: int) -> tuple[list[Subject], list[str]]:
    from tests.peers.telegram_bot_api import FakeTelegramServer

    telegram = FakeTelegramServer()
    telegram.start()
    subjects = [
        Subject("durable", DURABLE_PORTS, StackProcess(DURABLE_PORTS, {"TELEGRAM_API_ROOT": telegram.api_root},
                                                       "durability-on")),
        Subject("off", PLAIN_PORTS, StackProcess(PLAIN_PORTS, {"TELEGRAM_API_ROOT": telegram.api_root,
                                                               "LOCAL_DURABLE_WRITES": "false"}, "durability-off")),
    ]
    problems: list[str] = []
    try:
        for n, subject in enumerate(subjects):
            _prepare(subject, telegram, f"30000{n + 1}:AAHbenchDurabilityWebhookToken_00000{n}")
        _alternating(subjects, patches, lambda s, i: s.timed("PATCH webhook (API)", s.patch, i))
        _alternating(subjects, puts, lambda s, i: s.timed("PutItem to moto, small state", s.put, i))
        for subject in subjects:
            _fill_logs(subject.ports, FILL_MIB)
        time.sleep(2.5)  # the next periodic snapshot holds the filled state
        _alternating(subjects, puts, lambda s, i: s.timed(f"PutItem to moto, after {FILL_MIB} MiB of log lines",
                                                          s.put, i))
        for subject in subjects:
            subject.state_bytes, subject.snapshot_ms = _snapshot_cost(subject.stack.data_dir / "moto-state.pickle")

        def create(subject: Subject, i: int) -> None:
            bot = f"3{subjects.index(subject) + 1}{i:04d}:AAHbenchDurabilityCreateToken_{i:06d}"
            telegram.add_bot(bot)
            body = {"company_id": f"bench-durability-{i}", "provider": "telegram", "config": {"bot_token": bot}}
            subject.timed("POST instance (API; starts a provider)", subject.stack.create, body)

        _alternating(subjects, creates, create)
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}; the stacks' logs end:\n"
                        + "\n".join(_tail(s.stack.log_path) for s in subjects))
    finally:
        for subject in subjects:
            subject.stop_text = subject.stack.stop(creates + 1).text()
            subject.stack.cleanup()
        telegram.stop()
    return subjects, problems


def _snapshot_cost(path: Path, rounds: int = 5) -> tuple[int, float]:
    """What a synchronous snapshot per write would cost on this state: pickle it all, write it, fsync (ms)."""
    import pickle

    from stack.durability import replace_file

    raw = path.read_bytes()
    state = pickle.loads(raw)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        replace_file(path.with_name("bench-snapshot.pickle"), pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        times.append(time.perf_counter() - t0)
    return len(raw), median(times) * 1000


def _journal_alone(records: int = 500) -> tuple[float, float]:
    """The disk's part: one journal record of a PutItem's size appended and fsynced, alone, in ms; and the
    same without the fsync."""
    from stack.durability import Journal

    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(Path(directory), "bench", 0)
        record = {"body": os.urandom(600), "headers": {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}}
        t0 = time.perf_counter()
        for _ in range(records):
            journal.sync(journal.append(record))
        synced = (time.perf_counter() - t0) / records * 1000
        t0 = time.perf_counter()
        for _ in range(records):
            journal.append(record)
        appended = (time.perf_counter() - t0) / records * 1000
        journal.close()
    return synced, appended


def run(patches: int = 200, puts: int = 300, creates: int = 10) -> list[SectionResult]:
    say(f"== {TITLE}: {patches} PATCHes, {puts} PutItems twice, {creates} creates, against each of two stacks "
        f"({DURABLE_PORTS.describe()}; {PLAIN_PORTS.describe()}) ==")
    (durable, plain), problems = _measure(patches, puts, creates)
    synced, appended = _journal_alone()
    rows = []
    for name, times in durable.timings.items():
        other = plain.timings.get(name, [])
        if not times or not other:
            continue
        rows.append([name, len(times), f"{median(times) * 1000:.1f}", f"{percentile(times, 0.9) * 1000:.1f}",
                     f"{median(other) * 1000:.1f}", f"{percentile(other, 0.9) * 1000:.1f}",
                     f"{median(times) / median(other):.2f}", f"{(median(times) - median(other)) * 1000:+.1f}"])
        say(f"  {name}: durable {median(times) * 1000:.1f} ms, off {median(other) * 1000:.1f} ms (median)")
    say(f"  journal record appended and fsynced: {synced:.2f} ms; appended only: {appended:.3f} ms")
    reading = []
    for name, what in (("PutItem to moto, small state", "one journaled write (a PutItem)"),
                       ("PATCH webhook (API)", "a PATCH, with its three writes,")):
        on, off = durable.timings.get(name, []), plain.timings.get(name, [])
        if on and off:
            reading.append(f"{what} costs {(median(on) - median(off)) * 1000:.1f} ms more at the median "
                           f"({median(on) / median(off):.2f}x)")
    create_row = "POST instance (API; starts a provider)"
    on, off = durable.timings.get(create_row, []), plain.timings.get(create_row, [])
    noisy = bool(on and off) and percentile(on, 0.9) < percentile(off, 0.9)
    markdown = "\n".join([
        "Two stacks at once (`python -m stack` as subprocesses, temporary DATA_DIRs, ADMIN_API_KEY set, "
        "TELEGRAM_API_ROOT at an in-process `FakeTelegramServer`): one with durable writes, the default ("
        f"{DURABLE_PORTS.describe()}), one with `LOCAL_DURABLE_WRITES=false` ({PLAIN_PORTS.describe()}). "
        "Each request goes to one stack and then the same to the other, the order swapped every round, one "
        "request at a time, so that both see the same moments of a noisy machine; the clock runs in the "
        "benchmark's process from before the request to the end of its answer. Durable: a DynamoDB or "
        "CloudWatch Logs write moto answers is appended to the journal and fsynced (concurrent writers share "
        "an fsync) before the answer leaves; an SQS write rewrites `moto-sqs.pickle`. Off: nothing is written "
        "until the next snapshot, every 2 s (with durable writes a snapshot comes every 10 s and only starts the "
        "journal over). A PATCH makes three writes (the webhook and the log-line counter, "
        "two DynamoDB `UpdateItem`; the log line, a CloudWatch Logs `PutLogEvents`); a PutItem straight to moto "
        "with boto3 is one; a create makes about ten and starts a provider. Medians and nearest-rank p90, ms.",
        "",
        table(["Request", "N", "durable p50", "durable p90", "off p50", "off p90", "ratio (p50)", "cost (p50)"], rows),
        "",
        ("Reading: " + "; ".join(reading) + "." if reading else "")
        + (" The creates are the noisiest row (few of them, and each starts a provider that writes while the "
           "next create runs): their p90s cross, so their difference is mostly noise." if noisy else ""),
        "",
        f"The disk's part alone (stack/durability.py `Journal`, in a temporary directory on the same disk): a "
        f"PutItem-sized record appended and fsynced {synced:.2f} ms, appended without the fsync {appended:.3f} ms "
        "(what survives a `kill -9` is already in the kernel after the append; the fsync is for a crash of the "
        f"machine). The state after the log lines was {durable.state_bytes / 2**20:.1f} MiB pickled: a journal "
        "record costs the same on it as on an empty one, where a synchronous snapshot per write (the other way "
        f"to make writes durable) would pickle, write and fsync all of it each time: {durable.snapshot_ms:.0f} ms "
        "per write here, and growing with every log line and delivery kept.",
        "",
        f"Teardown: durable: {durable.stop_text}; off: {plain.stop_text}.",
    ])
    return [SectionResult(KEY, TITLE, markdown, problems, skipped=not rows)]
