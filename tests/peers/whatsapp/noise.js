// Server side of the WhatsApp Web noise handshake (Noise_XX_25519_AESGCM_SHA256) and the
// fake certificate chain (root -> intermediate -> leaf) the client checks against
// WA_CERT_DETAILS.PUBLIC_KEY.
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto'
import { Curve, proto, NOISE_MODE, encodeBinaryNode, decodeBinaryNode } from '@whiskeysockets/baileys'

const sha256 = (buf) => createHash('sha256').update(buf).digest()

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** X25519 public key (32 bytes) for a 32-byte private key. */
export function publicFromPrivate(priv) {
	const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(priv)]), format: 'der', type: 'pkcs8' })
	const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
	return Buffer.from(spki.subarray(spki.length - 32))
}

/** A key pair in Baileys' shape ({ private, public }, 32-byte public key). */
export function keyPairFromPrivate(privHex) {
	const priv = Buffer.from(privHex, 'hex')
	if (priv.length !== 32) throw new Error('private key must be 32 bytes of hex')
	return { private: priv, public: publicFromPrivate(priv) }
}

/**
 * Makes root -> intermediate -> leaf. Only the intermediate is checked against the root, the leaf
 * against the intermediate; the intermediate's issuerSerial must be 0 (WA_CERT_DETAILS.SERIAL).
 */
export function makeCertChain({ rootKeyPair, serverStaticPublic }) {
	const intermediateKeyPair = Curve.generateKeyPair()
	const now = Math.floor(Date.now() / 1000)
	const intermediateDetails = proto.CertChain.NoiseCertificate.Details.encode({
		serial: 1,
		issuerSerial: 0,
		key: intermediateKeyPair.public,
		notBefore: now - 3600,
		notAfter: now + 365 * 24 * 3600
	}).finish()
	const leafDetails = proto.CertChain.NoiseCertificate.Details.encode({
		serial: 2,
		issuerSerial: 1,
		key: serverStaticPublic,
		notBefore: now - 3600,
		notAfter: now + 30 * 24 * 3600
	}).finish()
	return proto.CertChain.encode({
		intermediate: { details: intermediateDetails, signature: Curve.sign(rootKeyPair.private, intermediateDetails) },
		leaf: { details: leafDetails, signature: Curve.sign(intermediateKeyPair.private, leafDetails) }
	}).finish()
}

const ivFor = (counter) => {
	const iv = Buffer.alloc(12)
	iv.writeUInt32BE(counter, 8)
	return iv
}

function gcmEncrypt(plaintext, key, iv, aad) {
	const c = createCipheriv('aes-256-gcm', key, iv)
	if (aad) c.setAAD(aad)
	return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
}

function gcmDecrypt(ciphertext, key, iv, aad) {
	const d = createDecipheriv('aes-256-gcm', key, iv)
	if (aad) d.setAAD(aad)
	d.setAuthTag(ciphertext.subarray(ciphertext.length - 16))
	return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()])
}

/**
 * One noise session for one websocket. Feed it raw websocket bytes with `push`; it calls
 * onHandshakeDone(clientStaticPublic, clientPayload) once, then onNode(binaryNode) per frame.
 */
export class ServerNoise {
	constructor({ staticKeyPair, certChain, onHandshakeDone, onNode, onError, send }) {
		this.staticKeyPair = staticKeyPair
		this.certChain = certChain
		this.onHandshakeDone = onHandshakeDone
		this.onNode = onNode
		this.onError = onError
		this.send = send // (Buffer) => void: writes one websocket message
		const mode = Buffer.from(NOISE_MODE)
		this.hash = mode.length === 32 ? mode : sha256(mode)
		this.salt = this.hash
		this.key = this.hash
		this.counter = 0
		this.inBytes = Buffer.alloc(0)
		this.gotIntro = false
		this.stage = 'hello' // hello -> finish -> transport
		this.chain = Promise.resolve()
	}

	authenticate(data) {
		this.hash = sha256(Buffer.concat([this.hash, data]))
	}

	mixIntoKey(data) {
		const out = Buffer.from(hkdfSync('sha256', data, this.salt, Buffer.alloc(0), 64))
		this.salt = out.subarray(0, 32)
		this.key = out.subarray(32)
		this.counter = 0
	}

	encryptHs(plaintext) {
		const out = gcmEncrypt(plaintext, this.key, ivFor(this.counter++), this.hash)
		this.authenticate(out)
		return out
	}

