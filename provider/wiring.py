"""A provider task's composition root: the adapters it shares with the Lambda functions
(chalicelib/adapters/shared.py: the repository, the auth store, the instance log, the publisher) and
its engine. It builds nothing of the Lambda's own (launchers, use cases, the webhook fan-out)."""

from __future__ import annotations

from chalicelib.adapters.shared import SharedAdapters
from chalicelib.core.types import Instance

from .engine import Engine
from .engines import make_engine


class ProviderContainer(SharedAdapters):
    def engine(self, instance: Instance) -> Engine:
        return make_engine(instance, self.settings, self.auth_store)
