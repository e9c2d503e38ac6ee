// The seed's examples (test/examples/*.ts, compiled by `npm test`) run as written apart from the import
// path, against the local stack. Only two things change when they run: the base URL they name
// (http://localhost:3000, http://your-server:3000) becomes the test stack's, and an export line is appended
// so this test can look at the values they computed. Every request they make is checked against the document.
//
// The WhatsApp part needs a QR: the stack talks to the fake WhatsApp Web server, and getQRCode waits for the
// first QR while the new instance is starting (a few seconds), so `getQRCode` right after create works.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { InstanceManagerClient, instanceManagerClient } from 'instance-manager-client';
import { checkExchange, env, loadDocument, needsStack, Recorder, waitFor } from './helpers.mjs';

const COMPILED = join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'examples');

/** Runs a compiled example with its base URL pointed at the stack; returns the values it computed. */
async function runExample(name, baseUrlInExample, exported) {
  const source = readFileSync(join(COMPILED, `${name}.js`), 'utf8');
  assert.ok(source.includes(`'${baseUrlInExample}'`), `${name} names ${baseUrlInExample}`);
  const runnable = join(COMPILED, `${name}.run-${process.pid}.js`);
  writeFileSync(runnable, source.replaceAll(`'${baseUrlInExample}'`, JSON.stringify(env.base)) + `\nexport { ${exported.join(', ')} };\n`);
  try {
    return await import(pathToFileURL(runnable).href);
  } finally {
    rmSync(runnable, { force: true });
  }
}

test("the seed's examples run as written against the local stack", { skip: needsStack, timeout: 120_000 }, async () => {
  const doc = loadDocument();
  const recorder = new Recorder();
  const platformFetch = globalThis.fetch;
  globalThis.fetch = recorder.wrap(platformFetch); // the examples build their own clients on the platform's fetch
  try {
    const seed = await runExample('seed-example', 'http://localhost:3000',
      ['whatsappInstanceId', 'telegramInstanceId', 'apiKey', 'qrCode', 'authStatus', 'logs', 'isAvailable']);
    assert.equal(typeof seed.whatsappInstanceId, 'string');
    assert.equal(typeof seed.telegramInstanceId, 'string');
    assert.ok(seed.apiKey.api_key.length > 20 && 'usage_count' in seed.apiKey);
    assert.match(seed.qrCode.qr_url, /^data:image\/png;base64,/);
    assert.ok(seed.qrCode.url.includes(`/qr-page/${seed.whatsappInstanceId}`));
    assert.deepEqual([seed.authStatus.status, seed.authStatus.authenticated], ['qr_ready', false]);
    assert.equal(seed.logs.tail, 50);
    assert.ok(seed.logs.logs.length > 0 && seed.logs.logs.every((line) => line.timestamp && line.message));
    assert.equal(seed.isAvailable, true);

    const used = new Set(recorder.take().map((exchange) => checkExchange(doc, exchange)));
    for (const id of ['createInstance', 'getInstanceApiKey', 'getQRCode', 'getAuthStatus', 'startInstance', 'stopInstance',
      'restartInstance', 'getInstanceLogs', 'deleteInstance', 'health']) assert.ok(used.has(id), `the example called ${id}`);

    const client = new InstanceManagerClient(env.base);
    await assert.rejects(client.getInstance(seed.whatsappInstanceId), { status: 404, code: 'INSTANCE_NOT_FOUND' });
    const telegram = await waitFor(async () => ((i) => i.status === 'client_ready' && i)(await client.getInstance(seed.telegramInstanceId)),
      20_000, "the seed's Telegram instance to log in");
    assert.deepEqual([telegram.company_id, telegram.provider, telegram.webhook.url], ['user-002', 'telegram', 'https://webhook.example.com/telegram']);

    assert.equal(instanceManagerClient.getBaseUrl(), 'http://localhost:3000');
    const global = await runExample('seed-global-client', 'http://your-server:3000', ['instances']);
    assert.equal(instanceManagerClient.getBaseUrl(), env.base);
    assert.ok(global.instances.some((instance) => instance.id === seed.telegramInstanceId));
    recorder.take().forEach((exchange) => checkExchange(doc, exchange));
    await client.deleteInstance(seed.telegramInstanceId);
  } finally {
    globalThis.fetch = platformFetch;
  }
});
