// How failures reach a caller: always an InstanceManagerError with status and code. Against a small
// local server for answers the stack never gives (not JSON, no answer), and the keyed stack for the admin key.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { InstanceManagerClient, InstanceManagerError } from 'instance-manager-client';
import { env, needsStack } from './helpers.mjs';

let server;
let base;
const requests = [];

before(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      requests.push({ method: request.method, url: request.url, headers: request.headers, body });
      if (request.url === '/api/health') return; // never answers
      if (request.url.startsWith('/api/v1/instances/html')) {
        response.writeHead(502, { 'Content-Type': 'text/html' }).end('<html>Bad gateway</html>');
      } else if (request.url.startsWith('/api/v1/instances/new-code')) {
        response.writeHead(418, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ success: false, error: 'Something new', code: 'SOMETHING_NEW' }));
      } else {
        response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ success: true, data: [] }));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
});

async function failure(promise) {
  const error = await promise.then(() => assert.fail('expected a rejection'), (e) => e);
  assert.ok(error instanceof InstanceManagerError && error instanceof Error);
  return error;
}

test('an answer that is not the API JSON: INVALID_RESPONSE with its status', async () => {
  const error = await failure(new InstanceManagerClient(base).getInstance('html'));
  assert.deepEqual([error.status, error.code], [502, 'INVALID_RESPONSE']);
  assert.equal(error.body, '<html>Bad gateway</html>');
});

test('a code the client does not know yet still arrives, with its message', async () => {
  const error = await failure(new InstanceManagerClient(base).getInstance('new-code'));
  assert.deepEqual([error.status, error.code, error.message], [418, 'SOMETHING_NEW', 'Something new']);
});

test('no answer in time: TIMEOUT with status 0, and ping is false without throwing', async () => {
  const client = new InstanceManagerClient(base, { timeoutMs: 200 });
  const error = await failure(client.getHealth());
  assert.deepEqual([error.status, error.code], [0, 'TIMEOUT']);
  assert.equal(await client.ping(), false);
});

test('nobody listening: NETWORK_ERROR with status 0, and ping is false', async () => {
  const client = new InstanceManagerClient('http://127.0.0.1:9');
  const error = await failure(client.getAllInstances());
  assert.deepEqual([error.status, error.code], [0, 'NETWORK_ERROR']);
  assert.ok(error.cause);
  assert.equal(await client.ping(), false);
});

test('an empty id is refused before any request', async () => {
  const before = requests.length;
  for (const call of [(c) => c.getInstance(''), (c) => c.deleteInstance(''), (c) => c.getDelivery('x', '')]) {
    const error = await failure(call(new InstanceManagerClient(base)));
    assert.deepEqual([error.status, error.code], [0, 'VALIDATION_ERROR']);
  }
  assert.equal(requests.length, before);
});

test('the admin key, extra headers, JSON bodies and paths as sent', async () => {
  const client = new InstanceManagerClient(base + '/', { apiKey: 'admin-key', headers: { 'X-Trace': 't1' } });
  await client.createWhatsAppInstance('acme', { url: 'https://example.com/h' });
  await client.getAllInstances('a b&c');
  client.setApiKey(undefined);
  await client.getInstanceLogs('id/with?odd', 7);
  const [create, list, logs] = requests.slice(-3);
  assert.deepEqual([create.method, create.url, create.headers['x-api-key'], create.headers['x-trace']],
    ['POST', '/api/v1/instances', 'admin-key', 't1']);
  assert.equal(create.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(create.body), {
    company_id: 'acme', provider: 'whatsappweb', type_instance: ['api'], api_webhook_schema: { url: 'https://example.com/h' },
  });
  assert.equal(list.url, '/api/v1/instances?company_id=a+b%26c');
  assert.deepEqual([logs.url, logs.headers['x-api-key']], ['/api/v1/instances/id%2Fwith%3Fodd/logs?tail=7', undefined]);
  client.setBaseUrl('http://127.0.0.1:9/');
  assert.equal(client.getBaseUrl(), 'http://127.0.0.1:9');
});

test('the keyed stack: 401 UNAUTHORIZED without the key, everything with it', { skip: needsStack }, async () => {
  const anonymous = new InstanceManagerClient(env.keyedBase);
  assert.equal(await anonymous.ping(), true); // /api/health is open
  const error = await failure(anonymous.getAllInstances());
  assert.deepEqual([error.status, error.code], [401, 'UNAUTHORIZED']);
  const client = new InstanceManagerClient(env.keyedBase, { apiKey: env.adminKey });
  const id = await client.createTelegramInstance('ts-keyed', env.keyedTelegramToken);
  assert.deepEqual((await client.getAllInstances('ts-keyed')).map((i) => i.id), [id]);
  const wrong = await failure(new InstanceManagerClient(env.keyedBase, { apiKey: 'wrong' }).getInstance(id));
  assert.equal(wrong.code, 'UNAUTHORIZED');
  anonymous.setApiKey(env.adminKey);
  await anonymous.deleteInstance(id);
});
