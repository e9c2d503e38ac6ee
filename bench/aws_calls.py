"""Figure 1: AWS calls per request, for every endpoint and the webhook handler.

Runs in-process against moto (tests/aws.py's moto_environment, chalice.test.Client(app.app)) with
the ECS launcher, as a Lambda would. Every botocore API call is counted with a `before-call` handler
put first in botocore's BUILTIN_HANDLERS, so every botocore session created afterwards (boto3's and
PynamoDB's own per-thread ones) carries it. Two independent counts check the first: a wrapper around
`botocore.client.BaseClient._make_api_call` (which PynamoDB calls directly) and `before-send`
(one per HTTP attempt, so retries would show)."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .common import ROOT, SectionResult, say, table

KEY = "aws-calls"
TITLE = "AWS calls per request"


@dataclass
class Window:
    calls: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    raw_calls: int = 0
    seconds: float = 0.0  # wall time spent inside `_make_api_call` (moto answering, when mocked)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class CallCounter:
    """Counts botocore API calls made while a window is open."""

    _installed: CallCounter | None = None

    def __init__(self) -> None:
        self._window: Window | None = None
        self._lock = threading.Lock()

    @classmethod
    def install(cls) -> CallCounter:
        if cls._installed is not None:
            return cls._installed
        import botocore.client
        from botocore.handlers import BUILTIN_HANDLERS

        counter = cls()
        # First in the list: moto answers in its own before-send handler and botocore stops at the
        # first handler that returns something, so ours must run before moto's.
        BUILTIN_HANDLERS.insert(0, ("before-call", counter._on_call))
        BUILTIN_HANDLERS.insert(0, ("before-send", counter._on_send))
        original = botocore.client.BaseClient._make_api_call

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            with counter._lock:
                window = counter._window
                if window is not None:
                    window.raw_calls += 1
            started = time.perf_counter()
            try:
                return original(client, operation_name, api_params)
            finally:
                if window is not None:
                    spent = time.perf_counter() - started
                    with counter._lock:
                        window.seconds += spent

        botocore.client.BaseClient._make_api_call = counting
        cls._installed = counter
        return counter

    def _on_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_id.replace(' ', '')}.{model.name}"
        with self._lock:
            if self._window is not None:
                self._window.calls[name] += 1

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            if self._window is not None:
                self._window.attempts += 1

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        window = Window()
        with self._lock:
            self._window = window
        try:
            yield window
        finally:
            with self._lock:
                self._window = None


@dataclass
class Probe:
    endpoint: str
    first: Window
    warm: Window
    status: str
    minimum: int
    reason: str


# The fewest AWS calls each request could make with this data model, and why.
MINIMUM: dict[str, tuple[int, str]] = {
    "GET /api/health": (0, "no state is read"),
    "POST /api/v1/instances": (
        6,
        "GetItem (ports in use) + TransactWriteItems (company slot, port, item) + RunTask + one UpdateItem "
        "(task handle, log-line count folded in) + CreateLogStream + one PutLogEvents (both lines in one batch)",
    ),
    "GET /api/v1/instances": (1, "one Query on the by_record_type index (per 1 MB page)"),
    "GET /api/v1/instances?company_id=": (1, "one Query on the by_company index"),
    "GET /api/v1/instances/{id}": (1, "one GetItem"),
    "GET .../current-api-key": (1, "one GetItem (a process that has not yet unwrapped the data key adds one KMS Decrypt)"),
    "GET .../auth-status": (1, "one GetItem"),
    "GET .../qr": (1, "one GetItem (provider and status decide the answer)"),
    "GET .../logs": (2, "GetItem (404 for an unknown id, total_lines) + GetLogEvents"),
    "POST .../start (stopped)": (
        4,
        "UpdateItem with ReturnValues=ALL_NEW (desired state, returns ports/provider) + RunTask + UpdateItem "
        "(task handle + log count) + PutLogEvents",
    ),
    "POST .../start (already running)": (
        3, "GetItem + DescribeTasks + PutLogEvents (\"already running\"); nothing to write to the item",
    ),
    "POST .../stop": (
        3, "UpdateItem with ReturnValues=ALL_OLD (desired state, removes and returns the task handle) + StopTask + PutLogEvents",
    ),
    "POST .../restart": (
        5, "UpdateItem with ReturnValues=ALL_OLD + StopTask + RunTask + UpdateItem (new handle) + PutLogEvents",
    ),
    "DELETE /api/v1/instances/{id}": (
        5, "GetItem (ports, company, task handle) + TransactWriteItems + StopTask + DeleteLogStream + one Query "
        "of the delivery log (plus a BatchWriteItem per 25 entries, if any); a Telegram instance has no auth items "
        "to look for",
    ),
    "SQS deliver_webhooks (1 record)": (
        3, "GetItem (webhook URL, sealed headers, signing secret) + UpdateItem (this second's rate counter) + one "
        "write to the delivery log; deleting the message is the event source mapping's job (section 8: a batch of 10)",
    ),
    "schedule reconcile_instances (3 running)": (
        2, "one Query + one DescribeTasks for up to 100 task ARNs",
    ),
}


class _Receiver(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _format_calls(calls: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in calls.items()) or "none"


def _measure() -> tuple[list[Probe], list[Probe], dict[str, int]]:
    counter = CallCounter.install()  # before any botocore session exists
    from chalice.test import Client

    from tests.aws import moto_environment

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, name="webhook-receiver", daemon=True).start()
    webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    probes: list[Probe] = []
    fresh_probes: list[Probe] = []
    checks = {"before_call": 0, "make_api_call": 0, "http_attempts": 0, "webhook_posts": 0}
    try:
        with contextlib.contextmanager(moto_environment)():
            import os

            os.environ["WEBHOOK_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
            from chalicelib import wiring

            wiring.reset()
            import app

            client = Client(app.app, project_dir=str(ROOT))
            json_headers = {"Content-Type": "application/json"}

            def http(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
                send = getattr(client.http, method.lower())
                if body is None:
                    return send(path)
                return send(path, headers=json_headers, body=json.dumps(body))

            def create(company: str, provider: str = "telegram") -> tuple[str, Any]:
                body: dict[str, Any] = {"company_id": company, "provider": provider, "type_instance": ["api"]}
                if provider == "telegram":
                    body["config"] = {"bot_token": "123456:bench-token"}
                    body["api_webhook_schema"] = {"url": webhook_url, "headers": {"X-Bench": "1"}, "enabled": True}
                answer = http("POST", "/api/v1/instances", body)
                if answer.status_code != 200:
                    raise RuntimeError(f"create failed: {answer.status_code} {answer.body!r}")
                return str(answer.json_body["instance_id"]), answer

            def probe(endpoint: str, first: Callable[[], Any], second: Callable[[], Any]) -> Any:
                with counter.window() as cold:
                    first()
                with counter.window() as warm:
                    outcome = second()
                for window in (cold, warm):
                    checks["before_call"] += window.total
                    checks["make_api_call"] += window.raw_calls
                    checks["http_attempts"] += window.attempts
                status = str(getattr(outcome, "status_code", "ok"))
                minimum, reason = MINIMUM[endpoint]
                probes.append(Probe(endpoint, cold, warm, status, minimum, reason))
                say(f"  {endpoint}: {warm.total} calls (first call {cold.total})")
                return outcome

            ids: list[str] = []

            def create_next(company: str) -> Callable[[], Any]:
                def run() -> Any:
                    instance_id, answer = create(company)
                    ids.append(instance_id)
                    return answer
                return run

            base = "/api/v1/instances"
            probe("GET /api/health", lambda: http("GET", "/api/health"), lambda: http("GET", "/api/health"))
            probe("POST /api/v1/instances", create_next("bench-1"), create_next("bench-2"))
            t1, t2 = ids
            whatsapp, _ = create("bench-3", "whatsappweb")
            probe("GET /api/v1/instances", lambda: http("GET", base), lambda: http("GET", base))
            probe("GET /api/v1/instances?company_id=", lambda: http("GET", f"{base}?company_id=bench-1"),
                  lambda: http("GET", f"{base}?company_id=bench-1"))
            for endpoint, suffix in (("GET /api/v1/instances/{id}", ""), ("GET .../current-api-key", "/current-api-key"),
                                     ("GET .../auth-status", "/auth-status"), ("GET .../logs", "/logs")):
                get = functools.partial(http, "GET", f"{base}/{t1}{suffix}")
                probe(endpoint, get, get)
            probe("GET .../qr", lambda: http("GET", f"{base}/{whatsapp}/qr"), lambda: http("GET", f"{base}/{whatsapp}/qr"))

            from chalicelib.core.events import envelope

            target = {"instance": t1}

            def deliver() -> Any:
                # What a provider publishes: an envelope around the seed's payload (chalicelib/core/events.py).
                payload = {"instance_id": target["instance"], "provider": "telegram",
                           "message": {"id": "1001:1", "body": "hi", "fromMe": False,
                                       "timestamp": "2026-01-01T00:00:00.000Z", "contact": "Alice (@alice)",
                                       "type": "text", "chatId": "1001"}}
                event = json.dumps(envelope("message", target["instance"], payload, group=f"{target['instance']}:1001"))
                answer = client.lambda_.invoke("deliver_webhooks", client.events.generate_sqs_event([event]))
                failures = answer.payload.get("batchItemFailures")
                return _Ok("ok" if failures == [] else f"failures {failures}")

            probe("SQS deliver_webhooks (1 record)", deliver, deliver)
            checks["webhook_posts"] = _Receiver.received
            probe("POST .../start (already running)", lambda: http("POST", f"{base}/{t1}/start", {}),
                  lambda: http("POST", f"{base}/{t1}/start", {}))
            probe("POST .../stop", lambda: http("POST", f"{base}/{t1}/stop", {}), lambda: http("POST", f"{base}/{t2}/stop", {}))
            probe("POST .../start (stopped)", lambda: http("POST", f"{base}/{t1}/start", {}),
                  lambda: http("POST", f"{base}/{t2}/start", {}))
            probe("POST .../restart", lambda: http("POST", f"{base}/{t1}/restart", {}),
                  lambda: http("POST", f"{base}/{t2}/restart", {}))

            def reconcile() -> Any:
                tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [], region="us-east-1")
                return _Ok(f"started {client.lambda_.invoke('reconcile_instances', tick).payload.get('started')}")

            probe("schedule reconcile_instances (3 running)", reconcile, reconcile)
            probe("DELETE /api/v1/instances/{id}", lambda: http("DELETE", f"{base}/{t1}"), lambda: http("DELETE", f"{base}/{t2}"))

            # A fresh container (a cold Lambda, or another warm one): its caches are empty.
            def fresh(endpoint: str, action: Callable[[], Any]) -> None:
                wiring.reset()
                with counter.window() as window:
                    outcome = action()
                checks["before_call"] += window.total
                checks["make_api_call"] += window.raw_calls
                checks["http_attempts"] += window.attempts
                fresh_probes.append(Probe(endpoint, window, window, str(getattr(outcome, "status_code", "ok")),
                                          *MINIMUM[endpoint]))
                say(f"  {endpoint} (fresh container): {window.total} calls")

            fresh("POST /api/v1/instances", create_next("bench-4"))
            t4 = ids[-1]
            fresh("GET /api/v1/instances/{id}", lambda: http("GET", f"{base}/{t4}"))
            fresh("GET /api/v1/instances", lambda: http("GET", base))  # 2 items, sealed by 2 containers
            target["instance"] = t4
            fresh("SQS deliver_webhooks (1 record)", deliver)
            fresh("POST .../stop", lambda: http("POST", f"{base}/{t4}/stop", {}))
            for leftover in (t4, whatsapp):
                http("DELETE", f"{base}/{leftover}")
            wiring.reset()
    finally:
        receiver.shutdown()
        receiver.server_close()
    return probes, fresh_probes, checks


@dataclass
class _Ok:
    status_code: str = "ok"


def run() -> SectionResult:
    say(f"== {TITLE} (in-process, moto, ECS launcher; second call of each endpoint) ==")
    probes, fresh_probes, checks = _measure()
    rows = []
    for p in probes:
        excess = p.warm.total - p.minimum
        rows.append([p.endpoint, p.status, _format_calls(p.warm.calls), p.warm.total, p.first.total,
                     p.minimum, f"+{excess}" if excess > 0 else str(excess), p.reason])
    headers = ["Request", "Answer", "Calls by operation (warm: 2nd call)", "Total", "1st call", "Minimum", "Over",
               "Minimum because"]
    body = table(headers, rows)
    fresh_body = table(
        ["Request", "Answer", "Calls by operation (fresh container)", "Total", "Warm total"],
        [[p.endpoint, p.status, _format_calls(p.warm.calls), p.warm.total,
          next((w.warm.total for w in probes if w.endpoint == p.endpoint), "")] for p in fresh_probes],
    )
    deliveries = 2 + sum(1 for p in fresh_probes if p.endpoint.startswith("SQS"))
    verification = (
        f"Check: {checks['before_call']} `before-call` events = {checks['make_api_call']} "
        f"`BaseClient._make_api_call` invocations "
        f"({'match' if checks['before_call'] == checks['make_api_call'] else 'MISMATCH'}); "
        f"{checks['http_attempts']} HTTP attempts (`before-send`), so "
        f"{checks['http_attempts'] - checks['before_call']} retries; the webhook receiver got "
        f"{_Receiver.received} POSTs for {deliveries} deliveries."
    )
    over = {p.endpoint: p.warm.total - p.minimum for p in probes if p.warm.total > p.minimum}
    calls_of = {p.endpoint: p.warm.calls for p in probes}
    explanations, explained = _why_over(over, calls_of)
    unexplained = [e for e in over if e not in explained]
    say(body)
    say("First request of a fresh container:")
    say(fresh_body)
    say(verification)
    markdown = "\n".join([
        "Counts of botocore API calls for one request on a warm process: the second call of each endpoint "
        "(\"1st call\" is the first one, in the same process). In-process: `chalice.test.Client(app.app)` against "
        "moto (`tests/aws.py`'s `moto_environment`), ECS launcher, KMS envelope encryption, a webhook to a "
        "loopback receiver. Counted with a `before-call` handler inserted first in "
        "`botocore.handlers.BUILTIN_HANDLERS`, so boto3's clients and PynamoDB's own botocore sessions all "
        "carry it. \"Minimum\" is the fewest calls the request could make with this data model (one table, "
        "a leases table, the auth table, the delivery log, CloudWatch Logs, ECS).",
        "",
        body,
        "",
        verification,
        "",
        "The first request a fresh container serves (`wiring.reset()` before each: a cold Lambda, or another "
        "warm one) pays for its per-process caches: the KMS data key (GenerateDataKey to seal, Decrypt to "
        "open), the log streams it knows exist (CreateLogStream, answered ResourceAlreadyExists for an "
        "existing stream)"
        + (", the queue URL (GetQueueUrl)" if any(p.warm.calls["SQS.GetQueueUrl"] for p in fresh_probes) else "")
        + ":",
        "",
        fresh_body,
        "",
        *_fresh_notes(fresh_probes),
        "",
        f"Over the minimum on a warm process: {sum(over.values())} calls across {len(over)} of {len(probes)} "
        "requests. Where the surplus comes from:",
        "",
        *explanations,
        *(f"- {e}: +{over[e]}, not explained here: read its code path" for e in unexplained),
    ])
    return SectionResult(KEY, TITLE, markdown)


_WRITES = ("POST /api/v1/instances", "POST .../start (stopped)", "POST .../start (already running)", "POST .../stop",
           "POST .../restart", "DELETE /api/v1/instances/{id}")
_STATE_CHANGES = ("POST .../start (stopped)", "POST .../stop", "POST .../restart")


def _why_over(over: dict[str, int], calls: dict[str, Counter[str]]) -> tuple[list[str], set[str]]:
    """Where the calls over the minimum come from, read off the calls this run saw (the code changes)."""
    texts: list[str] = []
    explained: set[str] = set()
    writes = [e for e in _WRITES if e in over]
    per_line = [e for e in writes if calls[e]["CloudWatchLogs.PutLogEvents"] > 1]
    counted = [e for e in writes if calls[e]["CloudWatchLogs.PutLogEvents"] >= 1 and calls[e]["DynamoDB.UpdateItem"]]
    if per_line:
        explained.update(per_line)
        texts.append(
            f"- Each log line is written on its own ({', '.join(per_line)}): `InstanceLog.write` "
            "(chalicelib/instance_log.py) does a `PutLogEvents` and then `count_log_lines`, an `UpdateItem` on the "
            "instance (chalicelib/adapters/dynamo.py), per line.")
    if counted:
        explained.update(counted)
        texts.append(
            f"- The log-line counter is an `UpdateItem` of its own ({', '.join(counted)}): "
            "`InstanceLog.write_many` (chalicelib/instance_log.py) sends a use case's lines in one `PutLogEvents` "
            "(`InstanceLog.batched`) and then calls `count_log_lines` (chalicelib/adapters/dynamo.py), one more "
            "`UpdateItem` on the instance, where the count could ride on an `UpdateItem` the request makes anyway "
            "(`set_task`, `set_desired_state`).")
    changes = [e for e in _STATE_CHANGES if e in over and calls[e]["DynamoDB.GetItem"]
               and calls[e]["DynamoDB.UpdateItem"] >= 2]
    if changes:
        explained.update(changes)
        shown = ", ".join(f"{e.split(' ', 1)[1]} {calls[e]['DynamoDB.UpdateItem']}" for e in changes)
        texts.append(
            "- start/stop/restart read the item first (`InstanceService.get` → `GetItem`), then write it "
            "(`set_desired_state`), write it again for the task handle (`_stop_task`/`_launch` → `set_task`) and "
            f"again for the line count (`UpdateItem`s: {shown}): one `UpdateItem` with `ReturnValues` could replace "
            "the read and carry the desired state, the handle and the count together.")
    delete = "DELETE /api/v1/instances/{id}"
    if delete in over:
        explained.add(delete)
        parts = []
        if calls[delete]["DynamoDB.GetItem"] > 1:
            parts.append(f"reads the item {calls[delete]['DynamoDB.GetItem']} times (`InstanceService.delete` calls "
                         "`self.get`, then the repository reads it again)")
        if calls[delete]["CloudWatchLogs.PutLogEvents"]:
            parts.append("writes a log line to a stream it deletes a moment later")
        if calls[delete]["DynamoDB.Query"] >= 2:
            parts.append("queries the auth table for the WhatsApp login state (`DynamoAuthStore.wipe`, "
                         "chalicelib/adapters/auth_store.py) for every instance, a Telegram one too, which never "
                         "stores any; the other `Query` is the delivery log's (`DynamoDeliveryLog.forget`)")
        texts.append(f"- DELETE ({', '.join(f'{n} x{c}' for n, c in calls[delete].items())}) "
                     + ("; ".join(parts) if parts else "makes calls this benchmark does not explain: read "
                        "`InstanceService.delete` (chalicelib/services.py)") + ".")
    listing = [e for e in over if calls[e]["ECS.ListTasks"]]
    if listing:
        explained.update(listing)
        texts.append(
            "- `EcsLauncher.launch` (chalicelib/adapters/ecs.py) calls `ListTasks` (startedBy the instance id) before "
            f"every `RunTask` ({', '.join(listing)}), to return a running task instead of starting a second one. On "
            "create it cannot find anything (the id is new); elsewhere `RunTask`'s own `clientToken` (idempotency "
            "token, up to 64 characters, e.g. the instance id plus a launch generation kept on the item) could give "
            "a similar guarantee without a call.")
    reconcile = "schedule reconcile_instances (3 running)"
    if reconcile in over and calls[reconcile]["ECS.DescribeTasks"] > 1:
        explained.add(reconcile)
        texts.append(
            "- `reconcile` (chalicelib/services.py) calls `DescribeTasks` once per running instance through "
            "`_is_alive`, where one `DescribeTasks` takes up to 100 task ARNs: N+1 calls a minute for N instances.")
    return texts, explained


def _fresh_notes(fresh: list[Probe]) -> list[str]:
    calls = {p.endpoint: p.warm.calls for p in fresh}
    notes = []
    listing = calls.get("GET /api/v1/instances", Counter())
    if listing["KMS.Decrypt"]:
        notes.append(
            f"- GET list on a fresh container makes {listing['KMS.Decrypt']} KMS `Decrypt` (one per distinct data key "
            "among the listed items): `DynamoInstanceRepository._to_domain` (chalicelib/adapters/dynamo.py) opens "
            "secrets that `public_view` never shows.")
    else:
        notes.append(
            "- A cold GET list makes no KMS call: listings leave the secrets sealed (`open_secrets=False` in "
            "`DynamoInstanceRepository.list_all`/`list_by_company`, chalicelib/adapters/dynamo.py). Reading one "
            "instance still opens all of them (`get` → `_to_domain`), so GET one, auth-status, qr, logs, "
            "start/stop/restart and delete each pay a `Decrypt` per data key the container has not cached yet, "
            "though only current-api-key, the webhook fan-out and the provider use the secrets.")
    deliver = calls.get("SQS deliver_webhooks (1 record)", Counter())
    if deliver["SQS.GetQueueUrl"]:
        notes.append(
            "- The webhook handler's first invocation calls `GetQueueUrl` although it needs the URL only to delay a "
            "failed record (`Container.webhooks`, chalicelib/wiring.py).")
    elif deliver:
        notes.append(
            "- The webhook handler's first invocation resolves no queue URL (it is needed only to defer a record, "
            "`SqsDeliveryQueue`, chalicelib/adapters/sqs.py); it pays the KMS `Decrypt` of the instance's sealed "
            "webhook headers and signing secret.")
    return notes
