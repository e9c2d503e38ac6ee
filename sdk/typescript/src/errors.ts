// The one error class of the client.
//
// InstanceManagerError { status, code, message, body }
//  ├── status > 0: the API answered with an error; code is the API's (INSTANCE_NOT_FOUND, ...)
//  └── status 0: no usable answer; code is NETWORK_ERROR or TIMEOUT, or VALIDATION_ERROR for an
//      argument the client refuses before sending (an empty instance id)
// An answer that is not the API's JSON has code INVALID_RESPONSE and the HTTP status it came with.

/** The API's error table: code → HTTP status (GET /openapi.json: components.schemas.ErrorCode). */
export const HTTP_STATUS = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  INSTANCE_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  DELIVERY_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INSTANCE_LIMIT_REACHED: 409,
  BOT_TOKEN_IN_USE: 409,
  PORTS_EXHAUSTED: 409,
  QR_NOT_AVAILABLE: 409,
  INSTANCE_NOT_READY: 409,
  PROVIDER_ERROR: 502,
  INTERNAL_ERROR: 500,
  BACKEND_UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof HTTP_STATUS;
export type ClientErrorCode = 'NETWORK_ERROR' | 'TIMEOUT' | 'INVALID_RESPONSE';
/** A code this client does not know yet still arrives as a string. */
export type ErrorCode = ApiErrorCode | ClientErrorCode | (string & {});

/** The API's error body: { success: false, error, code }. */
export interface ApiErrorBody {
  success: false;
  error: string;
  code: string;
}

export class InstanceManagerError extends Error {
  /** The HTTP status, or 0 when there was no answer. */
  readonly status: number;
  /** The API's error code (e.g. INSTANCE_NOT_FOUND), or the client's own. */
  readonly code: ErrorCode;
  /** The answer's body, when there was one. */
  readonly body: unknown;

  constructor(message: string, init: { status: number; code: ErrorCode; body?: unknown; cause?: unknown }) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'InstanceManagerError';
    this.status = init.status;
    this.code = init.code;
    this.body = init.body;
  }
}
