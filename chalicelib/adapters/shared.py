"""The adapters every process builds alike; each process's composition root extends them
(chalicelib/wiring.py for the Lambda functions and `chalice local`, provider/wiring.py for a task)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..instance_log import InstanceLog
from ..ports import AuthStore, InstanceRepository, SecretBox

if TYPE_CHECKING:
    from .cloudwatch import CloudWatchLogStore
    from .dynamo import Tables
    from .secrets import FileKeyWrapper, KmsKeyWrapper
    from .sqs import SqsEventPublisher


class SharedAdapters:
    """The adapters both the Lambda functions and a provider task use: AWS clients with bounded
    timeouts, the secret box, the tables, the instance repository, the WhatsApp auth store and the
    instance log. Built on first use, so importing costs nothing."""

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
        from .secrets import EnvelopeBox

        return EnvelopeBox(self.key_wrapper)

    @functools.cached_property
    def key_wrapper(self) -> FileKeyWrapper | KmsKeyWrapper:
        from .secrets import FileKeyWrapper, KmsKeyWrapper

        if self.settings.secrets_key_file:
            return FileKeyWrapper(self.settings.secrets_key_file)
        return KmsKeyWrapper(self.client("kms"), self.settings.kms_key_id)

    @functools.cached_property
    def tables(self) -> Tables:
        from .dynamo import define_tables

        return define_tables(self.settings)

    @functools.cached_property
    def repository(self) -> InstanceRepository:
        from .dynamo import DynamoInstanceRepository

        return DynamoInstanceRepository(self.tables, self.secret_box, self.settings)

    @functools.cached_property
    def auth_store(self) -> AuthStore:
        from .auth_store import DynamoAuthStore

        return DynamoAuthStore(self.tables, self.secret_box)

    @functools.cached_property
    def instance_log(self) -> InstanceLog:
        return InstanceLog(self.log_store, self.repository.count_log_lines)

    @functools.cached_property
    def log_store(self) -> CloudWatchLogStore:
        from .cloudwatch import CloudWatchLogStore

        return CloudWatchLogStore(self.client("logs"), self.settings.log_group)

    @functools.cached_property
    def publisher(self) -> SqsEventPublisher:
        from .sqs import SqsEventPublisher

        return SqsEventPublisher(self.client("sqs"), self.settings.events_queue)
