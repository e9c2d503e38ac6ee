// Client of the Instance Manager API: creates and manages WhatsApp and Telegram instances.
// It uses the platform's fetch (Node 18+, browsers), not axios.

import { DEFAULT_BASE_URL, InstanceManagerClient } from './client.js';

export {
  DEFAULT_BASE_URL,
  DEFAULT_QR_WAIT_MS,
  DEFAULT_TIMEOUT_MS,
  InstanceManagerClient,
  type FetchLike,
  type InstanceManagerClientOptions,
  type QRCodeOptions,
} from './client.js';
export { HTTP_STATUS, InstanceManagerError, type ApiErrorBody, type ApiErrorCode, type ClientErrorCode, type ErrorCode } from './errors.js';
export type {
  ActionResult,
  ApiKeyInfo,
  AuthStatus,
  AuthStatusInfo,
  CreateInstanceRequest,
  CreateInstanceResponse,
  CreateTelegramInstanceRequest,
  CreateWhatsAppInstanceRequest,
  Delivery,
  DeliveryDetail,
  DeliveryId,
  DeliveryQuery,
  DeliveryRetry,
  DeliveryState,
  DesiredState,
  Health,
  Instance,
  InstanceLogs,
  InstanceStatus,
  InstanceType,
  LogLine,
  MessageEvent,
  OpenApiDocument,
  PairingCode,
  SentMessage,
  Provider,
  QRCode,
  WebhookConfig,
  WebhookSecret,
  WebhookSettings,
  WebhookUpdate,
  WebhookView,
} from './types.js';

/** A preconfigured client for http://localhost:3000; point it elsewhere with setBaseUrl. */
export const instanceManagerClient = new InstanceManagerClient(DEFAULT_BASE_URL);
