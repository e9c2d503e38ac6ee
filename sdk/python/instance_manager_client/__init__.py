"""Python client for the Instance Manager API: creates and manages WhatsApp and Telegram instances.

    from instance_manager_client import InstanceManagerClient, InstanceManagerError

    client = InstanceManagerClient("http://localhost:3000", api_key="...")
    instance_id = client.create_telegram_instance("acme", "123456789:AAbb...", {"url": "https://example.com/hook"})
    print(client.get_auth_status(instance_id))

Every failure raises InstanceManagerError, with `status` (HTTP, 0 when there was no answer) and `code`
(the API's error code, e.g. INSTANCE_NOT_FOUND). Depends on requests only.
"""

from ._client import DEFAULT_BASE_URL, InstanceManagerClient
from ._errors import HTTP_STATUS, ErrorCode, InstanceManagerError
from ._types import (
    ActionResult,
    ApiKeyInfo,
    AuthStatus,
    AuthStatusInfo,
    CreateInstanceRequest,
    CreateInstanceResponse,
    Delivery,
    DeliveryDetail,
    DeliveryId,
    DeliveryRetry,
    DeliveryState,
    DesiredState,
    Health,
    Instance,
    InstanceLogs,
    LogLine,
    OpenApiDocument,
    PairingCode,
    ProcessDetails,
    ProcessResult,
    Provider,
    QRCode,
    SentMessage,
    Status,
    TelegramConfig,
    Webhook,
    WebhookSecret,
    WebhookSettings,
    WebhookUpdate,
    WebhookView,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "HTTP_STATUS",
    "ActionResult",
    "ApiKeyInfo",
    "AuthStatus",
    "AuthStatusInfo",
    "CreateInstanceRequest",
    "CreateInstanceResponse",
    "Delivery",
    "DeliveryDetail",
    "DeliveryId",
    "DeliveryRetry",
    "DeliveryState",
    "DesiredState",
    "ErrorCode",
    "Health",
    "Instance",
    "InstanceLogs",
    "InstanceManagerClient",
    "InstanceManagerError",
    "LogLine",
    "OpenApiDocument",
    "PairingCode",
    "ProcessDetails",
    "ProcessResult",
    "Provider",
    "QRCode",
    "SentMessage",
    "Status",
    "TelegramConfig",
    "Webhook",
    "WebhookSecret",
    "WebhookSettings",
    "WebhookUpdate",
    "WebhookView",
    "__version__",
]
