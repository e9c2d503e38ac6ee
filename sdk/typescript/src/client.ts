// InstanceManagerClient: every operation of the manager API, one method each, on the platform's fetch.

import { InstanceManagerError } from './errors.js';
import type {
  ActionResult,
  ApiKeyInfo,
  AuthStatusInfo,
  CreateInstanceRequest,
  CreateInstanceResponse,
  Delivery,
  DeliveryDetail,
  DeliveryId,
  DeliveryQuery,
  DeliveryRetry,
  Health,
  Instance,
  InstanceLogs,
  OpenApiDocument,
  PairingCode,
  SentMessage,
  QRCode,
  WebhookConfig,
  WebhookSecret,
  WebhookSettings,
  WebhookUpdate,
} from './types.js';

export const DEFAULT_BASE_URL = 'http://localhost:3000';
/** The seed's bound for create and delete. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_QR_WAIT_MS = 30_000;
const QR_POLL_INTERVAL_MS = 500;
const PING_TIMEOUT_MS = 5_000;
// A WhatsApp instance in these states is on its way to showing a QR.
const QR_COMING = new Set(['start', 'qr_ready']);

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface InstanceManagerClientOptions {
  /** The admin key (ADMIN_API_KEY), sent as x-api-key. */
  apiKey?: string;
  /** Per request; default 30 000. */
  timeoutMs?: number;
  /** Default: the platform's fetch (Node 18+, browsers, Deno, Bun). */
  fetch?: FetchLike;
  /** Added to every request. */
  headers?: Record<string, string>;
}

export interface QRCodeOptions {
  /** How long to wait for a QR that is on its way (default 30 000); 0: the API's answer as it is. */
  waitMs?: number;
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string>;
  timeoutMs?: number;
}

export class InstanceManagerClient {
  private baseUrl: string;
  private apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: FetchLike;
  private readonly headers: Record<string, string>;

  constructor(baseUrl: string = DEFAULT_BASE_URL, options: InstanceManagerClientOptions = {}) {
    this.baseUrl = normalize(baseUrl);
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Looked up at call time and never called as a method of another object (browsers refuse that).
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = { ...options.headers };
  }

  // ---- configuration ----------------------------------------------------------------------------
  setBaseUrl(url: string): void {
    this.baseUrl = normalize(url);
  }

  getBaseUrl(): string {
    return this.baseUrl;
  }

  setApiKey(apiKey: string | undefined): void {
    this.apiKey = apiKey;
  }

  // ---- instances --------------------------------------------------------------------------------
  async createInstance(body: CreateInstanceRequest): Promise<CreateInstanceResponse> {
    return this.request<CreateInstanceResponse>('POST', '/api/v1/instances', { body });
  }

  /** Creates a WhatsApp instance and returns its id; its QR follows within seconds (getQRCode). */
  async createWhatsAppInstance(companyId: string, webhook?: WebhookConfig): Promise<string> {
    const created = await this.createInstance({
      company_id: companyId,
      provider: 'whatsappweb',
      type_instance: ['api'],
      ...(webhook ? { api_webhook_schema: webhook } : {}),
    });
    return created.instance_id;
  }

  /** Creates a Telegram instance logged in with the bot's token and returns its id. */
  async createTelegramInstance(companyId: string, botToken: string, webhook?: WebhookConfig): Promise<string> {
    const created = await this.createInstance({
      company_id: companyId,
      provider: 'telegram',
      type_instance: ['api'],
      config: { bot_token: botToken },
      ...(webhook ? { api_webhook_schema: webhook } : {}),
    });
    return created.instance_id;
  }

  /** Every instance, or one company's. */
  async getAllInstances(companyId?: string): Promise<Instance[]> {
    const query = companyId ? { company_id: companyId } : undefined;
    return (await this.request<{ data: Instance[] }>('GET', '/api/v1/instances', { query })).data;
  }

  async getInstance(instanceId: string): Promise<Instance> {
    return (await this.request<{ data: Instance }>('GET', instancePath(instanceId))).data;
  }

