"""Each process of the local stack gets the settings it reads and nothing else (stack/environments.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from chalicelib.config import Settings
from stack import environments
from stack.environments import api_environment, fanout_environment, provider_environment

# What the stack process holds (stack/__main__.py stack_environment), plus what a person may set.
STACK = {
    "PATH": "/usr/bin:/bin", "HOME": "/home/someone", "LANG": "C.UTF-8",
    "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:4000",
    "SECRETS_KEY_FILE": "/data/secrets.key", "PYTHONUNBUFFERED": "1", "DATA_DIR": "/data", "LOCAL_STACK_RUN": "r1",
    "INSTANCES_TABLE": "t-instances", "LEASES_TABLE": "t-leases", "AUTH_TABLE": "t-auth",
    "DELIVERIES_TABLE": "t-deliveries", "EVENTS_QUEUE_NAME": "q.fifo", "EVENTS_DLQ_NAME": "dlq.fifo",
    "LOG_GROUP_NAME": "/logs", "KMS_KEY_ID": "alias/k",
    "ADMIN_API_KEY": "the-admin-key", "LAUNCHER": "local", "LOCAL_LAUNCHER_URL": "http://127.0.0.1:4001",
    "LOCAL_LAUNCHER_SECRET_FILE": "/data/launcher.secret",
    "MAX_INSTANCES_PER_COMPANY": "3", "INSTANCE_PORT_RANGE": "9000-9010", "WEBHOOK_ALLOW_PRIVATE": "true",
    "WEBHOOK_RETRY_BASE_SECONDS": "1", "WEBHOOK_TIMEOUT_SECONDS": "4", "WEBHOOK_MAX_AGE_SECONDS": "60",
    "WEBHOOK_RATE_PER_SECOND": "5", "WEBHOOK_LOG_RETENTION_DAYS": "2", "WEBHOOK_SECRET_OVERLAP_SECONDS": "30",
    "LOCAL_SQS_VISIBILITY_SECONDS": "3",
    "TELEGRAM_API_ROOT": "http://127.0.0.1:9999/tg", "WHATSAPP_WS_URL": "ws://127.0.0.1:9998",
    "WHATSAPP_ROOT_PUBLIC_KEY": "ab" * 32, "WHATSAPP_QR_TIMEOUT_MS": "5000",
    # a person's shell: none of it is for the children
    "GITHUB_TOKEN": "ghp_not_for_children", "OPENAI_API_KEY": "sk-not-for-children",
}
SECRETS = ("ADMIN_API_KEY", "LOCAL_LAUNCHER_SECRET_FILE", "GITHUB_TOKEN", "OPENAI_API_KEY")
FULL = Settings.from_env(STACK)
RESOURCE_FIELDS: dict[str, Any] = dict(region=FULL.region, instances_table=FULL.instances_table, leases_table=FULL.leases_table,
                       auth_table=FULL.auth_table, deliveries_table=FULL.deliveries_table, events_queue=FULL.events_queue,
                       events_dlq=FULL.events_dlq, log_group=FULL.log_group, kms_key_id=FULL.kms_key_id,
                       secrets_key_file=FULL.secrets_key_file)


class Recording(Mapping[str, str]):
    """An environment that remembers which names were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(name)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_a_provider_gets_the_resources_and_its_own_engine_peer_and_no_secret() -> None:
    telegram = provider_environment(STACK, "i-1", "telegram", 4242)
    whatsapp = provider_environment(STACK, "i-2", "whatsappweb", 4242)
    for env in (telegram, whatsapp):
        assert not set(SECRETS) & set(env)
        assert not any(name.startswith("WEBHOOK_") for name in env)
        assert env["DATA_DIR"] == "/data" and env["LOCAL_STACK_RUN"] == "r1"  # the marker of a stack's child
        assert env["INSTANCE_BIND_HOST"] == "127.0.0.1" and env["EXIT_WITH_PARENT"] == "4242"
    assert telegram["INSTANCE_ID"] == "i-1" and "WHATSAPP_WS_URL" not in telegram
    assert whatsapp["INSTANCE_ID"] == "i-2" and "TELEGRAM_API_ROOT" not in whatsapp
    # what the provider reads (provider/__main__.py, provider/engines) is what the stack holds
    seen_by_telegram = Settings.from_env(telegram)
    assert seen_by_telegram == replace(Settings(), **RESOURCE_FIELDS, telegram_api_root=FULL.telegram_api_root)
    seen_by_whatsapp = Settings.from_env(whatsapp)
    assert seen_by_whatsapp == replace(Settings(), **RESOURCE_FIELDS, whatsapp_ws_url=FULL.whatsapp_ws_url,
                                       whatsapp_root_public_key=FULL.whatsapp_root_public_key,
                                       whatsapp_qr_timeout_ms=FULL.whatsapp_qr_timeout_ms)


