// Shared helpers for the tests: a fake server on free ports, the REAL Baileys client wired to
// it, an in-memory auth state, and small event waiters.
import makeWASocket, { initAuthCreds, WA_CERT_DETAILS } from '@whiskeysockets/baileys'
import { startFakeWhatsApp } from './server.js'
import { makeMemoryKeyStore, quietLibsignal, silentLogger } from './signal.js'

quietLibsignal()

export { silentLogger }

export const QR_INTERVAL_MS = 1500

export async function startServer(options = {}) {
	return startFakeWhatsApp({ port: 0, controlPort: 0, qrRefIntervalMs: QR_INTERVAL_MS, qrRefCount: 3, ...options })
}

/**
 * The Baileys socket config a client needs for this server. Sets the process-wide
 * WA_CERT_DETAILS.PUBLIC_KEY to the fake root (the product does this only when
 * WHATSAPP_ROOT_PUBLIC_KEY is set).
 */
export function clientSocketOptions({ wsUrl, rootPublicKeyHex, qrTimeout, auth, logger = silentLogger, ...rest }) {
	WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootPublicKeyHex, 'hex')
	return {
		waWebSocketUrl: wsUrl, // ws://127.0.0.1:PORT/ws/chat, plain ws is fine
		auth, // { creds, keys }
		logger,
		printQRInTerminal: false,
		qrTimeout, // = the server's qrRefIntervalMs, so QR rotation and expiry line up
		markOnlineOnConnect: false,
		...rest
	}
}

/** A running server elsewhere (e.g. started with server.js), known by its control URL. */
export async function remoteServer(controlUrl) {
	const state = await (await fetch(controlUrl + '/_fake/state')).json()
	return {
		controlUrl,
		wsUrl: state.wsUrl,
		rootPublicKeyHex: state.rootPublicKeyHex,
		qrRefIntervalMs: state.options.qrRefIntervalMs
	}
}

/** JSON call to the control API; resolves { status, body }. */
export async function api(srv, method, path, body) {
	const res = await fetch(srv.controlUrl + path, {
		method,
		headers: body ? { 'content-type': 'application/json' } : undefined,
		body: body ? JSON.stringify(body) : undefined
	})
	return { status: res.status, body: await res.json() }
}

/** In-memory auth state: creds from initAuthCreds() and a plain SignalKeyStore. */
export function makeMemoryAuth() {
	return { creds: initAuthCreds(), keys: makeMemoryKeyStore() }
}

/**
 * A Baileys socket talking to the fake server. Every event is recorded in `events`, and
 * `waitFor(name, predicate, ms)` resolves with the first matching event (past or future).
 * creds.update is applied to `auth.creds` like a real app's saveCreds would.
 */
export function connect(srv, auth, extra = {}) {
	const sock = makeWASocket(
		clientSocketOptions({
			wsUrl: srv.wsUrl,
			rootPublicKeyHex: srv.rootPublicKeyHex,
			qrTimeout: srv.fw?.opts.qrRefIntervalMs ?? srv.qrRefIntervalMs,
			auth,
			...extra
		})
	)
	const events = []
	const waiters = []
	const record = (name, data) => {
		events.push({ name, data })
		for (const w of [...waiters]) {
			if (w.name === name && w.predicate(data)) {
				waiters.splice(waiters.indexOf(w), 1)
				clearTimeout(w.timer)
				w.resolve(data)
			}
		}
	}
	for (const name of ['connection.update', 'creds.update', 'messages.upsert', 'messages.update']) {
		sock.ev.on(name, data => {
			if (name === 'creds.update') Object.assign(auth.creds, data)
			record(name, data)
		})
	}
	const waitFor = (name, predicate = () => true, ms = 15000) => {
		const past = events.find(e => e.name === name && predicate(e.data))
		if (past) return Promise.resolve(past.data)
		return new Promise((resolve, reject) => {
			const w = { name, predicate, resolve }
			w.timer = setTimeout(() => {
				waiters.splice(waiters.indexOf(w), 1)
				reject(new Error(`timed out waiting for ${name}`))
			}, ms)
			waiters.push(w)
		})
	}
	const closed = () => waitFor('connection.update', u => u.connection === 'close')
	const statusOf = u => u?.lastDisconnect?.error?.output?.statusCode
	return { sock, events, waitFor, closed, statusOf }
}

/** End a socket and wait for it to be closed. */
export async function endSocket(client) {
	try {
		client.sock.end(undefined)
	} catch {}
	await client.closed().catch(() => {})
}

/** Full QR login: connect, scan the first QR, wait for the 515 restart, reconnect until open. */
export async function loginWithQr(srv, phone, { name = 'Tester', auth = makeMemoryAuth() } = {}) {
	const first = connect(srv, auth)
	const { qr } = await first.waitFor('connection.update', u => !!u.qr)
	const scan = await api(srv, 'POST', '/_fake/scan', { phone, name, qr })
	if (scan.status !== 200) throw new Error('scan failed: ' + JSON.stringify(scan.body))
	const closeUpdate = await first.closed()
	const second = connect(srv, auth)
	await second.waitFor('connection.update', u => u.connection === 'open')
	return { auth, first, client: second, scan: scan.body, closeUpdate }
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Polls fn() until it returns something truthy. */
export async function waitUntil(fn, ms = 10000, what = 'condition') {
	const end = Date.now() + ms
	for (;;) {
		const v = await fn()
		if (v) return v
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
		await sleep(50)
	}
}

/**
 * Call from a test file's top-level after(): Baileys leaves a 30 s timer behind after the first
 * pre-key upload (Promise.race with UPLOAD_TIMEOUT, never cleared), which would keep the test
 * process alive for up to 30 s after the last test. Exits with the test runner's exit code.
 */
export function exitWhenDone(ms = 300) {
	setTimeout(() => process.exit(), ms)
}
