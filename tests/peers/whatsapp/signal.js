// In-memory Signal devices for the fake phone and fake contacts, built on Baileys' own
// libsignal repository (DEFAULT_CONNECTION_CONFIG.makeSignalRepository).
import {
	addTransactionCapability,
	Curve,
	DEFAULT_CONNECTION_CONFIG,
	encodeBigEndian,
	encodeWAMessage,
	initAuthCreds,
	proto,
	unpadRandomMax16
} from '@whiskeysockets/baileys'

/** pino-compatible logger that drops everything. */
export const silentLogger = {
	level: 'silent',
	child() {
		return silentLogger
	},
	trace() {},
	debug() {},
	info() {},
	warn() {},
	error() {},
	fatal() {}
}

/** A plain in-memory SignalKeyStore ({ get, set, clear }). */
export function makeMemoryKeyStore() {
	const data = {}
	return {
		async get(type, ids) {
			const out = {}
			for (const id of ids) {
				const v = data[type]?.[id]
				if (v !== undefined && v !== null) out[id] = v
			}
			return out
		},
		async set(update) {
			for (const type in update) {
				data[type] = data[type] || {}
				for (const id in update[type]) {
					const v = update[type][id]
					if (v === null || v === undefined) delete data[type][id]
					else data[type][id] = v
				}
			}
		},
		async clear() {
			for (const k of Object.keys(data)) delete data[k]
		}
	}
}

/** Key bundle node content for <iq xmlns=encrypt><key> answers, from a bundle object. */
export function bundleToUserNode(jid, bundle) {
	const content = [
		{ tag: 'registration', attrs: {}, content: encodeBigEndian(bundle.registrationId) },
		{ tag: 'type', attrs: {}, content: Buffer.from([5]) },
		{ tag: 'identity', attrs: {}, content: bundle.identity },
		{
			tag: 'skey',
			attrs: {},
			content: [
				{ tag: 'id', attrs: {}, content: encodeBigEndian(bundle.signedPreKey.keyId, 3) },
				{ tag: 'value', attrs: {}, content: bundle.signedPreKey.public },
				{ tag: 'signature', attrs: {}, content: bundle.signedPreKey.signature }
			]
		}
	]
	if (bundle.preKey) {
		content.push({
			tag: 'key',
			attrs: {},
			content: [
				{ tag: 'id', attrs: {}, content: encodeBigEndian(bundle.preKey.keyId, 3) },
				{ tag: 'value', attrs: {}, content: bundle.preKey.public }
			]
		})
	}
	return { tag: 'user', attrs: { jid }, content }
}

/** Bundle object in the shape Baileys' injectE2ESession wants. */
export function bundleToSession(bundle) {
	const withType = (k) => (k.length === 33 ? Buffer.from(k) : Buffer.concat([Buffer.from([5]), Buffer.from(k)]))
	return {
		registrationId: bundle.registrationId,
		identityKey: withType(bundle.identity),
		signedPreKey: {
			keyId: bundle.signedPreKey.keyId,
			publicKey: withType(bundle.signedPreKey.public),
			signature: Buffer.from(bundle.signedPreKey.signature)
		},
		preKey: bundle.preKey ? { keyId: bundle.preKey.keyId, publicKey: withType(bundle.preKey.public) } : undefined
	}
}

/** One Signal device (a fake phone or a fake contact's phone). */
export class FakeSignalDevice {
	constructor() {
		this.creds = initAuthCreds()
		this.keys = addTransactionCapability(makeMemoryKeyStore(), silentLogger, {
			maxCommitRetries: 3,
			delayBetweenTriesMs: 10
		})
		this.repo = DEFAULT_CONNECTION_CONFIG.makeSignalRepository({ creds: this.creds, keys: this.keys }, silentLogger, async () => [])
		this.nextPreKeyId = 1
	}

	get identityPublic() {
		return this.creds.signedIdentityKey.public
	}

	/** A fresh key bundle (consumes a new one-time prekey stored in this device). */
	async takeBundle() {
		const keyId = this.nextPreKeyId++
		const pair = Curve.generateKeyPair()
		await this.keys.set({ 'pre-key': { [keyId]: pair } })
		const { signedPreKey } = this.creds
		return {
			registrationId: this.creds.registrationId,
			identity: this.creds.signedIdentityKey.public,
			signedPreKey: { keyId: signedPreKey.keyId, public: signedPreKey.keyPair.public, signature: signedPreKey.signature },
			preKey: { keyId, public: pair.public }
		}
	}

	async hasSession(jid) {
		return (await this.repo.validateSession(jid)).exists
	}

	/** Make sure there is a session with `jid`; getBundle() is called only when there is none. */
	async ensureSession(jid, getBundle) {
		if (await this.hasSession(jid)) return
		const bundle = await getBundle()
		if (!bundle) throw new Error(`no key bundle for ${jid}`)
		await this.repo.injectE2ESession({ jid, session: bundleToSession(bundle) })
	}

	/** Encrypt a proto.Message object (padded like WhatsApp does). */
	async encryptMessage(jid, message) {
		return this.repo.encryptMessage({ jid, data: encodeWAMessage(message) })
	}

	async encryptGroupMessage(group, meId, message) {
		return this.repo.encryptGroupMessage({ group, meId, data: encodeWAMessage(message) })
	}

	/** Store a sender key a group member sent us (proto SenderKeyDistributionMessage object). */
	async processSenderKeyDistribution(authorJid, item) {
		await this.repo.processSenderKeyDistributionMessage({ item, authorJid })
	}

	/** Decrypt a group `skmsg` from `authorJid` (needs its sender key) into a proto.Message. */
	async decryptGroupMessage(group, authorJid, ciphertext) {
		const plain = await this.repo.decryptGroupMessage({ group, authorJid, msg: ciphertext })
		return proto.Message.decode(unpadRandomMax16(plain))
	}

	/**
	 * Decrypt a pkmsg/msg from one sender known under several addresses (its LID and phone-number
	 * device JIDs: the client keeps a session per address it sent to). Tries them in order; a failed
	 * attempt changes nothing. Throws the first error if none works.
	 */
	async decryptFromAny(jids, type, ciphertext) {
		let first
		for (const jid of jids) {
			try {
				return await this.decryptMessage(jid, type, ciphertext)
			} catch (err) {
				first = first || err
			}
		}
		throw first
	}

	/** Decrypt a pkmsg/msg from `jid` into a proto.Message. */
	async decryptMessage(jid, type, ciphertext) {
		const plain = await this.repo.decryptMessage({ jid, type, ciphertext })
		return proto.Message.decode(unpadRandomMax16(plain))
	}
}

const LIBSIGNAL_CHATTER = [
	'Closing session',
	'Opening session',
	'Closing open session in favor',
	'Removing old closed session',
	'Session already',
	'Decrypted message with closed session',
	'Migrating session to'
]

/** libsignal prints every session change with console.info/warn; drop that chatter (only that). */
export function quietLibsignal() {
	if (console.__fakeWaQuiet) return
	for (const level of ['info', 'warn', 'log']) {
		const orig = console[level].bind(console)
		console[level] = (...args) => {
			if (typeof args[0] === 'string' && LIBSIGNAL_CHATTER.some(p => args[0].startsWith(p))) return
			orig(...args)
		}
	}
	console.__fakeWaQuiet = true
}
