// Linking a companion, the fake phone's side: QR refs (<pair-device>), scan -> <pair-success>,
// the 515 restart, and the pairing-code (link_code_companion_reg) exchange.
import { randomBytes } from 'node:crypto'
import { Curve, getBinaryNodeChild } from '@whiskeysockets/baileys'
import { digits, HttpError, nowS } from './util.js'
import { notifyDeviceListChanged } from './messaging.js'
import {
	buildPairSuccess,
	openCompanionFinish,
	parseQr,
	unwrapCompanionEphemeral,
	verifyPairDeviceSign,
	wrapPrimaryEphemeral
} from './pairing-crypto.js'

// ---------- QR refs ----------

export function sendPairDevice(fw, conn) {
	const count = fw.opts.qrRefCount
	const interval = fw.opts.qrRefIntervalMs
	const refs = Array.from({ length: count }, () => '2@' + randomBytes(24).toString('base64'))
	conn.qr = { refs, sentAt: Date.now(), interval }
	fw.lastQr = { connId: conn.id, ...conn.qr }
	fw.sendNode(conn, {
		tag: 'iq',
		attrs: { id: fw.nextId(), type: 'set', xmlns: 'md', from: 's.whatsapp.net' },
		content: [
			{
				tag: 'pair-device',
				attrs: {},
				content: refs.map(ref => ({ tag: 'ref', attrs: {}, content: Buffer.from(ref) }))
			}
		]
	})
	// after the last ref has had its time: end with 408, which Baileys reports as timedOut
	conn.qrTimer = setTimeout(() => {
		if (conn.state === 'unpaired') {
			fw.log(`conn ${conn.id}: QR refs expired`)
			fw.endWith(conn, { tag: 'stream:error', attrs: { code: '408' } })
		}
	}, count * interval + 1000)
}

export function currentRefIndex(conn) {
	if (!conn.qr) return -1
	const idx = Math.floor((Date.now() - conn.qr.sentAt) / conn.qr.interval)
	return idx < conn.qr.refs.length ? idx : -1
}

// ---------- pairing ----------

/** The fake phone scans a QR. The QR string is required: it carries the client's adv secret. */
export async function scan(fw, { phone, name, qr, lid }) {
	phone = digits(phone)
	if (!phone) throw new HttpError(400, 'phone (digits) required')
	if (!qr) {
		throw new HttpError(400, 'qr required: the QR string from connection.update carries the adv secret key the phone must sign with')
	}
	let parsed
	try {
		parsed = parseQr(qr)
	} catch (err) {
		throw new HttpError(400, err.message)
	}
	const conn = fw.unpairedConns().find(c => c.qr?.refs.includes(parsed.ref))
	if (!conn) throw new HttpError(404, 'no connected, unregistered client was sent this QR ref')
	if (conn.state !== 'unpaired') throw new HttpError(409, 'that client is already pairing')
	const idx = conn.qr.refs.indexOf(parsed.ref)
	if (Date.now() > conn.qr.sentAt + (idx + 1) * conn.qr.interval + 1000) {
		throw new HttpError(410, 'that QR ref has expired')
	}
	if (!parsed.noisePublic.equals(conn.noisePublic) || !parsed.identityPublic.equals(conn.reg.identityPublic)) {
		throw new HttpError(400, 'QR keys do not match the connected client')
	}
	return completePairing(fw, conn, {
		phone,
		name,
		lid,
		advSecretKey: parsed.advSecretKey,
		companionIdentityPublic: conn.reg.identityPublic
	})
}

export async function completePairing(fw, conn, { phone, name, lid, advSecretKey, companionIdentityPublic }) {
	if (fw.contacts.has(phone)) throw new HttpError(409, `${phone} is already used as a fake contact`)
	conn.state = 'pairing'
	clearTimeout(conn.qrTimer)
	const account = fw.getOrCreateAccount(phone, { name, lid })
	const deviceId = account.nextDeviceId++
	const device = {
		account,
		deviceId,
		jid: `${phone}:${deviceId}@s.whatsapp.net`,
		lidJid: `${account.lid}:${deviceId}@lid`,
		noisePublic: conn.noisePublic,
		identityPublic: Buffer.from(companionIdentityPublic),
		registrationId: conn.reg.registrationId,
		signedPreKey: conn.reg.signedPreKey,
		preKeys: new Map(),
		keyIndex: ++account.keyIndex,
		platform: conn.reg.platform,
		createdAt: nowS(),
		conn: null,
		queue: [],
		logins: 0
	}
	let reply
	try {
		reply = await fw.query(
			conn,
			buildPairSuccess({
				id: fw.nextId(),
				account,
				device,
				companionIdentityPublic: device.identityPublic,
				advSecretKey,
				platformName: 'android'
			})
		)
	} catch (err) {
		conn.state = 'unpaired'
		throw err
	}
	if (reply.attrs.type !== 'result' || !verifyPairDeviceSign(reply, account, device.identityPublic)) {
		fw.endWith(conn, { tag: 'stream:error', attrs: { code: '500' } })
		throw new HttpError(502, 'client rejected pair-success or sent a bad device signature')
	}
	account.devices.set(deviceId, device)
	notifyDeviceListChanged(fw, account, device)
	conn.state = 'paired'
	fw.log(`paired ${device.jid}`)
	// restart required: the client reconnects and logs in with its new credentials
	fw.endWith(conn, { tag: 'stream:error', attrs: { code: '515' } })
	return { jid: device.jid, lid: device.lidJid, deviceId, phone, accountLid: `${account.lid}@lid` }
}

