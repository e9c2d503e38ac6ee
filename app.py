"""Instance Manager's HTTP API and event handlers. Routes only: parse, call a use case, shape the answer."""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request, SQSEvent

from chalicelib import openapi, pages, wiring
from chalicelib.core.errors import ErrorCode, InstanceManagerError, error_body
from chalicelib.core.types import iso, utc_now
from chalicelib.core.validation import parse_json_object, parse_tail
from chalicelib.health import check_backends
from chalicelib.qr import qr_page as render_qr_page

app = Chalice(app_name="instance-manager")
app.log.setLevel(logging.INFO)

INSTANCE = "/api/v1/instances/{instanceId}"
# The QR page holds no secret: it fetches the QR with the admin key taken from its URL fragment.
OPEN_ROUTES = {"/api/health", "/qr-page/{instanceId}", "/openapi.json", "/docs", "/static/{name}"}
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_CHALICE_ERRORS = {405: ErrorCode.METHOD_NOT_ALLOWED, 415: ErrorCode.VALIDATION_ERROR, 500: ErrorCode.INTERNAL_ERROR}
# Bodies are parsed as JSON whatever the label: `curl -d` sends form-urlencoded by default.
_BODY_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"]


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _error(code: ErrorCode, message: str) -> Response:
    return _json(InstanceManagerError(code, message).http_status, error_body(code, message))


def endpoint(path: str, methods: list[str]) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., Response]]:
    """A route whose domain errors become the seed's error shape (Chalice would make them 500s)."""

    def register(view: Callable[..., dict[str, Any]]) -> Callable[..., Response]:
        @functools.wraps(view)
        def handle(**params: str) -> Response:
            try:
                return _json(200, view(**params))
            except InstanceManagerError as exc:
                if exc.code is ErrorCode.BACKEND_UNAVAILABLE:  # the operator's business too
                    app.log.warning("%s on %s: %r", exc.message, path, exc.__cause__)
                return _json(exc.http_status, exc.body())
            except Exception:
                app.log.exception("Unhandled error on %s", path)
                return _error(ErrorCode.INTERNAL_ERROR, "Internal error: see the service logs")

        return app.route(path, methods=methods, content_types=_BODY_TYPES)(handle)

    return register


@app.middleware("http")
def admin_auth(event: Any, get_response: Callable[[Any], Response]) -> Response:
    if event.path not in OPEN_ROUTES and not _authorized(event.headers):
        return _error(ErrorCode.UNAUTHORIZED, "Missing or wrong admin key: send it as x-api-key or Authorization: Bearer")
    response = get_response(event)
    code = _CHALICE_ERRORS.get(response.status_code)
    if code is not None and isinstance(response.body, dict) and "Code" in response.body:
        message = str(response.body.get("Message", code.value))
        if response.status_code == 415:
            message += ": send the body as JSON with Content-Type: application/json"
        return _error(code, message)
    return response


def _authorized(headers: Any) -> bool:
    expected = wiring.container().settings.admin_api_key
    if not expected:
        return True
    given = headers.get("x-api-key") or ""
    bearer = headers.get("authorization") or ""
    if bearer.lower().startswith("bearer "):
        given = given or bearer[7:].strip()
    return hmac.compare_digest(given.encode(), expected.encode())


def _service() -> Any:
    return wiring.container().instances


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


def _query(name: str) -> str | None:
    params: Mapping[str, str] = _request().query_params or {}
    return params.get(name)


def _body() -> dict[str, Any]:
    return parse_json_object(_request().raw_body)


@app.route("/api/health", methods=["GET"])
def health() -> Response:
    """Cheap and open (no AWS call). `?deep=true` probes every backend: it shows the infrastructure and
    costs AWS calls (throttled together with the service's own), so it needs the admin key."""
    deep = _query("deep") or "false"
    if deep not in ("true", "false"):
        return _error(ErrorCode.VALIDATION_ERROR, f"deep must be true or false, got {deep[:20]!r}")
    answer: dict[str, Any] = {"status": "healthy", "timestamp": iso(utc_now())}
    if deep == "false":
        return _json(200, answer)
    if not _authorized(_request().headers):
        return _error(ErrorCode.UNAUTHORIZED, "The deep health check needs the admin key: send it as x-api-key "
                                              "or Authorization: Bearer")
    backends = check_backends(wiring.container().backends)
    down = [b["name"] for b in backends.values() if b["status"] != "ok"]
    if not down:
        return _json(200, {**answer, "backends": backends})
    message = f"Not reachable: {', '.join(down)} (see backends); try again in a few seconds"
    return _json(503, {**error_body(ErrorCode.BACKEND_UNAVAILABLE, message), "status": "unavailable",
                       "timestamp": answer["timestamp"], "backends": backends})


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return _json(200, openapi.document(_public_url("")))


@app.route("/docs", methods=["GET"])
def docs_page() -> Response:
    # Relative to /docs, so it holds under a stage prefix and stays same-origin for the page's CSP.
    return Response(body=openapi.docs_page("openapi.json"), status_code=200, headers=pages.page_headers())


@app.route("/static/{name}", methods=["GET"])
def static_file(name: str) -> Response:
    found = pages.static_file(name)
    if found is None:
        return _error(ErrorCode.ROUTE_NOT_FOUND, f"No static file {name!r}: the pages use {sorted(pages.STATIC_TYPES)}")
    body, headers = found
    return Response(body=body, status_code=200, headers=headers)


