"""Figures 5, 6 and 7: the WhatsApp engine on the local stack, against the fake WhatsApp Web server
(tests/peers/whatsapp, Node; QR interval 20 s), with the real Baileys client in the provider's Node child.

5. memory of one provider (the Python runtime and its Node bridge child), idle after client_ready and
   after 1,000 messages from a fake contact (POST /_fake/messages), with the CPU each process spent on them;
6. reconnect time after the provider process is SIGKILLed (the stack's reconcile loop starts a new one,
   which logs in with the credentials stored in DynamoDB), split into phases from the log lines;
7. message-to-webhook latency at a steady rate: from just before POST /_fake/messages to the POST's
   arrival at a webhook receiver in this process, split at the moment the provider built the event."""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import PYTHON, ROOT, SectionResult, median, say, table
from .flow import LATENCY_HEADERS, Paced, Spend, latency_rows, paced_run, stack_roles, trend_line
from .local_stack import _BASELINE_CODE, Ports, _alive, _tail, memory_kib
from .peers import TimedReceiver
from .stackctl import WIDE_PORTS, StackProcess, children, proc_info

KEY_RSS = "whatsapp-rss"
KEY_RECONNECT = "whatsapp-reconnect"
KEY_LATENCY = "whatsapp-latency"
TITLE_RSS = "Memory of a WhatsApp provider (Python runtime + Node bridge)"
TITLE_RECONNECT = "Reconnect after a killed WhatsApp provider (local stack)"
TITLE_LATENCY = "Message to webhook (WhatsApp, local stack)"

PHONE = "15551238001"
CONTACT = "15550009001"
QR_INTERVAL_MS = 20000
IDLE_S = 5.0
BURST_TIMEOUT_S = 240.0
ORDER_CHATS = 10  # new contacts in the order check, each sending ORDER_MESSAGES back to back
ORDER_MESSAGES = 5
BURST_WINDOW = 20  # messages on their way at most during the 1,000: keeps moto's queue short (see block 5)
BRIDGE = ROOT / "provider" / "engines" / "whatsapp" / "bridge"
_NODE_IDLE = "setInterval(() => {}, 1000)"
_NODE_BAILEYS = ("await import('@whiskeysockets/baileys'); "
                 "console.log(Math.round(process.memoryUsage().rss / 1024))")


@dataclass
class Memory:
    label: str
    python: dict[str, int]
    node: dict[str, int]
    python_pid: int
    node_pid: int | None


@dataclass
class Kill:
    victim: int
    bridge: int | None
    at: float  # wall clock of the SIGKILL
    left_ready_s: float | None = None  # first GET not answering client_ready
    ready_s: float | None = None  # client_ready again, seen by a GET
    bridge_gone_s: float | None = None
    new_pid: int | None = None
    statuses: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # log mark -> seconds after the kill


# Log lines that mark the phases of a reconnect, in order: (mark, where it is written, text it contains).
_MARKS = [
    ("gone", "launcher", "Provider task is gone"),
    ("launched", "launcher", "Provider task started: local:"),
    ("runtime", "provider", "Provider runtime started"),
    ("connecting", "provider", "Connecting to WhatsApp with saved credentials"),
    ("ready", "provider", "client ready"),
]
_PHASES = [
    ("kill → reconcile noticed (\"Provider task is gone\", the launcher's line)", None, "gone"),
    ("→ new process spawned (\"Provider task started\")", "gone", "launched"),
    ("→ \"Provider runtime started\" (interpreter, imports, instance read, instance API bound)", "launched", "runtime"),
    ("→ \"Connecting … with saved credentials\" (status write and event, auth state read from DynamoDB)", "runtime",
     "connecting"),
    ("→ \"client ready\" logged (Node start, Baileys import, noise handshake, login)", "connecting", "ready"),
]


