// Every operation of the client against the real local stack; each exchange checked against the document.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { InstanceManagerClient, InstanceManagerError } from 'instance-manager-client';
import { checkExchange, env, loadDocument, needsStack, OPERATION_OF, Recorder, waitFor } from './helpers.mjs';

const COMPANY = 'ts-sdk';
const WEBHOOK = { url: 'https://webhook.example.com/typescript', headers: { Authorization: 'Bearer ts' } };

async function rejects(promise, status, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof InstanceManagerError, String(error));
    assert.equal(error.name, 'InstanceManagerError');
    assert.deepEqual([error.status, error.code], [status, code], error.message);
    return true;
  });
}

/** A webhook receiver on loopback that answers `status` (the local stack allows private webhook URLs). */
async function receiver() {
  const got = [];
  const state = { status: 200, got };
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      if (state.status < 300) got.push({ headers: request.headers, body: JSON.parse(body) });
      response.writeHead(state.status).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${server.address().port}/hook`;
  state.close = () => new Promise((resolve) => server.close(resolve));
  return state;
}

async function deliveryState(client, instanceId, deliveryId) {
  try {
    return (await client.getDelivery(instanceId, deliveryId)).state;
  } catch (error) {
    if (error.code === 'DELIVERY_NOT_FOUND') return 'unknown'; // the fan-out has not taken it yet
    throw error;
  }
}

test('every operation against the local stack', { skip: needsStack, timeout: 120_000 }, async () => {
  const doc = loadDocument();
  const recorder = new Recorder();
  const client = new InstanceManagerClient(env.base, { fetch: recorder.wrap() });
  const seen = new Set();
  const calls = () => recorder.take().map((exchange) => checkExchange(doc, exchange));
  const run = async (method, ...args) => {
    const result = await client[method](...args);
    const done = calls();
    assert.deepEqual([...new Set(done)], [OPERATION_OF[method]], `${method} called ${done}`);
    seen.add(method);
    return result;
  };

  assert.equal(await run('ping'), true);
  assert.equal((await run('getHealth')).status, 'healthy');
  const telegramId = await run('createTelegramInstance', COMPANY, env.telegramToken, WEBHOOK);
  assert.equal(typeof telegramId, 'string');
  const ready = await waitFor(async () => ((a) => a.instance_status === 'client_ready' && a)(await client.getAuthStatus(telegramId)),
    20_000, 'the login');
  calls();
  assert.equal(ready.status, 'authenticated');
  assert.equal((await run('getAuthStatus', telegramId)).instance_status, 'client_ready');
  const instance = await run('getInstance', telegramId);
  assert.deepEqual([instance.provider, instance.webhook.url, instance.webhook.headers], ['telegram', WEBHOOK.url, ['Authorization']]);
  assert.ok((await run('getAllInstances')).some((i) => i.id === telegramId));
  assert.deepEqual((await run('getAllInstances', COMPANY)).map((i) => i.id), [telegramId]);
  assert.ok((await run('getInstanceApiKey', telegramId)).api_key.length > 20);
  const started = Date.now();
  await rejects(client.getQRCode(telegramId), 409, 'QR_NOT_AVAILABLE'); // no QR is coming for Telegram: no waiting
  assert.ok(Date.now() - started < 5000);
  calls();
  const logs = await run('getInstanceLogs', telegramId, 5);
  assert.equal(logs.tail, 5);
  assert.ok(logs.logs.length >= 1 && logs.logs.length <= 5);
  assert.match((await run('sendMessage', telegramId, '4242', 'hello from the TypeScript client')).id, /^4242:/);
  assert.deepEqual(await run('stopInstance', telegramId), { success: true, message: 'Instance stopped successfully' });
  assert.deepEqual(await run('startInstance', telegramId), { success: true, message: 'Instance started successfully' });
  assert.deepEqual(await run('restartInstance', telegramId), { success: true, message: 'Instance restarted successfully' });

  const created = await run('createInstance', { company_id: COMPANY, provider: 'whatsappweb' });
  const whatsappId = created.instance_id;
  assert.ok(created.process_result.details.api_key && created.process_result.details.ports.api);
  const qr = await client.getQRCode(whatsappId); // waits for the QR on its way
  assert.match(qr.qr_url, /^data:image\/png;base64,/);
  calls();
  seen.add('getQRCode');
  const pairing = await run('requestPairingCode', whatsappId, '+15551234567');
  assert.deepEqual([pairing.phone_number, pairing.pairing_code.length], ['+15551234567', 8]);
  const second = await run('createWhatsAppInstance', COMPANY, WEBHOOK);
  assert.equal((await run('deleteInstance', second)).success, true); // one Baileys less for the rest of the test

  assert.deepEqual(await run('getWebhook', whatsappId), { webhook: null, previous_secret_valid_until: null });
  await rejects(client.sendTestEvent(whatsappId), 400, 'VALIDATION_ERROR');
  calls();
  const hook = await receiver();
  try {
    const settings = await run('updateWebhook', whatsappId, { url: hook.url, headers: { 'X-Hook': 'ts' } });
    assert.deepEqual(settings.webhook.headers, ['X-Hook']);
    assert.match((await run('rotateWebhookSecret', whatsappId)).webhook_secret, /^whsec_/);
    const { delivery_id: delivered } = await run('sendTestEvent', whatsappId);
    await waitFor(async () => (await deliveryState(client, whatsappId, delivered)) === 'delivered', 20_000, 'the delivery');
    calls();
    const detail = await run('getDelivery', whatsappId, delivered);
    assert.deepEqual([detail.event, detail.payload.instance_id], ['webhook.test', whatsappId]);
    assert.equal(hook.got.at(-1).headers['webhook-id'], delivered);
    assert.deepEqual((await run('getDeliveries', whatsappId, { state: 'delivered', limit: 5 })).map((d) => d.id), [delivered]);
    hook.status = 500;
    const { delivery_id: failing } = await run('sendTestEvent', whatsappId);
    await waitFor(async () => (await deliveryState(client, whatsappId, failing)) === 'failed', 20_000, 'a failed delivery');
    calls();
    assert.deepEqual(await run('retryDelivery', whatsappId, failing), { delivery_id: failing, state: 'pending' });
    await rejects(client.retryDelivery(whatsappId, delivered), 400, 'VALIDATION_ERROR');
    await rejects(client.getDelivery(whatsappId, 'evt_none'), 404, 'DELIVERY_NOT_FOUND');
    calls();
  } finally {
    await hook.close();
  }

  const mine = (await run('getAllInstances', COMPANY)).map((i) => i.id);
  assert.equal(mine.length, 2);
  for (const id of mine) await run('deleteInstance', id);
  await rejects(client.getInstance(telegramId), 404, 'INSTANCE_NOT_FOUND');
  calls();
  try {
    assert.deepEqual(await run('getOpenApiDocument'), doc);
  } catch (error) {
    if (error.code !== 'ROUTE_NOT_FOUND') throw error; // app.py does not serve it yet
    recorder.take();
    seen.add('getOpenApiDocument');
  }
  assert.deepEqual(Object.keys(OPERATION_OF).filter((method) => !seen.has(method)), []);
});

test('API errors carry the HTTP status and the code, and are documented', { skip: needsStack }, async () => {
  const doc = loadDocument();
  const recorder = new Recorder();
  const client = new InstanceManagerClient(env.base, { fetch: recorder.wrap() });
  await rejects(client.getInstance('no-such-instance'), 404, 'INSTANCE_NOT_FOUND');
  await rejects(client.deleteInstance('no-such-instance'), 404, 'INSTANCE_NOT_FOUND');
  await rejects(client.createTelegramInstance(COMPANY, 'not-a-token'), 400, 'VALIDATION_ERROR');
  await rejects(client.createInstance({ company_id: '', provider: 'whatsappweb' }), 400, 'VALIDATION_ERROR');
  await rejects(client.getInstanceLogs('no-such-instance', 5000), 400, 'VALIDATION_ERROR');
  const exchanges = recorder.take();
  assert.equal(exchanges.length, 5);
  for (const exchange of exchanges) checkExchange(doc, exchange);
});
