// Shared by the tests: where the local stack is, the OpenAPI document, and a check of every real
// exchange against it (a documented operation, a documented status, a body of the documented shape).
//
// The stacks are started by pytest (tests/sdk/test_typescript_client.py), which runs `npm test` with:
//   IM_BASE_URL, IM_KEYED_BASE_URL, IM_ADMIN_KEY, IM_TELEGRAM_TOKEN, IM_KEYED_TELEGRAM_TOKEN,
//   IM_OPENAPI_FILE, IM_DOCS_PAGE_FILE, IM_DOCS_SCRIPT_FILE.
// Without them, `npm test` runs only the tests that need no stack.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export const env = {
  base: process.env.IM_BASE_URL,
  keyedBase: process.env.IM_KEYED_BASE_URL,
  adminKey: process.env.IM_ADMIN_KEY,
  telegramToken: process.env.IM_TELEGRAM_TOKEN,
  keyedTelegramToken: process.env.IM_KEYED_TELEGRAM_TOKEN,
  openapiFile: process.env.IM_OPENAPI_FILE,
  docsPageFile: process.env.IM_DOCS_PAGE_FILE,
  docsScriptFile: process.env.IM_DOCS_SCRIPT_FILE,
};

const HOW = 'needs the local stack: run `.venv/bin/python -m pytest tests/sdk/test_typescript_client.py`';
export const needsStack = env.base ? false : HOW;
export const needsDocument = env.openapiFile ? false : HOW;

/** Each public method of the client and the documented operation it calls. */
export const OPERATION_OF = {
  createInstance: 'createInstance',
  createWhatsAppInstance: 'createInstance',
  createTelegramInstance: 'createInstance',
  getAllInstances: 'listInstances',
  getInstance: 'getInstance',
  deleteInstance: 'deleteInstance',
  getInstanceApiKey: 'getInstanceApiKey',
  startInstance: 'startInstance',
  stopInstance: 'stopInstance',
  restartInstance: 'restartInstance',
  getQRCode: 'getQRCode',
  requestPairingCode: 'requestPairingCode',
  sendMessage: 'sendMessage',
  getAuthStatus: 'getAuthStatus',
  getWebhook: 'getWebhook',
  updateWebhook: 'updateWebhook',
  rotateWebhookSecret: 'rotateWebhookSecret',
  sendTestEvent: 'sendTestEvent',
  getDeliveries: 'listDeliveries',
  getDelivery: 'getDelivery',
  retryDelivery: 'retryDelivery',
  getInstanceLogs: 'getInstanceLogs',
  getHealth: 'health',
  ping: 'health',
  getOpenApiDocument: 'getOpenApiDocument',
};

export function loadDocument() {
  return JSON.parse(readFileSync(env.openapiFile, 'utf8'));
}

/** operationId → { method, path, op } */
export function operations(doc) {
  const found = new Map();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) found.set(op.operationId, { method: method.toUpperCase(), path, op });
  }
  return found;
}

export function jsonOperations(doc) {
  return [...operations(doc)].filter(([, { op }]) => 'application/json' in op.responses['200'].content).map(([id]) => id);
}

export function matchOperation(doc, method, path) {
  for (const [id, entry] of operations(doc)) {
    const pattern = new RegExp('^' + entry.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$');
    if (entry.method === method && pattern.test(path)) return id;
  }
  return undefined;
}

function resolve(doc, schema) {
  while (schema && schema.$ref) schema = doc.components.schemas[schema.$ref.split('/').pop()];
  return schema;
}

function hasType(type, value) {
  switch (type) {
    case 'null': return value === null;
    case 'integer': return Number.isInteger(value);
    case 'number': return typeof value === 'number';
    case 'array': return Array.isArray(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
    default: return typeof value === type;
  }
}

/** The JSON Schema keywords the document uses: $ref, type, const, enum, oneOf, required, properties,
 *  additionalProperties, maxProperties, items, minItems, pattern, minimum, maximum. */
export function schemaErrors(doc, schema, value, at = '$') {
  schema = resolve(doc, schema);
  const errors = [];
  if ('const' in schema && value !== schema.const) errors.push(`${at}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum}`);
  if (schema.oneOf) {
    const passing = schema.oneOf.filter((option) => schemaErrors(doc, option, value, at).length === 0).length;
    if (passing !== 1) errors.push(`${at}: matches ${passing} of its oneOf schemas`);
  }
  if (schema.type && ![].concat(schema.type).some((type) => hasType(type, value))) {
    return [...errors, `${at}: ${JSON.stringify(value)} is not of type ${schema.type}`];
  }
  if (hasType('object', value)) {
    for (const name of schema.required ?? []) if (!(name in value)) errors.push(`${at}: ${name} is missing`);
    for (const [name, field] of Object.entries(value)) {
      const fieldSchema = schema.properties?.[name] ?? schema.additionalProperties;
      if (fieldSchema === false) errors.push(`${at}: ${name} is not allowed`);
      else if (fieldSchema && fieldSchema !== true) errors.push(...schemaErrors(doc, fieldSchema, field, `${at}.${name}`));
    }
    if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) errors.push(`${at}: too many fields`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.items) value.forEach((item, i) => errors.push(...schemaErrors(doc, schema.items, item, `${at}[${i}]`)));
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) {
    errors.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: above ${schema.maximum}`);
  }
  return errors;
}

/** The exchange's operationId, after checking the exchange against the document. */
export function checkExchange(doc, exchange) {
  const id = matchOperation(doc, exchange.method, exchange.path);
  assert.ok(id, `${exchange.method} ${exchange.path} is not a documented operation`);
  const responses = operations(doc).get(id).op.responses;
  const answer = responses[String(exchange.status)];
  assert.ok(answer, `${id}: HTTP ${exchange.status} is not documented (${Object.keys(responses)})`);
  const media = exchange.contentType.split(';')[0].trim();
  assert.ok(answer.content[media], `${id}: ${media} is not a documented content type`);
  if (media === 'application/json') {
    const errors = schemaErrors(doc, answer.content[media].schema, exchange.body);
    assert.deepEqual(errors, [], `${id} HTTP ${exchange.status}: the answer does not match the document\n${JSON.stringify(exchange.body)}`);
  }
  return id;
}

/** Wraps a fetch and records each exchange; the client's `fetch` option (or globalThis.fetch) takes it. */
export class Recorder {
  exchanges = [];

  wrap(baseFetch = globalThis.fetch) {
    return async (input, init = {}) => {
      const answer = await baseFetch(input, init);
      const text = await answer.clone().text();
      const contentType = answer.headers.get('content-type') ?? '';
      let body = text;
      if (contentType.startsWith('application/json')) body = JSON.parse(text);
      this.exchanges.push({ method: init.method ?? 'GET', path: new URL(String(input)).pathname, status: answer.status, contentType, body });
      return answer;
    };
  }

  take() {
    const taken = this.exchanges;
    this.exchanges = [];
    return taken;
  }
}

export async function waitFor(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