@dataclass
class WaRun:
    ports: Ports
    problems: list[str] = field(default_factory=list)
    stack_up_s: float = 0.0
    qr_ready_s: float | None = None
    scan_to_ready_s: float | None = None
    instance_id: str = ""
    memory: list[Memory] = field(default_factory=list)
    baselines: dict[str, dict[str, int]] = field(default_factory=dict)
    baileys_import_kib: int | None = None
    burst: Paced | None = None
    burst_spend: Spend | None = None
    paced: list[Paced] = field(default_factory=list)
    order_checks: list[Paced] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    qr_lines_before: int = 0
    qr_lines_after: int = 0
    auth_items: dict[str, int] = field(default_factory=dict)  # item kind (creds, pre-key, session...) -> count
    snapshot: dict[str, float] = field(default_factory=dict)
    stop_text: str = ""


# ---- measuring -----------------------------------------------------------------------------------
def _bridge_of(pid: int) -> int | None:
    for child in children(pid):
        info = proc_info(child)
        if info and "bridge.mjs" in info.command:
            return child
    return None


def _memory(label: str, pid: int) -> Memory:
    bridge = _bridge_of(pid)
    return Memory(label, memory_kib(pid), memory_kib(bridge) if bridge else {}, pid, bridge)


def _kill_once(stack: StackProcess, instance_id: str, run: WaRun) -> Kill | None:
    pid = stack.provider_pid(instance_id)
    if pid is None:
        run.problems.append("no live provider process found to kill")
        return None
    bridge = _bridge_of(pid)
    bridge_info = proc_info(bridge) if bridge else None
    kill = Kill(pid, bridge, time.time())
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        polled = time.monotonic()
        status = stack.status(instance_id)
        seen = time.monotonic() - t0
        if not kill.statuses or kill.statuses[-1] != status:
            kill.statuses.append(status)
        if bridge_info and kill.bridge_gone_s is None and not _alive(bridge_info):
            kill.bridge_gone_s = seen
        if status != "client_ready" and kill.left_ready_s is None:
            kill.left_ready_s = seen
        if status == "client_ready" and kill.left_ready_s is not None:
            kill.ready_s = seen
            break
        if kill.left_ready_s is None and seen > 15:
            break
        time.sleep(max(0.0, 0.05 - (time.monotonic() - polled)))
    kill.new_pid = stack.provider_pid(instance_id)
    if bridge_info and kill.bridge_gone_s is None and _alive(bridge_info):
        run.problems.append(f"the killed provider's Node bridge (pid {bridge_info.pid}, {bridge_info.command}) "
                            "still ran when the new provider was ready")
    return kill


def _place_marks(run: WaRun, stack: StackProcess) -> None:
    launcher = [x for x in stack.logs(run.instance_id, 1000) if x.source == "launcher"]
    provider = stack.provider_file(run.instance_id)
    for n, kill in enumerate(run.kills):
        until = run.kills[n + 1].at if n + 1 < len(run.kills) else float("inf")
        for mark, where, text in _MARKS:
            lines = launcher if where == "launcher" else provider
            hit = next((x for x in lines if kill.at <= x.wall < until and text in x.message), None)
            if hit is not None:
                kill.marks[mark] = hit.wall - kill.at


def _auth_items(ports: Ports, instance_id: str) -> dict[str, int]:
    """The instance's stored login state by kind, read from the stack's moto (informative only)."""
    try:
        import boto3

        dynamodb = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                         region_name="us-east-1").client(
            "dynamodb", endpoint_url=f"http://127.0.0.1:{ports.moto}")
        name = next(t for t in dynamodb.list_tables()["TableNames"] if "auth" in t.lower())
        kinds: dict[str, int] = {}
        query: dict[str, Any] = {"TableName": name, "KeyConditionExpression": "instance_id = :i",
                                 "ExpressionAttributeValues": {":i": {"S": instance_id}}, "ProjectionExpression": "item_key"}
        while True:
            answer = dynamodb.query(**query)
            for item in answer["Items"]:
                kind = item["item_key"]["S"].split("/")[0]
                kinds[kind] = kinds.get(kind, 0) + 1
            if "LastEvaluatedKey" not in answer:
                return kinds
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    except Exception as exc:
        say(f"  could not count the auth items: {type(exc).__name__}: {exc}")
        return {}


