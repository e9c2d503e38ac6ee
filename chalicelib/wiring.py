"""The composition root: picks and builds the adapters, lazily, so `import app` stays cheap."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from .adapters.shared import SharedAdapters
from .config import Settings
from .health import Backend
from .ports import DeliveryLog, Launcher

if TYPE_CHECKING:  # the adapters and use cases are imported where they are built, on first use
    from .adapters.ecs import EcsLauncher
    from .adapters.outages import ReachableLauncher
    from .services import InstanceService
    from .webhook_service import WebhookService
    from .webhooks import WebhookDeliverer


class Container(SharedAdapters):
    """The Lambda functions' (and `chalice local`'s) composition root."""

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
            Backend("logs", LOGS, self.log_store.probe),
            Backend("secrets", self.key_wrapper.backend, self.key_wrapper.probe),
            Backend("launcher", self._launcher.backend, self._launcher.probe),
        ]

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
