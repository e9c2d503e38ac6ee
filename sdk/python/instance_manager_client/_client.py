"""InstanceManagerClient: every operation of the manager API, one method each (sync, requests)."""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import quote

import requests

from ._errors import ErrorCode, InstanceManagerError
from ._types import (
    ActionResult,
    ApiKeyInfo,
    AuthStatusInfo,
    CreateInstanceRequest,
    CreateInstanceResponse,
    Delivery,
    DeliveryDetail,
    DeliveryId,
    DeliveryRetry,
    DeliveryState,
    Health,
    Instance,
    InstanceLogs,
    OpenApiDocument,
    PairingCode,
    QRCode,
    SentMessage,
    Webhook,
    WebhookSecret,
    WebhookSettings,
    WebhookUpdate,
)

DEFAULT_BASE_URL = "http://localhost:3000"
DEFAULT_TIMEOUT = 30.0  # the seed's bound for create and delete
QR_WAIT = 30.0
QR_POLL_INTERVAL = 0.5
PING_TIMEOUT = 5.0
# A WhatsApp instance in these states is on its way to showing a QR.
_QR_COMING = {"start", "qr_ready"}


class InstanceManagerClient:
    """A client of one Instance Manager.

    `api_key` is the admin key (ADMIN_API_KEY), sent as x-api-key. Pass a `session` to share a
    connection pool or to add hooks, retries or proxies; the client never closes a session it was given.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None) -> None:
        self._base_url = _normalize(base_url)
        self._api_key = api_key
        self.timeout = timeout
        self._owns_session = session is None
        self._session = session or requests.Session()

    # ---- configuration -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._base_url

    def set_base_url(self, url: str) -> None:
        self._base_url = _normalize(url)

    def set_api_key(self, api_key: str | None) -> None:
        self._api_key = api_key

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> InstanceManagerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- instances ---------------------------------------------------------------------------
    def create_instance(self, body: CreateInstanceRequest) -> CreateInstanceResponse:
        return cast(CreateInstanceResponse, self._call("POST", "/api/v1/instances", json=body))

    def create_whatsapp_instance(self, company_id: str, webhook: Webhook | None = None) -> str:
        """Creates a WhatsApp instance and returns its id; its QR follows within seconds (get_qr_code)."""
        body: CreateInstanceRequest = {"company_id": company_id, "provider": "whatsappweb", "type_instance": ["api"]}
        if webhook is not None:
            body["api_webhook_schema"] = webhook
        return self.create_instance(body)["instance_id"]

    def create_telegram_instance(self, company_id: str, bot_token: str, webhook: Webhook | None = None) -> str:
        """Creates a Telegram instance logged in with the bot's token and returns its id."""
        body: CreateInstanceRequest = {"company_id": company_id, "provider": "telegram", "type_instance": ["api"],
                                       "config": {"bot_token": bot_token}}
        if webhook is not None:
            body["api_webhook_schema"] = webhook
        return self.create_instance(body)["instance_id"]

    def get_all_instances(self, company_id: str | None = None) -> list[Instance]:
        params = {"company_id": company_id} if company_id else None
        return cast(list[Instance], self._call("GET", "/api/v1/instances", params=params)["data"])

    def get_instance(self, instance_id: str) -> Instance:
        return cast(Instance, self._call("GET", _path(instance_id))["data"])

    def delete_instance(self, instance_id: str) -> ActionResult:
        return cast(ActionResult, self._call("DELETE", _path(instance_id)))

    def get_instance_api_key(self, instance_id: str) -> ApiKeyInfo:
        return cast(ApiKeyInfo, self._call("GET", _path(instance_id, "/current-api-key"))["data"])

    # ---- lifecycle ---------------------------------------------------------------------------
    def start_instance(self, instance_id: str) -> ActionResult:
        return cast(ActionResult, self._call("POST", _path(instance_id, "/start")))

    def stop_instance(self, instance_id: str) -> ActionResult:
        return cast(ActionResult, self._call("POST", _path(instance_id, "/stop")))

    def restart_instance(self, instance_id: str) -> ActionResult:
        return cast(ActionResult, self._call("POST", _path(instance_id, "/restart")))

    # ---- login -------------------------------------------------------------------------------
    def get_qr_code(self, instance_id: str, wait: float = QR_WAIT) -> QRCode:
        """The pending WhatsApp QR. A WhatsApp instance shows its first QR a few seconds after create or
        start: while it is on its way, this waits for it, up to `wait` seconds. With wait=0, or when no QR
        is coming (Telegram, logged in, stopped, error), the API's 409 QR_NOT_AVAILABLE is raised at once."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return cast(QRCode, self._call("GET", _path(instance_id, "/qr"))["data"])
            except InstanceManagerError as error:
                if error.code != ErrorCode.QR_NOT_AVAILABLE or time.monotonic() >= deadline:
                    raise
                instance = self.get_instance(instance_id)
                if instance["provider"] != "whatsappweb" or instance["status"] not in _QR_COMING:
                    raise
            time.sleep(QR_POLL_INTERVAL)

    def request_pairing_code(self, instance_id: str, phone_number: str) -> PairingCode:
        """A code to type on the phone instead of scanning the QR (WhatsApp)."""
        body = {"phone_number": phone_number}
        return cast(PairingCode, self._call("POST", _path(instance_id, "/pairing-code"), json=body)["data"])

    def send_message(self, instance_id: str, chat_id: str, text: str) -> SentMessage:
        """Send a text through the instance (the manager forwards it to the instance's own API)."""
        body = {"chatId": chat_id, "text": text}
        return cast(SentMessage, self._call("POST", _path(instance_id, "/messages"), json=body)["data"])

    def get_auth_status(self, instance_id: str) -> AuthStatusInfo:
        return cast(AuthStatusInfo, self._call("GET", _path(instance_id, "/auth-status"))["data"])

    # ---- webhook and its deliveries -----------------------------------------------------------
    def get_webhook(self, instance_id: str) -> WebhookSettings:
        return cast(WebhookSettings, self._call("GET", _path(instance_id, "/webhook"))["data"])

    def update_webhook(self, instance_id: str, changes: WebhookUpdate) -> WebhookSettings:
        """The fields sent replace the current ones (headers as a whole); url is required the first time."""
        return cast(WebhookSettings, self._call("PATCH", _path(instance_id, "/webhook"), json=changes)["data"])

    def rotate_webhook_secret(self, instance_id: str) -> WebhookSecret:
        """A new signing secret; the previous one signs too until previous_secret_valid_until."""
        return cast(WebhookSecret, self._call("POST", _path(instance_id, "/webhook/rotate-secret"))["data"])

    def send_test_event(self, instance_id: str) -> DeliveryId:
        """Sends a webhook.test event to the webhook; follow it with get_delivery."""
        return cast(DeliveryId, self._call("POST", _path(instance_id, "/webhook/test"))["data"])

    def get_deliveries(self, instance_id: str, state: DeliveryState | None = None, limit: int | None = None) -> list[Delivery]:
        """The delivery log, newest first (limit 1-100, default 50)."""
        params = {name: str(value) for name, value in (("state", state), ("limit", limit)) if value is not None}
        return cast(list[Delivery], self._call("GET", _path(instance_id, "/deliveries"), params=params or None)["data"])

    def get_delivery(self, instance_id: str, delivery_id: str) -> DeliveryDetail:
        return cast(DeliveryDetail, self._call("GET", _delivery_path(instance_id, delivery_id))["data"])

    def retry_delivery(self, instance_id: str, delivery_id: str) -> DeliveryRetry:
        """Queues a delivery that has not succeeded again (same event id)."""
        return cast(DeliveryRetry, self._call("POST", _delivery_path(instance_id, delivery_id, "/retry"))["data"])

    # ---- logs and monitoring -----------------------------------------------------------------
    def get_instance_logs(self, instance_id: str, tail: int = 100) -> InstanceLogs:
        params = {"tail": str(tail)}
        return cast(InstanceLogs, self._call("GET", _path(instance_id, "/logs"), params=params)["data"])

    def health(self) -> Health:
        return cast(Health, self._call("GET", "/api/health"))

    def ping(self) -> bool:
        """True when the API answers its health check; never raises."""
        try:
            return self._call("GET", "/api/health", timeout=min(self.timeout, PING_TIMEOUT)).get("status") == "healthy"
        except Exception:
            return False

    def get_openapi_document(self) -> OpenApiDocument:
        return self._call("GET", "/openapi.json")

    # ---- transport ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None,
              timeout: float | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        try:
            answer = self._session.request(method, self._base_url + path, json=json, params=params, headers=headers,
                                           timeout=self.timeout if timeout is None else timeout)
        except requests.Timeout as exc:
            raise InstanceManagerError(f"{method} {path}: no answer within the timeout", status=0,
                                       code=ErrorCode.TIMEOUT) from exc
        except requests.RequestException as exc:
            raise InstanceManagerError(f"{method} {path}: {exc}", status=0, code=ErrorCode.NETWORK_ERROR) from exc
        return _parse(answer, f"{method} {path}")


def _parse(answer: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InstanceManagerError(f"{what}: HTTP {answer.status_code} with a body that is not the API's JSON",
                                   status=answer.status_code, code=ErrorCode.INVALID_RESPONSE, body=answer.text[:1000])
    if answer.status_code >= 400 or body.get("success") is False:
        code = body.get("code")
        message = body.get("error")
        raise InstanceManagerError(message if isinstance(message, str) else f"{what}: HTTP {answer.status_code}",
                                   status=answer.status_code,
                                   code=code if isinstance(code, str) else ErrorCode.INVALID_RESPONSE, body=body)
    return body


def _normalize(url: str) -> str:
    return url.rstrip("/")


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InstanceManagerError(f"{name} is required", status=0, code=ErrorCode.VALIDATION_ERROR)
    return quote(value, safe="")


def _path(instance_id: str, tail: str = "") -> str:
    return f"/api/v1/instances/{_segment(instance_id, 'instance_id')}{tail}"


def _delivery_path(instance_id: str, delivery_id: str, tail: str = "") -> str:
    return _path(instance_id, f"/deliveries/{_segment(delivery_id, 'delivery_id')}{tail}")