def _snapshot_cost(path: Path) -> dict[str, float]:
    """What the stack's StateKeeper pickles at each snapshot (stack/moto_state.py), timed here once."""
    try:
        raw = path.read_bytes()
        state = pickle.loads(raw)
        t0 = time.perf_counter()
        pickle.dumps(state)
        return {"bytes": float(len(raw)), "dump_s": time.perf_counter() - t0}
    except Exception as exc:  # informative only
        say(f"  could not time the moto snapshot: {type(exc).__name__}: {exc}")
        return {}


@contextlib.contextmanager
def _background(command: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _measure(ports: Ports, kills: int, burst: int, paced: list[tuple[str, float, int]]) -> WaRun:
    import requests

    from tests.peers.whatsapp_server import FakeWhatsAppServer

    run = WaRun(ports)
    whatsapp = FakeWhatsAppServer(qr_ref_interval_ms=QR_INTERVAL_MS).start()
    receiver = TimedReceiver().start()
    stack = StackProcess(ports, whatsapp.environment(), "whatsapp", probe=True)
    session = requests.Session()

    def send(text: str, contact: str = CONTACT) -> None:
        answer = session.post(whatsapp.control_url + "/_fake/messages", timeout=30,
                              json={"to": PHONE, "from": contact, "fromName": "Bench", "text": text})
        answer.raise_for_status()

    try:
        failure = stack.start()
        if failure:
            run.problems.append(failure)
            return run
        run.stack_up_s = stack.up_s
        created = stack.create({"company_id": "bench-wa", "provider": "whatsappweb", "type_instance": ["api"],
                                "api_webhook_schema": {"url": receiver.url}})
        run.instance_id = instance_id = str(created["instance_id"])
        run.qr_ready_s = stack.wait_status(instance_id, "qr_ready", 60)
        if run.qr_ready_s is None:
            run.problems.append(f"no qr_ready within 60 s (status {stack.status(instance_id)})")
            return run
        _, qr = stack.api.call("GET", f"/api/v1/instances/{instance_id}/qr")
        whatsapp.scan(str(qr["data"]["qr"]), PHONE)
        run.scan_to_ready_s = stack.wait_status(instance_id, "client_ready", 60)
        if run.scan_to_ready_s is None:
            run.problems.append(f"no client_ready within 60 s of the scan (status {stack.status(instance_id)})")
            return run
        say(f"  logged in: qr_ready {run.qr_ready_s:.1f} s after the create, client_ready "
            f"{run.scan_to_ready_s:.1f} s after the scan")
        pid = stack.provider_pid(instance_id)
        if pid is None:
            run.problems.append("no provider pid in the instance's log")
            return run

        # 5: idle, then the messages
        with _background(["node", "-e", _NODE_IDLE], ROOT) as bare_node, \
                _background([PYTHON, "-c", _BASELINE_CODE], ROOT) as bare_python:
            time.sleep(IDLE_S)
            run.memory.append(_memory(f"idle, {IDLE_S:.0f} s after client_ready", pid))
            run.baselines["bare Node process (`node -e \"setInterval(…)\"`)"] = memory_kib(bare_node.pid)
            run.baselines["bare asyncio process (as in section 4)"] = memory_kib(bare_python.pid)
        done = subprocess.run(["node", "--input-type=module", "-e", _NODE_BAILEYS], cwd=BRIDGE, capture_output=True,
                              text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip().isdigit():
            run.baileys_import_kib = int(done.stdout.strip())
        roles = {"provider: Python runtime": pid, **stack_roles(stack)}
        bridge = _bridge_of(pid)
        if bridge:
            roles["provider: Node bridge (Baileys)"] = bridge
        if whatsapp.process is not None:
            roles["fake WhatsApp server (Node, the peer)"] = whatsapp.process.pid
        run.burst_spend = Spend(roles)
        run.burst_spend.start(stack)
        run.burst, cursor = paced_run(send, receiver, "burst", 0.0, burst, 0, BURST_TIMEOUT_S, window=BURST_WINDOW)
        run.burst_spend.stop(stack)
        say(f"  burst: {len(run.burst.arrivals)}/{burst} webhooks, the last {run.burst.drain_span():.1f} s after "
            "the first send")
        run.memory.append(_memory(f"right after the {burst:,}th webhook arrived", pid))

        # 7: steady rates
        for name, rate, count in paced:
            result, cursor = paced_run(send, receiver, name, rate, count, cursor, 30.0 + count / 5)
            run.paced.append(result)
            say(f"  {rate:.0f}/s: {len(result.arrivals)}/{count} webhooks, the last {result.drain_span():.1f} s after "
                "the first send")

        # 7, order: new chats, each a few messages back to back
        for chat in range(ORDER_CHATS):
            result, cursor = paced_run(functools.partial(send, contact=f"1555002{chat:04d}"), receiver,
                                       f"order{chat}", 0.0, ORDER_MESSAGES, cursor, 30.0)
            run.order_checks.append(result)
        say(f"  order check: {sum(bool(p.late or p.built_out_of_order()) for p in run.order_checks)} of "
            f"{ORDER_CHATS} new chats had a message overtaken")

        # 6: kills
        run.auth_items = _auth_items(ports, instance_id)
        run.qr_lines_before = sum("QR code ready" in x.message for x in stack.provider_file(instance_id))
        for n in range(kills):
            if stack.wait_status(instance_id, "client_ready", 60) is None:
                run.problems.append(f"not client_ready before kill {n + 1}: {stack.status(instance_id)}")
                break
            time.sleep(1.0)
            kill = _kill_once(stack, instance_id, run)
            if kill is None:
                break
            run.kills.append(kill)
            shown = f"{kill.ready_s:.2f} s" if kill.ready_s is not None else f"NOT READY ({kill.statuses})"
            say(f"  kill {n + 1}/{kills}: pid {kill.victim} → {kill.new_pid}, client_ready again after {shown}")
        time.sleep(1.0)  # the last lines reach the log
        _place_marks(run, stack)
        run.qr_lines_after = sum("QR code ready" in x.message for x in stack.provider_file(instance_id))
    except Exception as exc:
        run.problems.append(f"{type(exc).__name__}: {exc}; the stack's log ends:\n{_tail(stack.log_path)}")
    finally:
        session.close()
        run.stop_text = stack.stop().text()
        run.snapshot = _snapshot_cost(stack.data_dir / "moto-state.pickle")
        stack.cleanup()
        receiver.close()
        whatsapp.stop()
    return run


# ---- reporting -----------------------------------------------------------------------------------
def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def run(port_offset: int = 0, kills: int = 5, burst: int = 1000) -> list[SectionResult]:
    ports = WIDE_PORTS.shifted(port_offset)
    paced = [("light", 5.0, 50), ("steady", 20.0, 200)]
    say(f"== WhatsApp on the local stack: memory, {burst:,} messages, steady-rate latency, {kills} kills "
        f"({ports.describe()}) ==")
    r = _measure(ports, kills, burst, paced)
    sections = [_rss_section(r, burst), _reconnect_section(r), _latency_section(r, paced)]
    sections[0].skipped = not r.memory
    sections[1].skipped = not r.kills
    sections[2].skipped = not r.paced
    return sections


def _setup_text(r: WaRun) -> str:
    login = (f" (qr_ready {r.qr_ready_s:.1f} s after the create, client_ready {r.scan_to_ready_s:.1f} s after the "
             "scan)" if r.qr_ready_s is not None and r.scan_to_ready_s is not None else "")
    return (
        f"`python -m stack` as a subprocess ({r.ports.describe()}, a temporary DATA_DIR, ADMIN_API_KEY set), started "
        "through `python -m bench.stack_probe`, which only counts the AWS requests its moto server answers; pointed "
        f"at the fake WhatsApp Web server (`FakeWhatsAppServer(qr_ref_interval_ms={QR_INTERVAL_MS})`, "
        "tests/peers/whatsapp_server.py: WHATSAPP_WS_URL, WHATSAPP_ROOT_PUBLIC_KEY, "
        f"WHATSAPP_QR_TIMEOUT_MS={QR_INTERVAL_MS}). One WhatsApp instance, its webhook on a receiver thread in the "
        f"benchmark's process (bench/peers.py), logged in by the fake phone scanning its QR{login}. Messages come "
        f"from one fake contact (`POST /_fake/messages {{\"to\": \"{PHONE}\", \"from\": \"{CONTACT}\", …}}` on the "
        "fake server's control API): one chat, so one FIFO message group. The stack came up in "
        f"{r.stack_up_s:.1f} s; teardown: {r.stop_text or 'not reached'}.")


def _problems(r: WaRun) -> list[str]:
    return [f"- PROBLEM: {problem}" for problem in r.problems]


def _rss_section(r: WaRun, burst: int) -> SectionResult:
    lines = [_setup_text(r), "",
             "Memory read from /proc (psutil is not in the venv): the provider by the pid in its launcher handle "
             "(`Provider task started: local:<id>:<pid>`), its Node child by its command line (`node bridge.mjs`). "
             "RSS counts shared pages in each process; PSS splits them between the processes sharing them; peak is "
             "VmHWM. MiB = 2^20 bytes.", ""]
    if r.memory:
        rows: list[list[object]] = []
        for m in r.memory:
            py, node = m.python, m.node
            rows.append([m.label, _mib(py.get("VmRSS", 0)), _mib(node.get("VmRSS", 0)),
                         _mib(py.get("VmRSS", 0) + node.get("VmRSS", 0)), _mib(py.get("Pss", 0) + node.get("Pss", 0)),
                         f"{_mib(py.get('VmHWM', 0))} / {_mib(node.get('VmHWM', 0))}",
                         f"{py.get('Threads', '?')} / {node.get('Threads', '?')}"])
        lines.append(table(["When", "Python RSS MiB", "Node RSS MiB", "Sum RSS MiB", "Sum PSS MiB",
                            "Peak RSS MiB (Python / Node)", "Threads (Python / Node)"], rows))
        lines.append("")
        scale = [[label, _mib(m.get("VmRSS", 0)), _mib(m.get("Pss", 0))] for label, m in r.baselines.items()]
        if r.baileys_import_kib:
            scale.append(["Node importing Baileys only (`await import('@whiskeysockets/baileys')`, then exit)",
                          _mib(r.baileys_import_kib), ""])
        lines.append("For scale, at the idle moment:")
        lines.append("")
        lines.append(table(["Process", "RSS MiB", "PSS MiB"], scale))
        idle, after = r.memory[0], r.memory[-1]
        idle_sum = idle.python.get("VmRSS", 0) + idle.node.get("VmRSS", 0)
        after_sum = after.python.get("VmRSS", 0) + after.node.get("VmRSS", 0)
        bare = next((m for label, m in r.baselines.items() if "asyncio" in label), {})
        lines.append("")
        lines.append(
            f"Idle, one WhatsApp provider holds {_mib(idle_sum)} MiB RSS"
            + (f" ({idle_sum / bare['VmRSS']:.1f}x a bare asyncio process)" if bare.get("VmRSS") else "")
            + f", {idle.node.get('VmRSS', 0) / max(1, idle_sum) * 100:.0f} % of it in the Node child"
            + (f", of which {_mib(r.baileys_import_kib)} MiB is there once Baileys is imported" if r.baileys_import_kib
               else "")
            + f". After the {burst:,} messages: {_mib(after_sum)} MiB ({(after_sum - idle_sum) / 1024:+.1f} MiB); the "
            f"Node child peaked at {_mib(after.node.get('VmHWM', 0))} MiB.")
    b, spend = r.burst, r.burst_spend
    if b is not None:
        lines.append("")
        lines.append(
            f"The {b.count:,} messages were posted one after another, each as soon as fewer than {BURST_WINDOW} were "
            f"on their way (posted, no webhook yet): moto's `SendMessage` walks the whole queue several times per "
            "call (`Queue.attributes` in moto/sqs/models.py computes the approximate message counts on every send), "
            "so an unbounded burst measures moto's backlog rather than the pipeline, which SQS does not do. "
            f"{len(b.arrivals):,} webhooks arrived, the last {b.drain_span():.1f} s after the first POST: "
            f"**{b.throughput():.1f} messages/s end to end**, with at most {b.max_backlog()} events built and not yet "
            f"delivered at any time. Order: {b.order_text()}.")
        if b.built_out_of_order():
            lines.append("")
            lines.append("The provider built some of these events out of order (the contact was new to the instance): "
                         "see the order check and its cause in block 7.")
        delivered = max(1, len(b.arrivals))
        if spend is not None and spend.cpu:
            total = sum(spend.cpu.values())
            lines += ["", "CPU time each process used meanwhile (utime + stime from /proc/<pid>/stat: other jobs on the "
                      "machine slow the run down but do not add to these), per message delivered:", "",
                      spend.cpu_table(delivered), ""]
            lines.append(f"At {total / delivered * 1000:.0f} ms of CPU per message these processes could pass at most "
                         f"{(os.cpu_count() or 1) * delivered / total:.0f} messages/s on this machine's "
                         f"{os.cpu_count()} cores if nothing else ran.")
        if spend is not None and spend.requests:
            moto_cpu = sum(spend.request_cpu.values())
            stack_role = next((role for role in spend.cpu if role.startswith("stack process")), "")
            lines += ["", "The AWS requests behind them, as the stack's moto server counted them (CPU of the thread "
                      "serving each request):", "", spend.requests_table(delivered), ""]
            if stack_role:
                lines.append(
                    f"Serving these requests took {moto_cpu:.1f} s of the stack process's {spend.cpu[stack_role]:.1f} s "
                    "of CPU; the rest is moto's HTTP server around them, the reconcile loop and the state snapshots. "
                    "Per message, the provider stores the Signal session change before Baileys goes on "
                    "(`BatchWriteItem`, `WhatsAppEngine._persist` in provider/engines/whatsapp/__init__.py) and "
                    "publishes the event (`SendMessage`, `RuntimeHost._publish` in provider/runtime.py); the fan-out "
                    "(`WebhookDeliverer`, chalicelib/webhooks.py) makes two `UpdateItem` per event (the rate counter, "
                    "`DynamoRateLimiter.acquire`, and the delivery log, `DynamoDeliveryLog.record`, both in "
                    "chalicelib/adapters/deliveries.py) and one `GetItem` per batch, and the SQS loop receives and "
                    "deletes a batch at a time. "
                    + _costliest(spend) + " These CPU figures are moto's, not AWS's; the counts are what AWS would "
                    "bill.")
    if r.snapshot:
        lines += ["", f"The stack process also snapshots moto's DynamoDB and CloudWatch Logs state to DATA_DIR every 10 s "
                  f"(`StateKeeper._loop`, stack/moto_state.py; the writes in between are journaled): "
                  f"{r.snapshot['bytes'] / 2**20:.1f} MiB by the end of this run; one `pickle.dumps` of it took "
                  f"{r.snapshot['dump_s'] * 1000:.0f} ms here, about {r.snapshot['dump_s'] / 10 * 100:.1f} % of a core, "
                  "and it grows with every delivery logged (local stack only)."]
    lines += _problems(r)
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_RSS, TITLE_RSS, markdown, list(r.problems))


def _costliest(spend: Spend) -> str:
    if not spend.request_cpu:
        return ""
    top = max(spend.request_cpu, key=lambda name: spend.request_cpu[name])
    share = spend.request_cpu[top] / max(1e-9, sum(spend.request_cpu.values())) * 100
    per = spend.request_cpu[top] / max(1, spend.requests.get(top, 1)) * 1000
    return f"moto spent most on `{top}` ({share:.0f} % of its request CPU, {per:.1f} ms each)."


def _reconnect_section(r: WaRun) -> SectionResult:
    lines = [
        "Same run (set-up in block 5), after the messages: the provider process (the pid in the latest `Provider "
        "task started: local:<id>:<pid>` line, checked to be a child of the stack) gets SIGKILL once the instance "
        "has been client_ready for 1 s. The clock stops at the first `GET /api/v1/instances/{id}` (every 50 ms) "
        "answering client_ready after one that did not. The stack's `ReconcileLoop` (stack/supervisor.py, every "
        "1 s) finds the process gone, sets status `start` and launches a new one, which logs in with the "
        "credentials and Signal keys stored in DynamoDB, without a QR. The phases come from the log lines' own "
        "timestamps: the launcher's lines from `GET …/logs`, the provider's from DATA_DIR/providers/<id>.log "
        "(same machine, same clock).",
        "",
    ]
    ready = [k.ready_s for k in r.kills if k.ready_s is not None]
    if ready:
        left = [k.left_ready_s for k in r.kills if k.left_ready_s is not None]
        lines.append(table(["Interval", "n", "Median s", "Min s", "Max s"], [
            ["SIGKILL → client_ready again (GET)", len(ready), f"{median(ready):.2f}", f"{min(ready):.2f}",
             f"{max(ready):.2f}"],
            ["SIGKILL → status no longer client_ready (GET)", len(left), f"{median(left):.2f}", f"{min(left):.2f}",
             f"{max(left):.2f}"],
        ]))
        lines.append("")
        rows: list[list[object]] = []
        for name, start, end in _PHASES:
            values = [k.marks[end] - (k.marks[start] if start else 0.0) for k in r.kills
                      if end in k.marks and (start is None or start in k.marks)]
            if values:
                rows.append([name, len(values), f"{median(values):.2f}", f"{max(values):.2f}"])
        # log stamps are cut to the ms, so a poll can look a hair earlier than the line: clamp at 0
        seen = [max(0.0, k.ready_s - k.marks["ready"]) for k in r.kills if k.ready_s is not None and "ready" in k.marks]
        if seen:
            rows.append(["→ seen by a GET poll (status write, 50 ms poll)", len(seen), f"{median(seen):.2f}",
                         f"{max(seen):.2f}"])
        lines.append(table(["Phase (from the previous mark)", "n", "Median s", "Max s"], rows))
        detect = [k.marks["gone"] for k in r.kills if "gone" in k.marks]
        login = [k.ready_s - k.marks["gone"] for k in r.kills if k.ready_s is not None and "gone" in k.marks]
        if detect and login:
            lines += ["", f"Detection (kill → the launcher noticed) is {median(detect):.2f} s of the median "
                      f"{median(ready):.2f} s: the reconcile loop's 1 s period, half of it on average. The login "
                      f"part (noticed → client_ready) is {median(login):.2f} s: a new process, the auth state read "
                      "back, Node and Baileys started, the handshake. In AWS the detection is different: the "
                      "scheduled reconcile runs once a minute (app.py `reconcile_instances`), and ECS does not "
                      "restart a stopped task by itself, so a crashed task waits up to a minute plus a Fargate start."]
        lines += ["", "Per kill, in order (s): " + ", ".join(
            f"{k.ready_s:.2f}" if k.ready_s is not None else f"not ready ({'→'.join(k.statuses)})" for k in r.kills)]
        gone = [k.bridge_gone_s for k in r.kills if k.bridge_gone_s is not None]
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(r.auth_items.items(), key=lambda kv: -kv[1]))
        lines += [
            "",
            f"- The killed provider's Node child exited on its own (its stdin closed) in {len(gone)}/{len(r.kills)} "
            "kills" + (f", within {max(gone):.2f} s" if gone else "") + ". Statuses seen: "
            + "; ".join("→".join(k.statuses) for k in r.kills) + ".",
            f"- \"QR code ready\" lines before the kills: {r.qr_lines_before}, after: {r.qr_lines_after} "
            f"({'no new QR' if r.qr_lines_after == r.qr_lines_before else 'A NEW QR WAS SHOWN'}).",
        ]
        if r.auth_items:
            lines.append(
                f"- The login state read back at each start: {sum(r.auth_items.values())} items in the auth table "
                f"({kinds}), each one sealed, so each start runs a paginated `Query` and {sum(r.auth_items.values())} "
                "AES-GCM opens (`DynamoAuthStore.load`, chalicelib/adapters/auth_store.py) and sends them all to the "
                "Node child in one line. Almost all are the pre-keys Baileys generated at pairing.")
    else:
        lines.append("No reconnect measured.")
    lines += _problems(r)
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_RECONNECT, TITLE_RECONNECT, markdown, list(r.problems))


