"""Engines, one per provider. `make_engine` picks one for an instance."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.core.types import Instance, Provider
from chalicelib.ports import AuthStore

from ..engine import Engine


def make_engine(instance: Instance, settings: Settings, auth_store: AuthStore) -> Engine:
    if instance.provider is Provider.TELEGRAM:
        from .telegram import TelegramEngine

        return TelegramEngine(instance.secrets["bot_token"], settings.telegram_api_root)
    from .whatsapp import WhatsAppEngine

    return WhatsAppEngine(instance.id, auth_store, settings.whatsapp_ws_url, settings.whatsapp_root_public_key,
                          qr_timeout_ms=settings.whatsapp_qr_timeout_ms)