  async deleteInstance(instanceId: string): Promise<ActionResult> {
    return this.request<ActionResult>('DELETE', instancePath(instanceId));
  }

  async getInstanceApiKey(instanceId: string): Promise<ApiKeyInfo> {
    return (await this.request<{ data: ApiKeyInfo }>('GET', instancePath(instanceId, '/current-api-key'))).data;
  }

  // ---- lifecycle --------------------------------------------------------------------------------
  async startInstance(instanceId: string): Promise<ActionResult> {
    return this.request<ActionResult>('POST', instancePath(instanceId, '/start'));
  }

  async stopInstance(instanceId: string): Promise<ActionResult> {
    return this.request<ActionResult>('POST', instancePath(instanceId, '/stop'));
  }

  async restartInstance(instanceId: string): Promise<ActionResult> {
    return this.request<ActionResult>('POST', instancePath(instanceId, '/restart'));
  }

  // ---- login ------------------------------------------------------------------------------------
  /**
   * The pending WhatsApp QR. A WhatsApp instance shows its first QR a few seconds after create or
   * start: while it is on its way, this waits for it (up to `waitMs`). With waitMs 0, or when no QR is
   * coming (Telegram, logged in, stopped, error), the API's 409 QR_NOT_AVAILABLE is thrown at once.
   */
  async getQRCode(instanceId: string, options: QRCodeOptions = {}): Promise<QRCode> {
    const deadline = Date.now() + (options.waitMs ?? DEFAULT_QR_WAIT_MS);
    for (;;) {
      try {
        return (await this.request<{ data: QRCode }>('GET', instancePath(instanceId, '/qr'))).data;
      } catch (error) {
        if (!(error instanceof InstanceManagerError) || error.code !== 'QR_NOT_AVAILABLE' || Date.now() >= deadline) {
          throw error;
        }
        const instance = await this.getInstance(instanceId);
        if (instance.provider !== 'whatsappweb' || !QR_COMING.has(instance.status)) throw error;
      }
      await sleep(QR_POLL_INTERVAL_MS);
    }
  }

  /** A code to type on the phone instead of scanning the QR (WhatsApp). */
  async requestPairingCode(instanceId: string, phoneNumber: string): Promise<PairingCode> {
    const body = { phone_number: phoneNumber };
    return (await this.request<{ data: PairingCode }>('POST', instancePath(instanceId, '/pairing-code'), { body })).data;
  }

  /** Send a text through the instance (the manager forwards it to the instance's own API). */
  async sendMessage(instanceId: string, chatId: string, text: string): Promise<SentMessage> {
    const body = { chatId, text };
    return (await this.request<{ data: SentMessage }>('POST', instancePath(instanceId, '/messages'), { body })).data;
  }

  async getAuthStatus(instanceId: string): Promise<AuthStatusInfo> {
    return (await this.request<{ data: AuthStatusInfo }>('GET', instancePath(instanceId, '/auth-status'))).data;
  }

  // ---- webhook and its deliveries --------------------------------------------------------------
  async getWebhook(instanceId: string): Promise<WebhookSettings> {
    return (await this.request<{ data: WebhookSettings }>('GET', instancePath(instanceId, '/webhook'))).data;
  }

  /** The fields sent replace the current ones (headers as a whole); url is required the first time. */
  async updateWebhook(instanceId: string, changes: WebhookUpdate): Promise<WebhookSettings> {
    const path = instancePath(instanceId, '/webhook');
    return (await this.request<{ data: WebhookSettings }>('PATCH', path, { body: changes })).data;
  }

  /** A new signing secret; the previous one signs too until previous_secret_valid_until. */
  async rotateWebhookSecret(instanceId: string): Promise<WebhookSecret> {
    return (await this.request<{ data: WebhookSecret }>('POST', instancePath(instanceId, '/webhook/rotate-secret'))).data;
  }

  /** Sends a webhook.test event to the webhook; follow it with getDelivery. */
  async sendTestEvent(instanceId: string): Promise<DeliveryId> {
    return (await this.request<{ data: DeliveryId }>('POST', instancePath(instanceId, '/webhook/test'))).data;
  }

