// The fake phone's side of linking a companion: QR parsing, pair-success with an
// ADVSignedDeviceIdentityHMAC, checking pair-device-sign, and the pairing-code crypto.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { Curve, derivePairingCodeKey, proto } from '@whiskeysockets/baileys'
import libsignalCurve from 'libsignal/src/curve.js'

/**
 * XEdDSA signature check that really fails on a bad signature. (Baileys 7.0.0-rc14's
 * Curve.verify ignores libsignal's boolean result and only fails on malformed input.)
 */
export function strictVerify(pub32, msg, sig) {
	try {
		return libsignalCurve.verifySignature(Buffer.concat([Buffer.from([5]), Buffer.from(pub32)]), msg, sig) === true
	} catch {
		return false
	}
}

const ADV_ACCOUNT_SIG_PREFIX = Buffer.from([6, 0])
const ADV_DEVICE_SIG_PREFIX = Buffer.from([6, 1])

/** "https://wa.me/settings/linked_devices#ref,noiseB64,identityB64,advB64,platformId" (prefix optional). */
export function parseQr(qr) {
	if (typeof qr !== 'string' || !qr) throw new Error('qr must be the QR string the client emitted')
	const body = qr.includes('#') ? qr.slice(qr.indexOf('#') + 1) : qr
	const parts = body.split(',')
	if (parts.length < 4) throw new Error('qr string has too few comma-separated parts')
	const [ref, noise, identity, adv, platformId] = parts
	return {
		ref,
		noisePublic: Buffer.from(noise, 'base64'),
		identityPublic: Buffer.from(identity, 'base64'),
		advSecretKey: Buffer.from(adv, 'base64'),
		platformId
	}
}

/**
 * Builds the <pair-success> iq the phone's server sends after a scan / pairing code.
 * The account signature is by the phone's account key over [6,0] + details + companion identity.
 */
export function buildPairSuccess({ id, account, device, companionIdentityPublic, advSecretKey, platformName }) {
	const details = proto.ADVDeviceIdentity.encode({
		rawId: account.rawId,
		timestamp: Math.floor(Date.now() / 1000),
		keyIndex: device.keyIndex,
		accountType: proto.ADVEncryptionType.E2EE,
		deviceType: proto.ADVEncryptionType.E2EE
	}).finish()
	const accountSignature = Curve.sign(
		account.accountKeyPair.private,
		Buffer.concat([ADV_ACCOUNT_SIG_PREFIX, details, companionIdentityPublic])
	)
	const signed = proto.ADVSignedDeviceIdentity.encode({
		details,
		accountSignatureKey: account.accountKeyPair.public,
		accountSignature
	}).finish()
	const hmac = createHmac('sha256', advSecretKey).update(signed).digest()
	const identityHmac = proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish()
	return {
		tag: 'iq',
		attrs: { from: 's.whatsapp.net', type: 'set', id, xmlns: 'md', t: String(Math.floor(Date.now() / 1000)) },
		content: [
			{
				tag: 'pair-success',
				attrs: {},
				content: [
					{ tag: 'device-identity', attrs: {}, content: identityHmac },
					{ tag: 'platform', attrs: { name: platformName || 'android' } },
					{ tag: 'device', attrs: { jid: device.jid, lid: device.lidJid } }
				]
			}
		]
	}
}

/** Checks the companion's <pair-device-sign> reply: its device signature over [6,1] + details + identity + account key. */
export function verifyPairDeviceSign(reply, account, companionIdentityPublic) {
	const signNode = Array.isArray(reply.content) ? reply.content.find(n => n.tag === 'pair-device-sign') : undefined
	const idNode = signNode && Array.isArray(signNode.content) ? signNode.content.find(n => n.tag === 'device-identity') : undefined
	if (!idNode) return false
	const signed = proto.ADVSignedDeviceIdentity.decode(idNode.content)
	const msg = Buffer.concat([
		ADV_DEVICE_SIG_PREFIX,
		Buffer.from(signed.details),
		companionIdentityPublic,
		account.accountKeyPair.public
	])
	return strictVerify(companionIdentityPublic, msg, Buffer.from(signed.deviceSignature ?? []))
}

// ---- pairing code (link_code_companion_reg) ----

const aesCtr = (key, iv, data) => {
	const c = createCipheriv('aes-256-ctr', key, iv)
	return Buffer.concat([c.update(data), c.final()])
}

/** Unwraps salt(32) + iv(16) + AES-CTR(companion ephemeral public) with PBKDF2(code). */
export async function unwrapCompanionEphemeral(wrapped, code) {
	const buf = Buffer.from(wrapped)
	const key = await derivePairingCodeKey(code, buf.subarray(0, 32))
	return aesCtr(key, buf.subarray(32, 48), buf.subarray(48, 80))
}

/** Wraps the primary's ephemeral public key the same way. */
export async function wrapPrimaryEphemeral(pub, code) {
	const salt = randomBytes(32)
	const iv = randomBytes(16)
	const key = await derivePairingCodeKey(code, salt)
	return Buffer.concat([salt, iv, aesCtr(key, iv, pub)])
}

const hkdf = (ikm, len, salt, info) => Buffer.from(hkdfSync('sha256', ikm, salt || Buffer.alloc(0), Buffer.from(info || ''), len))

/**
 * Opens the companion_finish key bundle and derives the adv secret the companion now uses:
 * bundle = salt(32) + iv(12) + AES-GCM(companionIdentity + primaryIdentity + random(32)).
 */
export function openCompanionFinish({ wrappedBundle, primaryEphemeral, companionEphemeralPublic, primaryIdentity }) {
	const buf = Buffer.from(wrappedBundle)
	const companionShared = Curve.sharedKey(primaryEphemeral.private, companionEphemeralPublic)
	const key = hkdf(companionShared, 32, buf.subarray(0, 32), 'link_code_pairing_key_bundle_encryption_key')
	const iv = buf.subarray(32, 44)
	const ct = buf.subarray(44)
	const d = createDecipheriv('aes-256-gcm', key, iv)
	d.setAuthTag(ct.subarray(ct.length - 16))
	const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()])
	const companionIdentityPublic = plain.subarray(0, 32)
	const random = plain.subarray(64, 96)
	const identityShared = Curve.sharedKey(primaryIdentity.private, companionIdentityPublic)
	const advSecretKey = hkdf(Buffer.concat([companionShared, identityShared, random]), 32, null, 'adv_secret')
	return { companionIdentityPublic, advSecretKey }
}
