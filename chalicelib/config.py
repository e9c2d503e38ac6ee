"""Settings, all from environment variables. The README's configuration table lists each one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _port_range(value: str) -> tuple[int, int]:
    low, _, high = value.partition("-")
    first, last = int(low), int(high or low)
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"INSTANCE_PORT_RANGE must look like 8080-8999, got {value!r}")
    return first, last


def _positive(value: str, name: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    instances_table: str = "instance-manager-instances"
    leases_table: str = "instance-manager-leases"
    auth_table: str = "instance-manager-auth"
    deliveries_table: str = "instance-manager-deliveries"
    events_queue: str = "instance-manager-events.fifo"
    events_dlq: str = "instance-manager-events-dlq.fifo"
    log_group: str = "/instance-manager/instances"
    kms_key_id: str = "alias/instance-manager"
    secrets_key_file: str = ""
    launcher: str = "ecs"
    local_launcher_url: str = "http://127.0.0.1:3001"
    ecs_cluster: str = "instance-manager"
    ecs_task_definitions: tuple[tuple[str, str], ...] = (
        ("telegram", "instance-manager-telegram"),
        ("whatsappweb", "instance-manager-whatsappweb"),
    )
    ecs_subnets: tuple[str, ...] = ()
    ecs_security_groups: tuple[str, ...] = ()
    ecs_container_name: str = "provider"
    admin_api_key: str = ""
    max_instances_per_company: int = 10
    port_range: tuple[int, int] = (8080, 8999)
    telegram_api_root: str = "https://api.telegram.org"
    whatsapp_ws_url: str = ""
    whatsapp_root_public_key: str = ""
    whatsapp_qr_timeout_ms: int | None = None
    webhook_allow_private: bool = False
    webhook_retry_base_seconds: int = 2
    webhook_timeout_seconds: float = 10.0
    webhook_max_age_seconds: int = 86400
    webhook_rate_per_second: int = 100
    webhook_log_retention_days: int = 7
    webhook_secret_overlap_seconds: int = 3600
    # Sized for a request a person waits for: a stuck backend costs at most attempts x read timeout.
    aws_connect_timeout_seconds: float = 2.0
    aws_read_timeout_seconds: float = 3.0
    aws_max_attempts: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        def csv(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())

        return cls(
            region=get("AWS_REGION", env.get("AWS_DEFAULT_REGION") or d.region),
            instances_table=get("INSTANCES_TABLE", d.instances_table),
            leases_table=get("LEASES_TABLE", d.leases_table),
            auth_table=get("AUTH_TABLE", d.auth_table),
            deliveries_table=get("DELIVERIES_TABLE", d.deliveries_table),
            events_queue=get("EVENTS_QUEUE_NAME", d.events_queue),
            events_dlq=get("EVENTS_DLQ_NAME", d.events_dlq),
            log_group=get("LOG_GROUP_NAME", d.log_group),
            kms_key_id=get("KMS_KEY_ID", d.kms_key_id),
            secrets_key_file=get("SECRETS_KEY_FILE", ""),
            launcher=get("LAUNCHER", d.launcher),
            local_launcher_url=get("LOCAL_LAUNCHER_URL", d.local_launcher_url),
            ecs_cluster=get("ECS_CLUSTER", d.ecs_cluster),
            ecs_task_definitions=(
                ("telegram", get("ECS_TASK_DEFINITION_TELEGRAM", dict(d.ecs_task_definitions)["telegram"])),
                ("whatsappweb", get("ECS_TASK_DEFINITION_WHATSAPPWEB", dict(d.ecs_task_definitions)["whatsappweb"])),
            ),
            ecs_subnets=csv("ECS_SUBNETS"),
            ecs_security_groups=csv("ECS_SECURITY_GROUPS"),
            ecs_container_name=get("ECS_CONTAINER_NAME", d.ecs_container_name),
            admin_api_key=env.get("ADMIN_API_KEY", ""),
            max_instances_per_company=int(get("MAX_INSTANCES_PER_COMPANY", str(d.max_instances_per_company))),
            port_range=_port_range(get("INSTANCE_PORT_RANGE", "8080-8999")),
            telegram_api_root=get("TELEGRAM_API_ROOT", d.telegram_api_root).rstrip("/"),
            whatsapp_ws_url=get("WHATSAPP_WS_URL", ""),
            whatsapp_root_public_key=get("WHATSAPP_ROOT_PUBLIC_KEY", ""),
            whatsapp_qr_timeout_ms=int(env["WHATSAPP_QR_TIMEOUT_MS"]) if env.get("WHATSAPP_QR_TIMEOUT_MS") else None,
            webhook_allow_private=_bool(env.get("WEBHOOK_ALLOW_PRIVATE")),
            webhook_retry_base_seconds=int(get("WEBHOOK_RETRY_BASE_SECONDS", str(d.webhook_retry_base_seconds))),
            webhook_timeout_seconds=float(get("WEBHOOK_TIMEOUT_SECONDS", str(d.webhook_timeout_seconds))),
            webhook_max_age_seconds=int(get("WEBHOOK_MAX_AGE_SECONDS", str(d.webhook_max_age_seconds))),
            webhook_rate_per_second=int(get("WEBHOOK_RATE_PER_SECOND", str(d.webhook_rate_per_second))),
            webhook_log_retention_days=int(get("WEBHOOK_LOG_RETENTION_DAYS", str(d.webhook_log_retention_days))),
            webhook_secret_overlap_seconds=int(get("WEBHOOK_SECRET_OVERLAP_SECONDS",
                                                   str(d.webhook_secret_overlap_seconds))),
            aws_connect_timeout_seconds=_positive(get("AWS_CONNECT_TIMEOUT_SECONDS", str(d.aws_connect_timeout_seconds)),
                                                  "AWS_CONNECT_TIMEOUT_SECONDS"),
            aws_read_timeout_seconds=_positive(get("AWS_READ_TIMEOUT_SECONDS", str(d.aws_read_timeout_seconds)),
                                               "AWS_READ_TIMEOUT_SECONDS"),
            aws_max_attempts=int(_positive(get("AWS_MAX_ATTEMPTS", str(d.aws_max_attempts)), "AWS_MAX_ATTEMPTS")),
        )
