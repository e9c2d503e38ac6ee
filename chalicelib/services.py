"""Use cases of the manager API. They speak domain types and depend only on the ports."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .config import Settings
from .core.errors import ErrorCode, InstanceManagerError
from .core.signing import new_secret
from .core.types import (
    ApiKey,
    AuthStatus,
    DesiredState,
    Instance,
    LogLine,
    Provider,
    SigningSecrets,
    Status,
    iso,
    utc_now,
)
from .core.validation import parse_create_request
from .instance_log import InstanceLog
from .ports import AuthStore, DeliveryLog, InstanceGateway, InstanceRepository, Launcher, TaskState, require
from .qr import png_data_url
from .webhooks import check_webhook_url

SOURCE = "instance-manager"
LAUNCH_GRACE = timedelta(seconds=10)


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class InstanceService:
    repo: InstanceRepository
    launcher: Launcher
    log: InstanceLog
    settings: Settings
    gateway: InstanceGateway | None = None
    deliveries: DeliveryLog | None = None
    auth_store: AuthStore | None = None
    clock: Callable[[], Any] = utc_now
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())

    def create(self, body: dict[str, Any]) -> Instance:
        request = parse_create_request(body)
        if request.webhook is not None:
            check_webhook_url(request.webhook.url, self.settings.webhook_allow_private)
        now = self.clock()
        draft = Instance(
            id=self.new_id(),
            company_id=request.company_id,
            provider=request.provider,
            type_instance=request.type_instance,
            ports={},
            api_key=ApiKey(value=new_api_key(), generated_at=now),
            created_at=now,
            updated_at=now,
            webhook=request.webhook,
            secrets=request.secrets,
            signing=SigningSecrets(new_secret()),
        )
        instance = self.repo.create(draft, self.settings.max_instances_per_company, self.settings.port_range)
        with self.log.batched(instance.id):
            self.log.write(instance.id, "info", f"Instance created ({instance.provider.value}, "
                           f"port {instance.ports['api']})", SOURCE)
            self._launch(instance)
        return instance

    def list_instances(self, company_id: str | None = None) -> list[Instance]:
        if company_id:
            return self.repo.list_by_company(company_id)
        return self.repo.list_all()

    def get(self, instance_id: str) -> Instance:
        return require(self.repo, instance_id)

    def api_key(self, instance_id: str) -> dict[str, Any]:
        key = self.get(instance_id).api_key
        return {
            "api_key": key.value,
            "generated_at": iso(key.generated_at),
            "last_use": iso(key.last_use),
            "usage_count": key.usage_count,
        }

    def start(self, instance_id: str) -> None:
        instance = self.get(instance_id)
        with self.log.batched(instance.id):
            alive = instance.task_handle is not None and self._is_alive(instance.task_handle)
            if alive and instance.desired_state is DesiredState.RUNNING and instance.status is not Status.ERROR:
                self.log.write(instance.id, "info", "Start requested: already running", SOURCE)
                return
            self.repo.set_desired_state(instance.id, DesiredState.RUNNING, Status.START)
            if alive:  # in error (a rejected token, a logout, an expired QR): a fresh task logs in anew
                self._stop_task(instance, forget=False)
            self.log.write(instance.id, "info", "Start requested", SOURCE)
            self._launch(instance)

    def stop(self, instance_id: str) -> None:
        instance = self.get(instance_id)
        with self.log.batched(instance.id):
            self.repo.set_desired_state(instance.id, DesiredState.STOPPED, Status.STOPPED)
            self._stop_task(instance)
            self.log.write(instance.id, "info", "Instance stopped", SOURCE)

    def restart(self, instance_id: str) -> None:
        instance = self.get(instance_id)
        with self.log.batched(instance.id):
            self.repo.set_desired_state(instance.id, DesiredState.RUNNING, Status.START)
            self._stop_task(instance, forget=False)  # the new handle replaces it just below
            self.log.write(instance.id, "info", "Restart requested", SOURCE)
            self._launch(instance)

    def delete(self, instance_id: str) -> None:
        instance = self.get(instance_id)
        # The record goes first: a reconcile pass between the two steps must not start the task again.
        self.repo.delete(instance)
        if instance.task_handle is not None:
            self.launcher.stop(instance.task_handle)
        self.log.forget(instance.id)
        if self.auth_store is not None and instance.provider is Provider.WHATSAPPWEB:  # the one with login state
            self.auth_store.wipe(instance.id)
        if self.deliveries is not None:
            self.deliveries.forget(instance.id)

    def auth_status(self, instance_id: str) -> dict[str, Any]:
        instance = self.get(instance_id)
        return {
            "status": instance.auth_status.value,
            "authenticated": instance.auth_status is AuthStatus.AUTHENTICATED,
            "account": instance.account,
            "instance_status": instance.status.value,
        }

    def qr(self, instance_id: str, page_url: str) -> dict[str, Any]:
        instance = self.get(instance_id)
        if instance.provider is Provider.TELEGRAM:
            raise InstanceManagerError(
                ErrorCode.QR_NOT_AVAILABLE,
                "Telegram instances log in with their bot token: there is no QR code",
            )
        if not instance.qr or instance.auth_status is not AuthStatus.QR_READY:
            hint = " (POST .../start for a new one)" if instance.status is Status.ERROR else ""
            raise InstanceManagerError(
                ErrorCode.QR_NOT_AVAILABLE,
                f"No QR code is pending for this instance (status {instance.status.value}, "
                f"auth_status {instance.auth_status.value}){hint}",
            )
        return {"qr_url": png_data_url(instance.qr), "url": page_url, "qr": instance.qr,
                "updated_at": iso(instance.qr_updated_at)}

    def pairing_code(self, instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
        instance = self.get(instance_id)
        if instance.provider is not Provider.WHATSAPPWEB:
            raise InstanceManagerError(ErrorCode.QR_NOT_AVAILABLE, "Pairing codes are for WhatsApp instances only")
        phone = body.get("phone_number")
        if not isinstance(phone, str) or not 7 <= sum("0" <= ch <= "9" for ch in phone) <= 15:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR,
                                       "phone_number is required: the account's number in international format, "
                                       "e.g. +15551234567")
        assert self.gateway is not None, "wired in chalicelib.wiring"
        answer = self.gateway.call(instance, "POST", "/api/v1/pairing-code", {"phone_number": phone})
        self.log.write(instance.id, "info", "Pairing code requested", SOURCE)
        return {"pairing_code": answer["data"]["code"], "phone_number": "+" + "".join(c for c in phone if "0" <= c <= "9")}

    def send_message(self, instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Through the instance's own API: the one way in when the tasks sit on private addresses."""
        instance = self.get(instance_id)
        unknown = sorted(set(body) - {"chatId", "text"})
        if unknown:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, f"Unknown field(s) {unknown}: send chatId and text")
        chat_id = body.get("chatId")
        if isinstance(chat_id, bool) or not isinstance(chat_id, str | int) or not str(chat_id).strip():
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, "chatId is required: the chat to send to")
        if not isinstance(body.get("text"), str) or not body["text"]:
            raise InstanceManagerError(ErrorCode.VALIDATION_ERROR, "text is required: a non-empty string")
        assert self.gateway is not None, "wired in chalicelib.wiring"
        answer = self.gateway.call(instance, "POST", "/api/v1/messages", {"chatId": str(body["chatId"]), "text": body["text"]})
        return dict(answer["data"])

    def logs(self, instance_id: str, tail: int) -> tuple[list[LogLine], int]:
        instance = self.get(instance_id)
        lines = self.log.tail(instance_id, tail)
        return lines, max(instance.log_lines, len(lines))

    def reconcile(self) -> int:
        """Bring the tasks in line with the desired states; returns how many tasks were (re)started."""
        started = 0
        for instance in self.repo.list_all():
            if instance.desired_state is DesiredState.RUNNING:
                if instance.task_handle is None and self.clock() - instance.updated_at < LAUNCH_GRACE:
                    continue  # a create or start is launching it right now
                if instance.task_handle is None or not self._is_alive(instance.task_handle):
                    with self.log.batched(instance.id):
                        if instance.task_handle is not None:
                            self.log.write(instance.id, "warn", "Provider task is gone or unhealthy; starting it again",
                                           "launcher")
                            self.launcher.stop(instance.task_handle)  # an unhealthy one is still running
                        # What the dead task last reported is no longer true.
                        self.repo.report(instance.id, status=Status.START)
                        self._launch(instance)
                    started += 1
            elif instance.task_handle is not None:
                self._stop_task(instance)
        return started

    def _is_alive(self, handle: str) -> bool:
        return self.launcher.describe(handle).state is not TaskState.STOPPED

    def _launch(self, instance: Instance) -> None:
        try:
            handle = self.launcher.launch(instance)
        except Exception as exc:  # the launcher's own failure; reconcile retries
            self.repo.report(instance.id, status=Status.ERROR)
            self.log.write(instance.id, "error", f"Could not start the provider task: {exc}", "launcher")
            return
        self.repo.set_task(instance.id, handle)
        self.log.write(instance.id, "info", f"Provider task started: {handle}", "launcher")

    def _stop_task(self, instance: Instance, forget: bool = True) -> None:
        if instance.task_handle is None:
            return
        self.launcher.stop(instance.task_handle)
        if forget:
            self.repo.set_task(instance.id, None)
        self.log.write(instance.id, "info", f"Provider task stopped: {instance.task_handle}", "launcher")
