"""The composition root: picks and builds the adapters, lazily, so `import app` stays cheap."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .config import Settings
from .health import Backend
from .instance_log import InstanceLog
from .ports import AuthStore, DeliveryLog, InstanceRepository, Launcher, SecretBox

if TYPE_CHECKING:  # the adapters and use cases are imported where they are built, on first use
    from .adapters.cloudwatch import CloudWatchLogStore
    from .adapters.dynamo import Tables
    from .adapters.ecs import EcsLauncher
    from .adapters.outages import ReachableLauncher
    from .adapters.secrets import FileKeyWrapper, KmsKeyWrapper
    from .adapters.sqs import SqsEventPublisher
    from .services import InstanceService
    from .webhook_service import WebhookService
    from .webhooks import WebhookDeliverer


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def _session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.settings.region)

    @functools.cache  # noqa: B019 - the container lives as long as the process
    def client(self, service: str) -> Any:
        from botocore.config import Config

        s = self.settings
        # Someone waits for most calls: a stuck backend must fail within attempts x timeout, not minutes.
        return self._session.client(service, config=Config(
            connect_timeout=s.aws_connect_timeout_seconds, read_timeout=s.aws_read_timeout_seconds,
            retries={"total_max_attempts": s.aws_max_attempts, "mode": "standard"}))

    @functools.cached_property
    def secret_box(self) -> SecretBox:
        from .adapters.secrets import EnvelopeBox

        return EnvelopeBox(self._key_wrapper)

    @functools.cached_property
    def _key_wrapper(self) -> FileKeyWrapper | KmsKeyWrapper:
        from .adapters.secrets import FileKeyWrapper, KmsKeyWrapper

        if self.settings.secrets_key_file:
            return FileKeyWrapper(self.settings.secrets_key_file)
        return KmsKeyWrapper(self.client("kms"), self.settings.kms_key_id)

    @functools.cached_property
    def tables(self) -> Tables:
        from .adapters.dynamo import define_tables

        return define_tables(self.settings)

    @functools.cached_property
    def repository(self) -> InstanceRepository:
        from .adapters.dynamo import DynamoInstanceRepository

        return DynamoInstanceRepository(self.tables, self.secret_box, self.settings)

    @functools.cached_property
    def auth_store(self) -> AuthStore:
        from .adapters.auth_store import DynamoAuthStore

        return DynamoAuthStore(self.tables, self.secret_box)

    @functools.cached_property
    def instance_log(self) -> InstanceLog:
        return InstanceLog(self._log_store, self.repository.count_log_lines)

    @functools.cached_property
    def _log_store(self) -> CloudWatchLogStore:
        from .adapters.cloudwatch import CloudWatchLogStore

        return CloudWatchLogStore(self.client("logs"), self.settings.log_group)

    @functools.cached_property
    def launcher(self) -> Launcher:
        return self._launcher

    @functools.cached_property
    def _launcher(self) -> ReachableLauncher | EcsLauncher:  # the adapter itself, with its probe (no part of the port)
        if self.settings.launcher == "local":
            from .adapters.local_launcher import SupervisorLauncher
            from .adapters.outages import LOCAL_LAUNCHER, ReachableLauncher

            return ReachableLauncher(SupervisorLauncher(self.settings.local_launcher_url), LOCAL_LAUNCHER)
        from .adapters.ecs import EcsLauncher

        return EcsLauncher(self.client("ecs"), self.settings)

    @functools.cached_property
    def backends(self) -> list[Backend]:
        """What the deep health check probes. The adapters are built here, before the probes run in
        their threads: creating boto3 clients from one session is not thread-safe."""
        from .adapters import dynamo
        from .adapters.outages import DYNAMODB, LOGS, SQS

        return [
            Backend("dynamodb", DYNAMODB, functools.partial(dynamo.probe, self.tables)),
            Backend("sqs", SQS, self.publisher.probe),
            Backend("logs", LOGS, self._log_store.probe),
            Backend("secrets", self._key_wrapper.backend, self._key_wrapper.probe),
            Backend("launcher", self._launcher.backend, self._launcher.probe),
        ]

    @functools.cached_property
    def publisher(self) -> SqsEventPublisher:
        from .adapters.sqs import SqsEventPublisher

        return SqsEventPublisher(self.client("sqs"), self.settings.events_queue)

    @functools.cached_property
    def instances(self) -> InstanceService:
        from .adapters.instance_api import InstanceApiClient
        from .services import InstanceService

        return InstanceService(self.repository, self.launcher, self.instance_log, self.settings,
                               gateway=InstanceApiClient(), deliveries=self.deliveries, auth_store=self.auth_store)

    @functools.cached_property
    def webhook_settings(self) -> WebhookService:
        from .webhook_service import WebhookService

        return WebhookService(self.repository, self.deliveries, self.publisher, self.instance_log, self.settings)

    @functools.cached_property
    def deliveries(self) -> DeliveryLog:
        from .adapters.deliveries import DynamoDeliveryLog

        return DynamoDeliveryLog(self.tables, self.settings.webhook_log_retention_days)

    @functools.cached_property
    def webhooks(self) -> WebhookDeliverer:
        from .adapters.deliveries import DynamoRateLimiter
        from .adapters.sqs import SqsDeliveryQueue, SqsEventPublisher
        from .core.urls import AddressPolicy
        from .outbound import PinnedHttpClient
        from .webhooks import WebhookDeliverer

        s = self.settings
        queue = SqsDeliveryQueue(self.client("sqs"), self.publisher, SqsEventPublisher(self.client("sqs"), s.events_dlq))
        return WebhookDeliverer(
            self.repository, self.instance_log, self.deliveries, DynamoRateLimiter(self.tables), queue,
            PinnedHttpClient(AddressPolicy(s.webhook_allow_private)).post, timeout=s.webhook_timeout_seconds,
            retry_base_seconds=s.webhook_retry_base_seconds, max_age_seconds=s.webhook_max_age_seconds,
            rate_per_second=s.webhook_rate_per_second,
        )


_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        _container = Container(Settings.from_env())
    return _container


def reset() -> None:
    """Forget every adapter (tests change the environment between cases)."""
    global _container
    _container = None
