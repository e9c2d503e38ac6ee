"""Messages through a local stack to a webhook receiver: sending at a steady rate, matching what
arrives, and the figures both stack sections report (latency percentiles, CPU per message, AWS
requests per message)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .common import median, percentile, table
from .peers import Arrival, TimedReceiver
from .stackctl import StackProcess, children, cpu_seconds, proc_info


@dataclass
class Paced:
    """One run of messages sent one after another at a steady rate (rate 0: as fast as the sender answers)."""

    name: str
    rate: float
    count: int
    sent: dict[int, float] = field(default_factory=dict)  # index -> wall clock just before the send
    answered: dict[int, float] = field(default_factory=dict)  # index -> the send call returned
    arrivals: dict[int, Arrival] = field(default_factory=dict)
    out_of_order: int = 0  # arrivals whose index is below one that arrived earlier
    duplicates: int = 0
    late: list[tuple[int, int]] = field(default_factory=list)  # (index, the higher index that arrived before it)

    def latencies(self) -> list[float]:
        return [self.arrivals[i].wall - self.sent[i] for i in sorted(self.arrivals)]

    def source_parts(self) -> list[float]:
        """Send → the provider built the event (from the event id's clock)."""
        return [e - self.sent[i] for i in sorted(self.arrivals) if (e := self.arrivals[i].event_wall()) is not None]

    def queue_parts(self) -> list[float]:
        """The provider built the event → the webhook arrived."""
        return [a.wall - e for a in self.arrivals.values() if (e := a.event_wall()) is not None]

    def send_calls(self) -> list[float]:
        return [self.answered[i] - self.sent[i] for i in self.answered]

    def send_span(self) -> float:
        return max(self.sent.values()) - min(self.sent.values()) if len(self.sent) > 1 else 0.0

    def drain_span(self) -> float:
        """First send to last arrival."""
        if not self.arrivals:
            return 0.0
        return max(a.wall for a in self.arrivals.values()) - min(self.sent.values())

    def throughput(self) -> float:
        span = self.drain_span()
        return len(self.arrivals) / span if span > 0 else 0.0

    def sent_rate(self) -> float:
        span = self.send_span()
        return (len(self.sent) - 1) / span if span > 0 else 0.0

    def built_out_of_order(self) -> list[tuple[int, int]]:
        """Pairs (i, j), j < i: message i was sent after message j but its event was built first (event id clocks,
        ms, so only strict inversions count)."""
        built = sorted((i, e) for i in self.arrivals if (e := self.arrivals[i].event_wall()) is not None)
        found = []
        latest = (-1, float("-inf"))
        for i, stamp in built:
            if stamp < latest[1]:
                found.append((i, latest[0]))
            if stamp >= latest[1]:
                latest = (i, stamp)
        return found

    def order_text(self) -> str:
        built = self.built_out_of_order()
        text = f"out of order at the receiver {self.out_of_order}"
        if self.late:
            text += " (" + ", ".join(f"#{i} arrived after #{j}" for i, j in self.late[:5]) + ")"
        text += f", built out of order by the provider {len(built)}"
        if built:
            text += " (" + ", ".join(f"#{i} before #{j}" for i, j in built[:5]) + ")"
        return text + f", duplicates {self.duplicates}"

    def max_backlog(self) -> int:
        """The most events built by the provider and not yet at the webhook, at any arrival."""
        built = sorted(e for a in self.arrivals.values() if (e := a.event_wall()) is not None)
        arrived = sorted(a.wall for a in self.arrivals.values())
        most, b = 0, 0
        for n, at in enumerate(arrived):
            while b < len(built) and built[b] <= at:
                b += 1
            most = max(most, b - n)
        return most

    def trend(self) -> tuple[float, float]:
        """Median latency of the first and of the second half of the run, in send order."""
        values = self.latencies()
        half = len(values) // 2
        return median(values[:half] or values), median(values[half:] or values)


def collect(receiver: TimedReceiver, run: Paced, prefix: str, timeout: float, cursor: int,
            body_text: Callable[[dict[str, object]], object]) -> int:
    """Match arrivals (from `cursor` on) to the run's messages by their text; returns the new cursor."""
    deadline = time.monotonic() + timeout
    last_index = -1
    while True:
        arrivals = receiver.snapshot()
        for arrival in arrivals[cursor:]:
            try:
                text = body_text(json.loads(arrival.body))
            except (ValueError, KeyError, TypeError):
                continue
            if not isinstance(text, str) or not text.startswith(prefix + " "):
                continue
            index = int(text.rsplit(" ", 1)[1])
            if index in run.arrivals:
                run.duplicates += 1
                continue
            if index < last_index:
                run.out_of_order += 1
                run.late.append((index, last_index))
            last_index = max(last_index, index)
            run.arrivals[index] = arrival
        cursor = len(arrivals)
        if len(run.arrivals) >= run.count or time.monotonic() > deadline:
            return cursor
        time.sleep(0.1)


def message_body(payload: dict[str, object]) -> object:
    message = payload["message"]
    return message["body"] if isinstance(message, dict) else None


def paced_run(send: Callable[[str], None], receiver: TimedReceiver, name: str, rate: float, count: int,
              cursor: int, timeout: float, window: int = 0) -> tuple[Paced, int]:
    """Send `count` texts `<prefix> <index>`, one after another, on a schedule of `rate` a second (each send
    waits for its answer; a late one is followed at once by the next), then wait for their webhooks.
    With a `window`, a send also waits until fewer than `window` messages are on their way (sent, no webhook yet)."""
    run = Paced(name, rate, count)
    prefix = f"{name}-{int(time.time())}"
    base = receiver.count
    deadline = time.monotonic() + timeout
    t0 = time.time()
    for i in range(count):
        delay = t0 + i / rate - time.time() if rate > 0 else 0.0
        if delay > 0:
            time.sleep(delay)
        if window:
            def room(_: list[Arrival], sent: int = i) -> bool:
                return sent - (receiver.count - base) < window

            receiver.wait_until(room, max(0.0, deadline - time.monotonic()))
        run.sent[i] = time.time()
        send(f"{prefix} {i}")
        run.answered[i] = time.time()
    cursor = collect(receiver, run, prefix, max(5.0, deadline - time.monotonic()), cursor, message_body)
    return run, cursor


# ---- what the stack's processes spent -----------------------------------------------------------
def stack_roles(stack: StackProcess) -> dict[str, int]:
    """The stack's own processes by role (moto, the launcher and the reconcile loop live in the stack process)."""
    found = {"stack process (moto server, launcher, reconcile loop, state snapshots)": stack.pid}
    for child in children(stack.pid):
        info = proc_info(child)
        if info is None:
            continue
        if "stack.sqs_loop" in info.command:
            found["SQS loop (the webhook fan-out, `deliver_webhooks`)"] = child
        elif "chalice" in info.command:
            found["chalice local (manager API)"] = child
    return found


@dataclass
class Spend:
    """CPU time of named processes and AWS requests answered by the stack's moto, between two readings."""

    roles: dict[str, int]
    cpu_before: dict[str, float | None] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    aws_before: tuple[dict[str, int], dict[str, float]] | None = None
    requests: dict[str, int] = field(default_factory=dict)
    request_cpu: dict[str, float] = field(default_factory=dict)

    def start(self, stack: StackProcess) -> None:
        self.cpu_before = {role: cpu_seconds(pid) for role, pid in self.roles.items()}
        self.aws_before = stack.aws_requests()

    def stop(self, stack: StackProcess) -> None:
        for role, pid in self.roles.items():
            before, after = self.cpu_before.get(role), cpu_seconds(pid)
            if before is not None and after is not None:
                self.cpu[role] = after - before
        after_aws = stack.aws_requests()
        if self.aws_before is not None and after_aws is not None:
            counts, cpu = after_aws
            for name, count in counts.items():
                delta = count - self.aws_before[0].get(name, 0)
                if delta:
                    self.requests[name] = delta
                    self.request_cpu[name] = cpu.get(name, 0.0) - self.aws_before[1].get(name, 0.0)

    def cpu_table(self, messages: int) -> str:
        total = sum(self.cpu.values())
        rows = [[role, f"{seconds:.1f}", f"{seconds / max(1, messages) * 1000:.1f}"]
                for role, seconds in sorted(self.cpu.items(), key=lambda kv: -kv[1])]
        rows.append(["all of the above", f"{total:.1f}", f"{total / max(1, messages) * 1000:.1f}"])
        return table(["Process", "CPU s", "CPU ms per message"], rows)

    def requests_table(self, messages: int) -> str:
        rows = [[name, count, f"{count / max(1, messages):.2f}",
                 f"{self.request_cpu.get(name, 0.0) / count * 1000:.1f}"]
                for name, count in sorted(self.requests.items(), key=lambda kv: -self.request_cpu.get(kv[0], 0.0))]
        total = sum(self.requests.values())
        total_cpu = sum(self.request_cpu.values())
        rows.append(["all", total, f"{total / max(1, messages):.2f}", f"{total_cpu / max(1, total) * 1000:.1f}"])
        return table(["AWS request (answered by moto)", "Count", "Per message", "moto CPU ms each"], rows)


def stats_cells(values: list[float], scale: float = 1000.0) -> list[str]:
    """p50, p90, p99 (nearest-rank), min, max."""
    if not values:
        return ["", "", "", "", ""]
    return [f"{median(values) * scale:.0f}", f"{percentile(values, 0.9) * scale:.0f}",
            f"{percentile(values, 0.99) * scale:.0f}", f"{min(values) * scale:.0f}", f"{max(values) * scale:.0f}"]


def latency_rows(run: Paced, source: str, send_call: str) -> list[list[object]]:
    label = (f"{run.rate:.0f}/s x {run.count} (sent at {run.sent_rate():.1f}/s; {len(run.arrivals)} arrived, "
             f"{run.throughput():.1f}/s)")
    return [
        [label, "sent → webhook arrived", *stats_cells(run.latencies())],
        ["", f"sent → event built ({source})", *stats_cells(run.source_parts())],
        ["", "event built → webhook arrived (SQS + fan-out)", *stats_cells(run.queue_parts())],
        ["", send_call, *stats_cells(run.send_calls())],
    ]


LATENCY_HEADERS = ["Rate x messages", "Interval (ms)", "p50", "p90", "p99", "Min", "Max"]


def trend_line(run: Paced) -> str:
    first, second = run.trend()
    if second > 2 * first and second - first > 0.2:
        what = (f"the latency grew through the run (median {first * 1000:.0f} ms in the first half, "
                f"{second * 1000:.0f} ms in the second): the pipeline fell behind this rate, so these figures "
                "measure the queue it built")
    else:
        what = (f"steady through the run (median {first * 1000:.0f} ms in the first half, {second * 1000:.0f} ms "
                "in the second)")
    return f"- {run.rate:.0f}/s: {what}; {run.order_text()}."