def _latency_section(r: WaRun, paced: list[tuple[str, float, int]]) -> SectionResult:
    lines = [
        f"Same run (set-up in block 5), after the {r.burst.count if r.burst else 0:,} messages and before the kills: "
        + ", then ".join(f"{count} messages at {rate:.0f}/s" for _, rate, count in paced)
        + f", all from the contact of block 5, then the order check ({ORDER_CHATS} new contacts)"
        + ". Each POST waits for its answer and the next one starts on schedule (at once if late). The clock starts "
        "just before `POST /_fake/messages` and stops when the receiver has read the webhook's body. The split "
        "point is the moment the provider built the event: its id (`webhook-id: evt_<ms>_…`, "
        "chalicelib/core/events.py) carries the provider's wall clock in ms. Before it: the control API, the fake "
        "server encrypting and sending, Baileys decrypting, the Signal session stored in DynamoDB (Baileys waits "
        "for it), the line to Python. After it: `SendMessage`, the SQS loop's receive (moto long polls as short "
        "receives every 50 ms, stack/moto_state.py `keep_fifo_order`), the fan-out and the POST. Percentiles are "
        "nearest-rank; ms.",
        "",
    ]
    rows: list[list[object]] = []
    for p in r.paced:
        rows += latency_rows(p, "fake server → Baileys → provider", "POST /_fake/messages answered")
    if rows:
        lines.append(table(LATENCY_HEADERS, rows))
        lines.append("")
        lines += [trend_line(p) for p in r.paced]
        if r.order_checks:
            hit = [(n, p) for n, p in enumerate(r.order_checks) if p.late or p.built_out_of_order()]
            burst_hit = r.burst is not None and bool(r.burst.late or r.burst.built_out_of_order())
            lines.append(
                f"- Order of a new chat: {ORDER_CHATS} contacts that had never written each sent {ORDER_MESSAGES} "
                f"messages back to back (each POST waiting for the previous answer); {len(hit)} of {ORDER_CHATS} "
                "chats had a message overtaken"
                + (": " + "; ".join(f"chat {n + 1}: {p.order_text()}" for n, p in hit[:3])
                   + ("; …" if len(hit) > 3 else "") if hit else "")
                + f" ({sum(len(p.arrivals) for p in r.order_checks)}/{ORDER_CHATS * ORDER_MESSAGES} arrived)."
                + (f" The burst of block 5, whose contact was new too: {r.burst.order_text()}."
                   if r.burst is not None and burst_hit else ""))
            if hit or burst_hit:
                lines.append(
                    "  The provider built those events out of order, so the queue and the fan-out are not the cause "
                    "(they keep what they are given). The path: Baileys 7.0.0-rc14's `handleMessage` "
                    "(lib/Socket/messages-recv.js in the bridge's node_modules) handles incoming messages "
                    "concurrently and, for a contact it has no LID mapping for yet, awaits "
                    "`lidMapping.storeLIDPNMappings` before it takes its `messageMutex`; the bridge's key store "
                    "(`makeAuthState` in provider/engines/whatsapp/bridge/bridge.mjs) puts the value in memory at once "
                    "and then waits for Python to write it to DynamoDB (`WhatsAppEngine._persist`). The chat's first "
                    "message waits for that write; the second finds the mapping in memory, takes the mutex first "
                    "and is emitted first. It is a race: how many chats it hits varies from run to run. The README's "
                    "promise that a chat's events reach the webhook in order does not hold for a new chat's first "
                    "messages.")
        if r.burst is not None and r.burst.throughput():
            lines.append(f"- For comparison, the burst of block 5 (at most {BURST_WINDOW} messages on their way) passed "
                         f"{r.burst.throughput():.1f} messages/s end to end on the same stack; a steady rate above "
                         "what the pipeline passes at that moment can only build a queue.")
    else:
        lines.append("No latency measured.")
    lines += _problems(r)
    markdown = "\n".join(lines)
    say(markdown)
    return SectionResult(KEY_LATENCY, TITLE_LATENCY, markdown, list(r.problems))