def test_the_api_gets_the_admin_key_and_the_launcher_secret_file_the_fanout_does_not() -> None:
    api, fanout = api_environment(STACK), fanout_environment(STACK)
    assert api["ADMIN_API_KEY"] == "the-admin-key" and api["LOCAL_LAUNCHER_SECRET_FILE"] == "/data/launcher.secret"
    assert not {"ADMIN_API_KEY", "LOCAL_LAUNCHER_SECRET_FILE", "LOCAL_LAUNCHER_URL"} & set(fanout)
    assert fanout["LOCAL_SQS_VISIBILITY_SECONDS"] == "3" and "LOCAL_SQS_VISIBILITY_SECONDS" not in api
    for env in (api, fanout):
        assert "GITHUB_TOKEN" not in env and "OPENAI_API_KEY" not in env
        assert "TELEGRAM_API_ROOT" not in env and "WHATSAPP_WS_URL" not in env  # the engines' peers: tasks only
        assert env["DATA_DIR"] == "/data" and env["LOCAL_STACK_RUN"] == "r1"
    functions: dict[str, Any] = dict(max_instances_per_company=3, port_range=(9000, 9010), webhook_allow_private=True,
                     webhook_retry_base_seconds=1, webhook_timeout_seconds=4.0, webhook_max_age_seconds=60,
                     webhook_rate_per_second=5, webhook_log_retention_days=2, webhook_secret_overlap_seconds=30)
    assert Settings.from_env(api) == replace(Settings(), **RESOURCE_FIELDS, **functions, admin_api_key="the-admin-key",
                                             launcher="local", local_launcher_url="http://127.0.0.1:4001")
    assert Settings.from_env(fanout) == replace(Settings(), **RESOURCE_FIELDS, **functions)


def test_every_process_gets_the_aws_client_settings() -> None:
    tuned = {**STACK, "AWS_CONNECT_TIMEOUT_SECONDS": "1", "AWS_READ_TIMEOUT_SECONDS": "3", "AWS_MAX_ATTEMPTS": "2"}
    for env in (provider_environment(tuned, "i", "telegram", 1), api_environment(tuned), fanout_environment(tuned)):
        assert {k: env[k] for k in ("AWS_CONNECT_TIMEOUT_SECONDS", "AWS_READ_TIMEOUT_SECONDS", "AWS_MAX_ATTEMPTS")} == \
            {"AWS_CONNECT_TIMEOUT_SECONDS": "1", "AWS_READ_TIMEOUT_SECONDS": "3", "AWS_MAX_ATTEMPTS": "2"}


def test_every_setting_the_code_reads_has_a_place() -> None:
    """A new setting in chalicelib/config.py must be given to the processes that read it (or be declared
    of no use locally), or the local stack would silently run with its default."""
    recording = Recording()
    Settings.from_env(recording)
    placed = set(environments.PROCESS + environments.STACK + environments.AWS_CLIENTS + environments.RESOURCES
                 + environments.FUNCTIONS + environments.API_ONLY + environments.FANOUT_ONLY + environments.NOT_LOCAL)
    placed |= {name for names in environments.ENGINE_PEERS.values() for name in names}
    assert recording.asked - placed == set()