@endpoint("/api/v1/instances", ["POST"])
def create_instance() -> dict[str, Any]:
    instance = _service().create(_body())
    return {
        "success": True,
        "instance_id": instance.id,
        "message": "Instance created successfully",
        "process_result": {
            "success": True,
            "details": {
                "ports": instance.ports,
                "api_key": instance.api_key.value,
                "webhook_secret": instance.signing.current if instance.signing else None,
            },
        },
    }


@endpoint("/api/v1/instances", ["GET"])
def list_instances() -> dict[str, Any]:
    company_id = _query("company_id")
    return {"success": True, "data": [i.public_view() for i in _service().list_instances(company_id)]}


@endpoint(INSTANCE, ["GET"])
def get_instance(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().get(instanceId).public_view()}


@endpoint(INSTANCE, ["DELETE"])
def delete_instance(instanceId: str) -> dict[str, Any]:
    _service().delete(instanceId)
    return {"success": True, "message": "Instance deleted successfully"}


@endpoint(INSTANCE + "/current-api-key", ["GET"])
def current_api_key(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().api_key(instanceId)}


@endpoint(INSTANCE + "/start", ["POST"])
def start_instance(instanceId: str) -> dict[str, Any]:
    _service().start(instanceId)
    return {"success": True, "message": "Instance started successfully"}


@endpoint(INSTANCE + "/stop", ["POST"])
def stop_instance(instanceId: str) -> dict[str, Any]:
    _service().stop(instanceId)
    return {"success": True, "message": "Instance stopped successfully"}


@endpoint(INSTANCE + "/restart", ["POST"])
def restart_instance(instanceId: str) -> dict[str, Any]:
    _service().restart(instanceId)
    return {"success": True, "message": "Instance restarted successfully"}


@endpoint(INSTANCE + "/qr", ["GET"])
def qr_code(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().qr(instanceId, _public_url(f"/qr-page/{instanceId}"))}


@endpoint(INSTANCE + "/messages", ["POST"])
def send_message(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().send_message(instanceId, _body())}


@endpoint(INSTANCE + "/pairing-code", ["POST"])
def pairing_code(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().pairing_code(instanceId, _body())}


def _webhooks() -> Any:
    return wiring.container().webhook_settings


@endpoint(INSTANCE + "/webhook", ["GET"])
def get_webhook(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().view(instanceId)}


@endpoint(INSTANCE + "/webhook", ["PATCH"])
def update_webhook(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().update(instanceId, _body())}


@endpoint(INSTANCE + "/webhook/rotate-secret", ["POST"])
def rotate_webhook_secret(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().rotate_secret(instanceId)}


@endpoint(INSTANCE + "/webhook/test", ["POST"])
def send_test_event(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().send_test(instanceId)}


@endpoint(INSTANCE + "/deliveries", ["GET"])
def list_deliveries(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().list(instanceId, _query("state"), _query("limit"))}


@endpoint(INSTANCE + "/deliveries/{deliveryId}", ["GET"])
def get_delivery(instanceId: str, deliveryId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().get(instanceId, deliveryId)}


@endpoint(INSTANCE + "/deliveries/{deliveryId}/retry", ["POST"])
def retry_delivery(instanceId: str, deliveryId: str) -> dict[str, Any]:
    return {"success": True, "data": _webhooks().retry(instanceId, deliveryId)}


@app.route("/qr-page/{instanceId}", methods=["GET"])
def qr_page(instanceId: str) -> Response:
    return Response(body=render_qr_page(instanceId), status_code=200, headers=pages.page_headers())


def _public_url(path: str) -> str:
    """This service's own URL for a path, as the client reached it (stage prefix included)."""
    request = _request()
    headers = request.headers
    host = headers.get("host", "localhost")
    scheme = headers.get("x-forwarded-proto", "http")
    stage = request.context.get("stage", "")
    prefix = f"/{stage}" if stage and ".execute-api." in host else ""
    return f"{scheme}://{host}{prefix}{path}"


@endpoint(INSTANCE + "/auth-status", ["GET"])
def auth_status(instanceId: str) -> dict[str, Any]:
    return {"success": True, "data": _service().auth_status(instanceId)}


@endpoint(INSTANCE + "/logs", ["GET"])
def instance_logs(instanceId: str) -> dict[str, Any]:
    tail = parse_tail(_query("tail"))
    lines, total = _service().logs(instanceId, tail)
    return {"success": True, "data": {"logs": lines, "total_lines": total, "tail": tail}}


def _route_not_found(**_: str) -> dict[str, Any]:
    request = _request()
    path = request.context.get("path", request.path)
    raise InstanceManagerError(
        ErrorCode.ROUTE_NOT_FOUND, f"No route {request.method} {path}: see the README for the API's routes"
    )


# API Gateway and `chalice local` both answer unknown paths with a bare 403; catch-all routes up to
# eight segments deep give them the seed's error shape instead.
for _depth in range(1, 9):
    endpoint("/" + "/".join(f"{{p{i}}}" for i in range(_depth)), _ALL_METHODS)(_route_not_found)


@app.on_sqs_message(queue=os.environ.get("EVENTS_QUEUE_NAME", "instance-manager-events.fifo"), batch_size=10,
                    name="deliver_webhooks")
def deliver_webhooks(event: SQSEvent) -> dict[str, Any]:
    records = [record.to_dict() for record in event]
    return dict(wiring.container().webhooks.handle_batch(records))


@app.schedule("rate(1 minute)", name="reconcile_instances")
def reconcile_instances(event: Any) -> dict[str, Any]:
    return {"started": _service().reconcile()}
