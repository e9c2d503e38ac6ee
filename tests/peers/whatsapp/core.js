// The fake WhatsApp Web server: websocket + noise, accounts and linked devices, QR refs,
// pairing, login with saved credentials and the post-login queries.
import { createHash, randomBytes } from 'node:crypto'
import { WebSocketServer } from 'ws'
import { Curve, getBinaryNodeChild, proto } from '@whiskeysockets/baileys'
import { keyPairFromPrivate, makeCertChain, ServerNoise } from './noise.js'
import { FakeSignalDevice } from './signal.js'
import { currentRefIndex, enterPairingCode, onLinkCodeStage, scan, sendPairDevice } from './pairing.js'
import { handleLoggedInNode, notifyDeviceListChanged, sendHistoryNotification } from './messaging.js'
import { digits, HttpError, nowS } from './util.js'

export { HttpError } from './util.js'

export const DEFAULT_OPTIONS = {
	host: '127.0.0.1',
	port: 7100,
	qrRefIntervalMs: 20000, // give the client the same value as `qrTimeout`
	qrRefCount: 6,
	historyNotification: 'always', // 'always' | 'first' | 'never' (see README)
	rootPrivateKeyHex: undefined,
	log: false
}

/** A stable fake LID user for a phone number (15 digits, starts with 1). */
export function lidForPhone(phone) {
	const h = createHash('sha256').update('lid:' + phone).digest()
	let out = '1'
	for (let i = 0; out.length < 15; i++) out += String(h[i % h.length] % 10)
	return out
}