  /** The delivery log, newest first. */
  async getDeliveries(instanceId: string, options: DeliveryQuery = {}): Promise<Delivery[]> {
    const query: Record<string, string> = {};
    if (options.state !== undefined) query.state = options.state;
    if (options.limit !== undefined) query.limit = String(options.limit);
    return (await this.request<{ data: Delivery[] }>('GET', instancePath(instanceId, '/deliveries'), { query })).data;
  }

  async getDelivery(instanceId: string, deliveryId: string): Promise<DeliveryDetail> {
    return (await this.request<{ data: DeliveryDetail }>('GET', deliveryPath(instanceId, deliveryId))).data;
  }

  /** Queues a delivery that has not succeeded again (same event id). */
  async retryDelivery(instanceId: string, deliveryId: string): Promise<DeliveryRetry> {
    return (await this.request<{ data: DeliveryRetry }>('POST', deliveryPath(instanceId, deliveryId, '/retry'))).data;
  }

  // ---- logs and monitoring ----------------------------------------------------------------------
  async getInstanceLogs(instanceId: string, tail = 100): Promise<InstanceLogs> {
    const query = { tail: String(tail) };
    return (await this.request<{ data: InstanceLogs }>('GET', instancePath(instanceId, '/logs'), { query })).data;
  }

  async getHealth(): Promise<Health> {
    return this.request<Health>('GET', '/api/health');
  }

  /** True when the API answers its health check; never throws. */
  async ping(): Promise<boolean> {
    try {
      const health = await this.request<Health>('GET', '/api/health', { timeoutMs: Math.min(this.timeoutMs, PING_TIMEOUT_MS) });
      return health.status === 'healthy';
    } catch {
      return false;
    }
  }

  async getOpenApiDocument(): Promise<OpenApiDocument> {
    return this.request<OpenApiDocument>('GET', '/openapi.json');
  }

  // ---- transport --------------------------------------------------------------------------------
  private async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const search = new URLSearchParams(options.query ?? {}).toString();
    const query = search ? `?${search}` : '';
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs ?? this.timeoutMs);
    let answer: Response;
    let text: string;
    try {
      answer = await this.fetchImpl(this.baseUrl + path + query, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
      });
      text = await answer.text();
    } catch (cause) {
      if (timedOut) throw new InstanceManagerError(`${what}: no answer within the timeout`, { status: 0, code: 'TIMEOUT', cause });
      throw new InstanceManagerError(`${what}: ${describe(cause)}`, { status: 0, code: 'NETWORK_ERROR', cause });
    } finally {
      clearTimeout(timer);
    }
    return parse<T>(answer, text, what);
  }
}

function parse<T>(answer: Response, text: string, what: string): T {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InstanceManagerError(`${what}: HTTP ${answer.status} with a body that is not the API's JSON`, {
      status: answer.status,
      code: 'INVALID_RESPONSE',
      body: text.slice(0, 1000),
    });
  }
  const fields = body as Record<string, unknown>;
  if (!answer.ok || fields.success === false) {
    const message = typeof fields.error === 'string' ? fields.error : `${what}: HTTP ${answer.status}`;
    const code = typeof fields.code === 'string' ? fields.code : 'INVALID_RESPONSE';
    throw new InstanceManagerError(message, { status: answer.status, code, body });
  }
  return body as T;
}

function normalize(url: string): string {
  return url.replace(/\/+$/, '');
}

function segment(value: string, name: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InstanceManagerError(`${name} is required`, { status: 0, code: 'VALIDATION_ERROR' });
  }
  return encodeURIComponent(value);
}

function instancePath(instanceId: string, tail = ''): string {
  return `/api/v1/instances/${segment(instanceId, 'instanceId')}${tail}`;
}

function deliveryPath(instanceId: string, deliveryId: string, tail = ''): string {
  return instancePath(instanceId, `/deliveries/${segment(deliveryId, 'deliveryId')}${tail}`);
}

function describe(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return error instanceof Error ? error.message + cause : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
