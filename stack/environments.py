"""What each process of the local stack is given: only the settings it reads, as in AWS.

infra/service.yaml is the model: a provider task definition gets the resource names and its engine's
peer (TELEGRAM_API_ROOT or WHATSAPP_WS_URL); every Lambda function gets the resource names and the
service's limits; only the API function gets ADMIN_API_KEY. Here the API function is `chalice local`,
the fan-out function is the SQS loop, and the tasks are the provider processes. Anything not named
below stays in the stack process (a shell's tokens, the admin key for the providers, ...)."""

from __future__ import annotations

from collections.abc import Mapping

# Plumbing every process needs to start at all; none of it is a secret.
PROCESS = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
# What the stack forces on every child: moto's endpoint and its dummy credentials, the data key file.
# DATA_DIR (unread by the children) and LOCAL_STACK_RUN mark them as this stack's, so that the next
# start, and the tests, can find whatever a killed stack left behind.
STACK = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
         "AWS_ENDPOINT_URL", "SECRETS_KEY_FILE", "PYTHONUNBUFFERED", "DATA_DIR", "LOCAL_STACK_RUN")
# How every AWS client of every process behaves (timeouts, retries).
AWS_CLIENTS = ("AWS_CONNECT_TIMEOUT_SECONDS", "AWS_READ_TIMEOUT_SECONDS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
# The resource names, as the task definitions and the functions all get them.
RESOURCES = ("INSTANCES_TABLE", "LEASES_TABLE", "AUTH_TABLE", "DELIVERIES_TABLE", "EVENTS_QUEUE_NAME",
             "EVENTS_DLQ_NAME", "LOG_GROUP_NAME", "KMS_KEY_ID")
# Each engine's peer, given only to that engine's processes (one task definition per engine in AWS).
ENGINE_PEERS = {
    "telegram": ("TELEGRAM_API_ROOT",),
    "whatsappweb": ("WHATSAPP_WS_URL", "WHATSAPP_ROOT_PUBLIC_KEY", "WHATSAPP_QR_TIMEOUT_MS"),
}
# The Lambda functions' shared settings (the Globals of infra/service.yaml).
FUNCTIONS = ("MAX_INSTANCES_PER_COMPANY", "INSTANCE_PORT_RANGE", "WEBHOOK_ALLOW_PRIVATE",
             "WEBHOOK_RETRY_BASE_SECONDS", "WEBHOOK_TIMEOUT_SECONDS", "WEBHOOK_MAX_AGE_SECONDS",
             "WEBHOOK_RATE_PER_SECOND", "WEBHOOK_LOG_RETENTION_DAYS", "WEBHOOK_SECRET_OVERLAP_SECONDS")
# Only the API: its key, and how it reaches the local launcher (the path of the launcher's secret,
# never the secret itself).
API_ONLY = ("ADMIN_API_KEY", "LAUNCHER", "LOCAL_LAUNCHER_URL", "LOCAL_LAUNCHER_SECRET_FILE")
FANOUT_ONLY = ("LOCAL_SQS_VISIBILITY_SECONDS",)
# How much of their libraries' logging the stack's Python components write (stack/console.py). A
# provider's libraries log only warnings, whatever the level: their records can carry its bot token.
CONSOLE = ("LOG_LEVEL",)
# Settings chalicelib/config.py reads that no local process needs: the ECS launcher is not used here.
NOT_LOCAL = ("ECS_CLUSTER", "ECS_TASK_DEFINITION_TELEGRAM", "ECS_TASK_DEFINITION_WHATSAPPWEB", "ECS_SUBNETS",
             "ECS_SECURITY_GROUPS", "ECS_CONTAINER_NAME")


def _pick(env: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: env[name] for name in names if name in env}


def provider_environment(env: Mapping[str, str], instance_id: str, provider: str, parent_pid: int) -> dict[str, str]:
    return {
        **_pick(env, PROCESS + STACK + AWS_CLIENTS + RESOURCES + ENGINE_PEERS.get(provider, ()) + ("INSTANCE_ADVERTISE_HOST",)),
        "INSTANCE_ID": instance_id,
        "INSTANCE_BIND_HOST": "127.0.0.1",
        "EXIT_WITH_PARENT": str(parent_pid),
    }


def api_environment(env: Mapping[str, str]) -> dict[str, str]:
    return _pick(env, PROCESS + STACK + AWS_CLIENTS + RESOURCES + FUNCTIONS + API_ONLY + CONSOLE)


def fanout_environment(env: Mapping[str, str]) -> dict[str, str]:
    return _pick(env, PROCESS + STACK + AWS_CLIENTS + RESOURCES + FUNCTIONS + FANOUT_ONLY + CONSOLE)
