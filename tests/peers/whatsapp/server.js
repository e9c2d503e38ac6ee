#!/usr/bin/env node
// Fake WhatsApp Web server for the real Baileys client, plus its JSON control API.
//   node server.js --port 7100 --control-port 7101
// Modules: noise.js (handshake, cert chain), pairing.js (QR / pairing code), signal.js (fake
// Signal devices), core.js (connections, accounts, login), messaging.js (iq, messages),
// control.js (HTTP API).
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { FakeWhatsApp, DEFAULT_OPTIONS } from './core.js'
import { startControlServer } from './control.js'
import { quietLibsignal } from './signal.js'

export { FakeWhatsApp } from './core.js'

/** Starts both servers. port / controlPort 0 = pick free ports. Returns { fw, control, controlUrl, stop }. */
export async function startFakeWhatsApp({ controlPort = 7101, ...options } = {}) {
	const fw = await new FakeWhatsApp(options).start()
	let control
	try {
		control = await startControlServer(fw, { host: fw.opts.host, port: controlPort })
	} catch (err) {
		await fw.stop()
		throw err
	}
	const controlUrl = `http://${fw.opts.host}:${control.address().port}`
	return {
		fw,
		control,
		controlUrl,
		wsUrl: fw.wsUrl,
		rootPublicKeyHex: fw.rootPublicKeyHex,
		async stop() {
			control.closeAllConnections?.()
			await new Promise(resolve => control.close(() => resolve()))
			await fw.stop()
		}
	}
}

const env = process.env

async function main() {
	const { values } = parseArgs({
		options: {
			host: { type: 'string' },
			port: { type: 'string' },
			'control-port': { type: 'string' },
			'qr-ref-interval-ms': { type: 'string' },
			'qr-ref-count': { type: 'string' },
			'history-notification': { type: 'string' },
			'root-private-key': { type: 'string' },
			log: { type: 'boolean' },
			help: { type: 'boolean', short: 'h' }
		}
	})
	if (values.help) {
		console.log(`usage: node server.js [--port 7100] [--control-port 7101] [--host 127.0.0.1]
       [--qr-ref-interval-ms 20000] [--qr-ref-count 6] [--history-notification always|first|never]
       [--root-private-key <64 hex>] [--log]
env: FAKE_WA_HOST FAKE_WA_PORT FAKE_WA_CONTROL_PORT FAKE_WA_QR_REF_INTERVAL_MS FAKE_WA_QR_REF_COUNT
     FAKE_WA_HISTORY_NOTIFICATION FAKE_WA_ROOT_PRIVATE_KEY FAKE_WA_LOG=1`)
		return
	}
	const log = values.log || env.FAKE_WA_LOG === '1'
	if (!log) quietLibsignal()
	const num = v => (v === undefined || v === '' ? undefined : Number(v))
	const srv = await startFakeWhatsApp({
		host: values.host ?? env.FAKE_WA_HOST,
		port: num(values.port ?? env.FAKE_WA_PORT) ?? DEFAULT_OPTIONS.port,
		controlPort: num(values['control-port'] ?? env.FAKE_WA_CONTROL_PORT) ?? 7101,
		qrRefIntervalMs: num(values['qr-ref-interval-ms'] ?? env.FAKE_WA_QR_REF_INTERVAL_MS),
		qrRefCount: num(values['qr-ref-count'] ?? env.FAKE_WA_QR_REF_COUNT),
		historyNotification: values['history-notification'] ?? env.FAKE_WA_HISTORY_NOTIFICATION,
		rootPrivateKeyHex: values['root-private-key'] ?? env.FAKE_WA_ROOT_PRIVATE_KEY,
		log
	})
	const c = srv.controlUrl
	console.log(`fake WhatsApp Web server
  ws URL (Baileys waWebSocketUrl / WHATSAPP_WS_URL): ${srv.wsUrl}
  root public key (WA_CERT_DETAILS.PUBLIC_KEY / WHATSAPP_ROOT_PUBLIC_KEY): ${srv.rootPublicKeyHex}
  control API: ${c}/_fake/state
  QR refs: ${srv.fw.opts.qrRefCount} x ${srv.fw.opts.qrRefIntervalMs} ms (client qrTimeout should match)

try:
  curl -s ${c}/_fake/state
  curl -s -XPOST ${c}/_fake/scan -d '{"phone":"15551234567","name":"Me","qr":"<QR string the client emitted>"}'
  curl -s -XPOST ${c}/_fake/pairing-code -d '{"phone":"15551234567","code":"ABCD1234"}'
  curl -s -XPOST ${c}/_fake/messages -d '{"to":"15551234567","from":"15550001111","fromName":"Alice","text":"hi"}'
  curl -s -XPOST ${c}/_fake/groups -d '{"id":"120363000000000001","subject":"Team","owner":"15551234567","participants":["15550001111","15550002222"]}'
  curl -s ${c}/_fake/received
  curl -s -XPOST ${c}/_fake/drop -d '{"phone":"15551234567"}'
  curl -s -XPOST ${c}/_fake/remove-device -d '{"phone":"15551234567"}'`)
	// one machine-readable line for scripts
	console.log('FAKE_WA_READY ' + JSON.stringify({ wsUrl: srv.wsUrl, controlUrl: c, rootPublicKeyHex: srv.rootPublicKeyHex }))
	const shutdown = async () => {
		await srv.stop()
		process.exit(0)
	}
	process.on('SIGINT', shutdown)
	process.on('SIGTERM', shutdown)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	main().catch(err => {
		console.error(err)
		process.exit(1)
	})
}
