"""The peers every end-to-end module needs, one of each per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.telegram_bot_api import FakeTelegramServer
from tests.peers.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegramServer]:
    server = FakeTelegramServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.close()
