"""Engines, one per provider. `make_engine` picks one for an instance."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.core.types import Instance, Provider

from ..engine import Engine


def make_engine(instance: Instance, settings: Settings) -> Engine:
    if instance.provider is Provider.TELEGRAM:
        from .telegram import TelegramEngine

        return TelegramEngine(instance.secrets["bot_token"], settings.telegram_api_root)
    from .unavailable import UnavailableEngine

    return UnavailableEngine(instance.provider.value)