// ---------- pairing code (link_code_companion_reg) ----------

export async function onLinkCodeStage(fw, conn, node, lcr) {
	const child = tag => getBinaryNodeChild(lcr, tag)?.content
	const stage = lcr.attrs.stage
	if (stage === 'companion_hello' && conn.state === 'unpaired') {
		const ref = randomBytes(16).toString('hex')
		conn.linkCode = {
			phone: digits(lcr.attrs.jid?.split('@')[0]),
			wrappedEphemeral: Buffer.from(child('link_code_pairing_wrapped_companion_ephemeral_pub')),
			companionNoise: Buffer.from(child('companion_server_auth_key_pub') || []),
			ref
		}
		fw.sendNode(conn, {
			tag: 'iq',
			attrs: { id: node.attrs.id, type: 'result', from: 's.whatsapp.net' },
			content: [
				{
					tag: 'link_code_companion_reg',
					attrs: {},
					content: [{ tag: 'link_code_pairing_ref', attrs: {}, content: Buffer.from(ref) }]
				}
			]
		})
		return
	}
	if (stage === 'companion_finish' && conn.linkCode?.primaryEphemeral) {
		fw.sendNode(conn, { tag: 'iq', attrs: { id: node.attrs.id, type: 'result', from: 's.whatsapp.net' } })
		conn.linkCode.finish?.({
			wrappedBundle: Buffer.from(child('link_code_pairing_wrapped_key_bundle')),
			companionIdentityPublic: Buffer.from(child('companion_identity_public'))
		})
		return
	}
	fw.sendNode(conn, { tag: 'iq', attrs: { id: node.attrs.id, type: 'result', from: 's.whatsapp.net' } })
}

/** The phone types in the 8-character code the client got from requestPairingCode(). */
export async function enterPairingCode(fw, { phone, code, name, lid }) {
	phone = digits(phone)
	code = String(code ?? '').replace(/[-\s]/g, '').toUpperCase()
	if (!phone) throw new HttpError(400, 'phone (digits) required')
	if (code.length !== 8) throw new HttpError(400, 'code must be the 8-character pairing code')
	const conn = fw.unpairedConns().find(c => c.linkCode && c.linkCode.phone === phone && !c.linkCode.primaryEphemeral)
	if (!conn) throw new HttpError(404, `no connected client asked for a pairing code for ${phone}`)
	const lc = conn.linkCode
	const companionEphemeralPublic = await unwrapCompanionEphemeral(lc.wrappedEphemeral, code)
	const account = fw.getOrCreateAccount(phone, { name, lid })
	lc.primaryEphemeral = Curve.generateKeyPair()
	conn.state = 'linkCode'
	let finishTimer
	const finished = new Promise((resolve, reject) => {
		lc.finish = v => (clearTimeout(finishTimer), resolve(v))
		finishTimer = setTimeout(() => reject(new HttpError(504, 'client did not finish the pairing code exchange')), 15000)
	})
	fw.sendNode(conn, {
		tag: 'notification',
		attrs: { from: 's.whatsapp.net', type: 'link_code_companion_reg', id: fw.nextId(), t: String(nowS()) },
		content: [
			{
				tag: 'link_code_companion_reg',
				attrs: { stage: 'primary_hello' },
				content: [
					{ tag: 'link_code_pairing_ref', attrs: {}, content: Buffer.from(lc.ref) },
					{ tag: 'primary_identity_pub', attrs: {}, content: account.accountKeyPair.public },
					{
						tag: 'link_code_pairing_wrapped_primary_ephemeral_pub',
						attrs: {},
						content: await wrapPrimaryEphemeral(lc.primaryEphemeral.public, code)
					}
				]
			}
		]
	})
	let fin
	try {
		fin = await finished
	} catch (err) {
		conn.state = 'unpaired'
		lc.primaryEphemeral = undefined
		throw err
	}
	let opened
	try {
		opened = openCompanionFinish({
			wrappedBundle: fin.wrappedBundle,
			primaryEphemeral: lc.primaryEphemeral,
			companionEphemeralPublic,
			primaryIdentity: account.accountKeyPair
		})
	} catch {
		conn.state = 'unpaired'
		lc.primaryEphemeral = undefined
		throw new HttpError(400, 'pairing code does not match: the key bundle could not be opened')
	}
	const { companionIdentityPublic, advSecretKey } = opened
	if (!companionIdentityPublic.equals(conn.reg.identityPublic)) {
		throw new HttpError(400, 'companion identity in the key bundle does not match the client')
	}
	conn.state = 'unpaired'
	return completePairing(fw, conn, { phone, name, lid, advSecretKey, companionIdentityPublic })
}