export class FakeWhatsApp {
	constructor(options = {}) {
		this.opts = { ...DEFAULT_OPTIONS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) }
		this.rootKeyPair = this.opts.rootPrivateKeyHex ? keyPairFromPrivate(this.opts.rootPrivateKeyHex) : Curve.generateKeyPair()
		this.staticKeyPair = Curve.generateKeyPair()
		this.certChain = makeCertChain({ rootKeyPair: this.rootKeyPair, serverStaticPublic: this.staticKeyPair.public })
		this.accounts = new Map() // phone -> account
		this.contacts = new Map() // phone -> contact
		this.groups = new Map() // group id (digits) -> group (groups.js)
		this.conns = new Set()
		this.received = [] // messages the clients sent, decrypted
		this.nacks = [] // acks with an error the clients sent for our messages
		this.connSeq = 0
		this.tagSeq = 0
	}

	log(...args) {
		if (this.opts.log) console.error('[fake-wa]', ...args)
	}

	get rootPublicKeyHex() {
		return Buffer.from(this.rootKeyPair.public).toString('hex')
	}

	get wsUrl() {
		return `ws://${this.opts.host}:${this.port}/ws/chat`
	}

	async start() {
		this.wss = new WebSocketServer({ host: this.opts.host, port: this.opts.port })
		await new Promise((resolve, reject) => {
			this.wss.once('listening', resolve)
			this.wss.once('error', reject)
		})
		this.port = this.wss.address().port
		this.wss.on('connection', ws => this.onConnection(ws))
		return this
	}

	async stop() {
		for (const conn of this.conns) {
			clearTimeout(conn.qrTimer)
			clearTimeout(conn.loginTimer)
			conn.ws.terminate()
		}
		await new Promise(resolve => this.wss.close(() => resolve()))
	}

	nextId() {
		return `fake-${++this.tagSeq}`
	}

	setOptions(update) {
		for (const k of ['qrRefIntervalMs', 'qrRefCount']) {
			if (update[k] !== undefined) {
				const v = Number(update[k])
				if (!Number.isInteger(v) || v <= 0) throw new HttpError(400, `${k} must be a positive integer`)
				this.opts[k] = v
			}
		}
		if (update.historyNotification !== undefined) {
			if (!['always', 'first', 'never'].includes(update.historyNotification)) {
				throw new HttpError(400, 'historyNotification must be always|first|never')
			}
			this.opts.historyNotification = update.historyNotification
		}
		return this.options()
	}

	options() {
		const { qrRefIntervalMs, qrRefCount, historyNotification } = this.opts
		return { qrRefIntervalMs, qrRefCount, historyNotification }
	}

	// ---------- accounts and contacts ----------

	getOrCreateAccount(phone, { name, lid } = {}) {
		let account = this.accounts.get(phone)
		if (!account) {
			account = {
				phone,
				lid: digits(lid) || lidForPhone(phone),
				name: name || undefined,
				rawId: randomBytes(4).readUInt32BE(0),
				accountKeyPair: Curve.generateKeyPair(), // the phone's identity / ADV account key
				phoneDevice: new FakeSignalDevice(), // device 0
				nextDeviceId: 1,
				keyIndex: 0,
				devices: new Map() // deviceId -> linked device
			}
			this.accounts.set(phone, account)
		} else if (name) {
			account.name = name
		}
		return account
	}

	getOrCreateContact(phone, { name, lid } = {}) {
		phone = digits(phone)
		if (!phone) throw new HttpError(400, 'contact phone (digits) required')
		if (this.accounts.has(phone)) throw new HttpError(400, `${phone} is a logged-in account here, not a contact`)
		let contact = this.contacts.get(phone)
		if (!contact) {
			contact = { phone, lid: digits(lid) || lidForPhone(phone), name, device: new FakeSignalDevice() }
			this.contacts.set(phone, contact)
		} else {
			if (lid && digits(lid) !== contact.lid) {
				throw new HttpError(409, `contact ${phone} already has lid ${contact.lid}`)
			}
			if (name) contact.name = name
		}
		return contact
	}

	findByUser(user, server) {
		if (server === 'lid') {
			for (const a of this.accounts.values()) if (a.lid === user) return { account: a }
			for (const c of this.contacts.values()) if (c.lid === user) return { contact: c }
			return {}
		}
		if (this.accounts.has(user)) return { account: this.accounts.get(user) }
		if (this.contacts.has(user)) return { contact: this.contacts.get(user) }
		return {}
	}

	// ---------- connections ----------

	onConnection(ws) {
		const conn = { id: ++this.connSeq, ws, state: 'handshake', pending: new Map() }
		this.conns.add(conn)
		conn.noise = new ServerNoise({
			staticKeyPair: this.staticKeyPair,
			certChain: this.certChain,
			send: buf => {
				if (ws.readyState === ws.OPEN) ws.send(buf)
			},
			onHandshakeDone: (clientStatic, payload) => this.onHandshake(conn, clientStatic, payload),
			onNode: node => this.onNode(conn, node),
			onError: err => {
				this.log(`conn ${conn.id} error`, err)
				ws.terminate()
			}
		})
		ws.on('message', data => conn.noise.push(data))
		ws.on('close', () => this.onClose(conn))
		ws.on('error', () => {})
	}

	onClose(conn) {
		this.conns.delete(conn)
		clearTimeout(conn.qrTimer)
		clearTimeout(conn.loginTimer)
		for (const { reject } of conn.pending.values()) reject(new HttpError(409, 'client disconnected'))
		conn.pending.clear()
		if (conn.device && conn.device.conn === conn) conn.device.conn = null
		this.log(`conn ${conn.id} closed (${conn.state})`)
	}

	sendNode(conn, node) {
		if (conn.ws.readyState !== conn.ws.OPEN) return false
		conn.noise.sendNode(node)
		return true
	}

	/** Sends an iq and waits for the client's result/error with the same id. */
	query(conn, node, timeoutMs = 10000) {
		const id = node.attrs.id || (node.attrs.id = this.nextId())
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				conn.pending.delete(id)
				reject(new HttpError(504, `client did not answer iq ${id}`))
			}, timeoutMs)
			conn.pending.set(id, {
				resolve: v => (clearTimeout(timer), resolve(v)),
				reject: e => (clearTimeout(timer), reject(e))
			})
			if (!this.sendNode(conn, node)) {
				conn.pending.delete(id)
				clearTimeout(timer)
				reject(new HttpError(409, 'client not connected'))
			}
		})
	}

	/** Ends a connection the way the server does: a stream:error (or failure) then close. */
	endWith(conn, node) {
		this.sendNode(conn, node)
		conn.state = 'closing'
		setTimeout(() => conn.ws.terminate(), 300).unref?.()
	}

	async onHandshake(conn, clientStatic, payload) {
		conn.noisePublic = Buffer.from(clientStatic)
		conn.pushName = payload.pushName || undefined
		if (payload.devicePairingData) {
			const d = payload.devicePairingData
			let platform
			try {
				platform = proto.DeviceProps.decode(d.deviceProps).os
			} catch {}
			conn.reg = {
				identityPublic: Buffer.from(d.eIdent),
				registrationId: Buffer.from(d.eRegid).readUInt32BE(0),
				signedPreKey: {
					keyId: Buffer.from(d.eSkeyId).readUIntBE(0, 3),
					public: Buffer.from(d.eSkeyVal),
					signature: Buffer.from(d.eSkeySig)
				},
				platform
			}
			conn.state = 'unpaired'
			sendPairDevice(this, conn)
			return
		}
		const phone = String(payload.username ?? '')
		const deviceId = Number(payload.device ?? 0)
		const account = this.accounts.get(phone)
		const device = account?.devices.get(deviceId)
		if (!device || !device.noisePublic.equals(conn.noisePublic)) {
			this.log(`login refused for ${phone}:${deviceId}`)
			this.endWith(conn, { tag: 'failure', attrs: { reason: '401', location: 'fake' } })
			return
		}
		if (device.conn && device.conn !== conn) {
			this.endWith(device.conn, {
				tag: 'stream:error',
				attrs: {},
				content: [{ tag: 'conflict', attrs: { type: 'replaced' } }]
			})
		}
		device.conn = conn
		conn.device = device
		conn.account = account
		conn.state = 'loggedIn'
		conn.loginDone = false
		this.sendNode(conn, {
			tag: 'success',
			attrs: {
				t: String(nowS()),
				lid: device.lidJid,
				location: 'fake',
				props: '1',
				abprops: '1',
				creation: String(device.createdAt)
			}
		})
		// normally released when the client's digest query is answered; this is a fallback
		conn.loginTimer = setTimeout(() => this.finishLogin(conn), 3000)
	}

	/** After login: queued offline messages, <ib><offline/>, then (optionally) the history notification. */
	async finishLogin(conn) {
		if (conn.loginDone || conn.state !== 'loggedIn') return
		conn.loginDone = true
		clearTimeout(conn.loginTimer)
		const device = conn.device
		const queued = device.queue.splice(0)
		for (const node of queued) this.sendNode(conn, node)
		this.sendNode(conn, {
			tag: 'ib',
			attrs: { from: 's.whatsapp.net' },
			content: [{ tag: 'offline', attrs: { count: String(queued.length) } }]
		})
		device.logins++
		const mode = this.opts.historyNotification
		if (mode === 'always' || (mode === 'first' && device.logins === 1)) {
			try {
				await sendHistoryNotification(this, device)
			} catch (err) {
				this.log('history notification failed', err)
			}
		}
	}

	async onNode(conn, node) {
		if (node.tag === 'iq' && (node.attrs.type === 'result' || node.attrs.type === 'error')) {
			const p = conn.pending.get(node.attrs.id)
			if (p) {
				conn.pending.delete(node.attrs.id)
				p.resolve(node)
				return
			}
		}
		if (conn.state === 'loggedIn') {
			await handleLoggedInNode(this, conn, node)
			return
		}
		if (node.tag === 'iq' && node.attrs.type === 'set' && node.attrs.xmlns === 'md') {
			const lcr = getBinaryNodeChild(node, 'link_code_companion_reg')
			if (lcr) {
				await onLinkCodeStage(this, conn, node, lcr)
				return
			}
		}
		if (node.tag === 'iq' && (node.attrs.type === 'get' || node.attrs.type === 'set')) {
			this.sendNode(conn, { tag: 'iq', attrs: { id: node.attrs.id, type: 'result', from: 's.whatsapp.net' } })
		}
	}

	// ---------- phone-side actions ----------

	deviceConnsFor(phone) {
		const account = this.accounts.get(digits(phone))
		if (!account) throw new HttpError(404, `no account ${phone}`)
		return { account, devices: [...account.devices.values()] }
	}

	/** The phone unlinks every companion of `phone` (or one deviceId): 401 device_removed. */
	removeDevice({ phone, deviceId }) {
		const { account, devices } = this.deviceConnsFor(phone)
		const removed = []
		for (const d of devices) {
			if (deviceId !== undefined && Number(deviceId) !== d.deviceId) continue
			account.devices.delete(d.deviceId)
			removed.push(d.jid)
			notifyDeviceListChanged(this, account, d)
			if (d.conn) {
				this.endWith(d.conn, {
					tag: 'stream:error',
					attrs: { code: '401' },
					content: [{ tag: 'conflict', attrs: { type: 'device_removed' } }]
				})
			}
		}
		return { removed }
	}

	/** Closes the websocket(s) of `phone`'s devices abruptly, without any stanza. */
	dropConnections({ phone } = {}) {
		let dropped = 0
		for (const conn of [...this.conns]) {
			if (phone && conn.account?.phone !== digits(phone)) continue
			conn.ws.terminate()
			dropped++
		}
		return { dropped }
	}

	state() {
		const unpaired = this.unpairedConns()
		const live = unpaired.filter(c => c.state === 'unpaired' && currentRefIndex(c) >= 0)
		const current = live[live.length - 1]
		return {
			rootPublicKeyHex: this.rootPublicKeyHex,
			wsUrl: this.wsUrl,
			options: this.options(),
			// a connected, unregistered client is showing a QR whose ref has not expired
			pendingQr: live.length > 0,
			currentQrRef: current ? current.qr.refs[currentRefIndex(current)] : null,
			// refs of the most recent <pair-device> sent (kept after that connection is gone)
			lastQrRefs: this.lastQr?.refs ?? [],
			lastQrSentAt: this.lastQr ? new Date(this.lastQr.sentAt).toISOString() : null,
			pendingPairingCodes: unpaired.filter(c => c.linkCode).map(c => c.linkCode.phone),
			devices: [...this.accounts.values()].flatMap(a =>
				[...a.devices.values()].map(d => ({
					phone: a.phone,
					jid: d.jid,
					lid: d.lidJid,
					deviceId: d.deviceId,
					connected: !!d.conn,
					loggedIn: !!d.conn?.loginDone,
					preKeys: d.preKeys.size,
					queued: d.queue.length
				}))
			),
			contacts: [...this.contacts.values()].map(c => ({ phone: c.phone, lid: `${c.lid}@lid`, name: c.name })),
			connections: [...this.conns].map(c => ({ id: c.id, state: c.state, device: c.device?.jid })),
			receivedCount: this.received.length,
			nacks: this.nacks
		}
	}

	unpairedConns() {
		return [...this.conns].filter(c => c.state === 'unpaired' || c.state === 'linkCode')
	}

	scan(body) {
		return scan(this, body)
	}

	enterPairingCode(body) {
		return enterPairingCode(this, body)
	}
}