	decryptHs(ciphertext) {
		const out = gcmDecrypt(ciphertext, this.key, ivFor(this.counter++), this.hash)
		this.authenticate(ciphertext)
		return out
	}

	frame(data) {
		const out = Buffer.alloc(3 + data.length)
		out.writeUIntBE(data.length, 0, 3)
		Buffer.from(data).copy(out, 3)
		return out
	}

	/** Encrypt and send a binary node (transport stage only). */
	sendNode(node) {
		const plain = encodeBinaryNode(node)
		const enc = gcmEncrypt(plain, this.encKey, ivFor(this.writeCounter++))
		this.send(this.frame(enc))
	}

	push(data) {
		// Frames are handled strictly in order, even though node decoding is async.
		this.chain = this.chain.then(() => this.process(Buffer.from(data))).catch(err => this.onError(err))
		return this.chain
	}

	async process(data) {
		this.inBytes = Buffer.concat([this.inBytes, data])
		if (!this.gotIntro) {
			if (this.inBytes.length < 4) return
			const tag = this.inBytes.subarray(0, 2).toString('latin1')
			if (tag === 'WA') {
				this.authenticate(this.inBytes.subarray(0, 4))
				this.inBytes = this.inBytes.subarray(4)
			} else if (tag === 'ED') {
				// edge-routing prefix, then the WA header; we never send routing info, but accept it
				if (this.inBytes.length < 7) return
				const len = (this.inBytes[4] << 16) | this.inBytes.readUInt16BE(5)
				if (this.inBytes.length < 7 + len + 4) return
				this.authenticate(this.inBytes.subarray(7 + len, 7 + len + 4))
				this.inBytes = this.inBytes.subarray(7 + len + 4)
			} else {
				throw new Error('bad noise intro header')
			}
			this.gotIntro = true
		}
		while (this.inBytes.length >= 3) {
			const size = this.inBytes.readUIntBE(0, 3)
			if (this.inBytes.length < size + 3) return
			const frame = this.inBytes.subarray(3, size + 3)
			this.inBytes = this.inBytes.subarray(size + 3)
			await this.handleFrame(frame)
		}
	}

	async handleFrame(frame) {
		if (this.stage === 'hello') {
			const { clientHello } = proto.HandshakeMessage.decode(frame)
			if (!clientHello?.ephemeral) throw new Error('expected ClientHello')
			const clientEph = Buffer.from(clientHello.ephemeral)
			this.clientEph = clientEph
			this.authenticate(clientEph)
			this.ephemeral = Curve.generateKeyPair()
			this.authenticate(this.ephemeral.public)
			this.mixIntoKey(Curve.sharedKey(this.ephemeral.private, clientEph))
			const staticEnc = this.encryptHs(this.staticKeyPair.public)
			this.mixIntoKey(Curve.sharedKey(this.staticKeyPair.private, clientEph))
			const payloadEnc = this.encryptHs(this.certChain)
			const hello = proto.HandshakeMessage.encode({
				serverHello: { ephemeral: this.ephemeral.public, static: staticEnc, payload: payloadEnc }
			}).finish()
			this.stage = 'finish'
			this.send(this.frame(hello))
		} else if (this.stage === 'finish') {
			const { clientFinish } = proto.HandshakeMessage.decode(frame)
			if (!clientFinish?.static || !clientFinish?.payload) throw new Error('expected ClientFinish')
			const clientStatic = this.decryptHs(Buffer.from(clientFinish.static))
			this.mixIntoKey(Curve.sharedKey(this.ephemeral.private, clientStatic))
			const payloadBytes = this.decryptHs(Buffer.from(clientFinish.payload))
			const out = Buffer.from(hkdfSync('sha256', Buffer.alloc(0), this.salt, Buffer.alloc(0), 64))
			// the client writes with the first half and reads with the second
			this.decKey = out.subarray(0, 32)
			this.encKey = out.subarray(32)
			this.readCounter = 0
			this.writeCounter = 0
			this.stage = 'transport'
			const payload = proto.ClientPayload.decode(payloadBytes)
			await this.onHandshakeDone(clientStatic, payload)
		} else {
			const plain = gcmDecrypt(frame, this.decKey, ivFor(this.readCounter++))
			const node = await decodeBinaryNode(plain)
			await this.onNode(node)
		}
	}
}
