// The API's wire shapes, as the OpenAPI document (GET /openapi.json) describes them.

export type Provider = 'whatsappweb' | 'telegram';
export type InstanceStatus = 'start' | 'qr_ready' | 'authenticated' | 'client_ready' | 'stopped' | 'error';
export type AuthStatus = 'pending' | 'qr_ready' | 'authenticated' | 'failed' | 'disconnected';
export type DesiredState = 'running' | 'stopped';
export type InstanceType = 'api';
export type DeliveryState = 'pending' | 'failed' | 'delivered' | 'dead';

/** `api_webhook_schema` of a create request: where incoming messages are POSTed. */
export interface WebhookConfig {
  url: string;
  headers?: Record<string, string>;
  /** Defaults to true. */
  enabled?: boolean;
  /** Event types to deliver; defaults to ['message']. */
  events?: string[];
}

interface CreateInstanceCommon {
  company_id: string;
  /** Defaults to ["api"], the one type there is. */
  type_instance?: InstanceType[];
  api_webhook_schema?: WebhookConfig;
}

export interface CreateWhatsAppInstanceRequest extends CreateInstanceCommon {
  provider: 'whatsappweb';
  config?: Record<string, never>;
}

export interface CreateTelegramInstanceRequest extends CreateInstanceCommon {
  provider: 'telegram';
  config: { bot_token: string };
}

export type CreateInstanceRequest = CreateWhatsAppInstanceRequest | CreateTelegramInstanceRequest;

export interface CreateInstanceResponse {
  success: true;
  instance_id: string;
  message: string;
  process_result: {
    success: boolean;
    details: {
      /** Keyed by type: { api: 8080 }. */
      ports: Record<string, number>;
      /** The instance API's key. */
      api_key: string;
      /** Verifies the webhook-signature header of the webhooks (Standard Webhooks). */
      webhook_secret: string | null;
    };
  };
}

/** The configured webhook as listed: header names only, their values are secrets. */
export interface WebhookView {
  url: string;
  enabled: boolean;
  headers: string[];
  events: string[];
}

export interface Instance {
  id: string;
  company_id: string;
  provider: Provider;
  type_instance: InstanceType[];
  status: InstanceStatus;
  auth_status: AuthStatus;
  desired_state: DesiredState;
  ports: Record<string, number>;
  account: string | null;
  /** Where the instance API listens. */
  host: string | null;
  webhook: WebhookView | null;
  created_at: string;
  updated_at: string;
}

export interface ApiKeyInfo {
  api_key: string;
  generated_at: string;
  last_use: string | null;
  usage_count: number;
}

export interface QRCode {
  /** data:image/png;base64,... */
  qr_url: string;
  /** A page that shows the current QR to a person. */
  url: string;
  /** The raw QR string. */
  qr: string;
  updated_at: string | null;
}

export interface PairingCode {
  pairing_code: string;
  phone_number: string;
}

export interface SentMessage {
  id: string;
}

export interface AuthStatusInfo {
  status: AuthStatus;
  authenticated: boolean;
  account: string | null;
  instance_status: InstanceStatus;
}

export interface LogLine {
  timestamp: string;
  level: string;
  message: string;
  source: string;
}

export interface InstanceLogs {
  logs: LogLine[];
  total_lines: number;
  tail: number;
}

export interface ActionResult {
  success: true;
  message: string;
}

/** PATCH .../webhook: the fields sent replace the current ones (headers as a whole). */
export type WebhookUpdate = Partial<WebhookConfig>;

export interface WebhookSettings {
  webhook: WebhookView | null;
  previous_secret_valid_until: string | null;
}

export interface WebhookSecret {
  /** whsec_<base64> */
  webhook_secret: string;
  previous_secret_valid_until: string | null;
}

export interface DeliveryId {
  delivery_id: string;
}

export interface Delivery {
  id: string;
  /** The event type (message, instance.status, qr, message.ack, webhook.test). */
  event: string;
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeliveryDetail extends Delivery {
  /** What was POSTed. */
  payload: Record<string, unknown>;
}

export interface DeliveryRetry {
  delivery_id: string;
  state: DeliveryState;
}

export interface DeliveryQuery {
  state?: DeliveryState;
  /** 1-100, default 50. */
  limit?: number;
}

export interface Health {
  status: 'healthy';
  timestamp: string;
}

/** The webhook payload of an incoming message. */
export interface MessageEvent {
  instance_id: string;
  provider: Provider;
  message: {
    id: string;
    body: string;
    fromMe: boolean;
    timestamp: string;
    contact: string;
    type: string;
    chatId: string;
  };
}

export type OpenApiDocument = Record<string, unknown> & { openapi: string; paths: Record<string, unknown> };
