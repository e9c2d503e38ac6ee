// Stanzas of a logged-in client: its iq queries (prekeys, usync, key bundles, ...), the
// messages it sends (decrypted by the fake recipient), and the messages fake contacts and the
// fake phone send to it (Signal pkmsg/msg, LID addressing).
import { randomBytes } from 'node:crypto'
import { getBinaryNodeChild, getBinaryNodeChildren, jidDecode, proto } from '@whiskeysockets/baileys'
import { bundleToUserNode } from './signal.js'
import { ensureGroupForContactMessage, handleClientGroupMessage, handleGroupIq } from './groups.js'
import { HttpError, nowS } from './util.js'

const buf = (x) => Buffer.from(x ?? [])
const clean = (attrs) => Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined && v !== null))
const result = (node, content) => ({
	tag: 'iq',
	attrs: { id: node.attrs.id, type: 'result', from: 's.whatsapp.net' },
	...(content ? { content } : {})
})
export const newMessageId = () => '3EB0' + randomBytes(9).toString('hex').toUpperCase()

/** A key bundle for a linked (companion) device, from the keys it uploaded. Consumes one prekey. */
export function companionBundle(device) {
	let preKey
	const ids = [...device.preKeys.keys()].sort((a, b) => a - b)
	if (ids.length) {
		preKey = { keyId: ids[0], public: device.preKeys.get(ids[0]) }
		device.preKeys.delete(ids[0])
	}
	return {
		registrationId: device.registrationId,
		identity: device.identityPublic,
		signedPreKey: device.signedPreKey,
		preKey
	}
}

/**
 * Tells the account's other logged-in devices that its device list changed (a device linked or
 * unlinked): `<notification type="devices"><update>`, so Baileys drops its cached device list and
 * its next group send includes the new device (sender key distribution to it).
 */
export function notifyDeviceListChanged(fw, account, changed) {
	for (const d of account.devices.values()) {
		if (d === changed || !d.conn?.loginDone) continue
		fw.sendNode(d.conn, {
			tag: 'notification',
			attrs: { from: `${account.phone}@s.whatsapp.net`, type: 'devices', id: fw.nextId(), t: String(nowS()) },
			content: [
				{
					tag: 'update',
					attrs: {},
					content: [
						{ tag: 'device', attrs: { jid: changed.jid } },
						{ tag: 'device', attrs: { jid: changed.lidJid } }
					]
				}
			]
		})
	}
}

/** Sends now if the device is logged in, else keeps it for its next login (offline messages). */
export function deliverToDevice(fw, device, node) {
	if (device.conn?.loginDone && fw.sendNode(device.conn, node)) return 'sent'
	device.queue.push(node)
	return 'queued'
}

export async function handleLoggedInNode(fw, conn, node) {
	switch (node.tag) {
		case 'iq':
			if (node.attrs.type === 'get' || node.attrs.type === 'set') await handleIq(fw, conn, node)
			break
		case 'message':
			await handleClientMessage(fw, conn, node)
			break
		case 'ack':
			if (node.attrs.error) fw.nacks.push({ ...node.attrs, device: conn.device.jid })
			break
		default:
			// receipts, presence, chatstate, unified_session telemetry...: nothing to answer
			break
	}
}

async function handleIq(fw, conn, node) {
	const { xmlns } = node.attrs
	const device = conn.device
	const first = Array.isArray(node.content) ? node.content[0] : undefined
	if (xmlns === 'encrypt') {
		if (first?.tag === 'count') {
			fw.sendNode(conn, result(node, [{ tag: 'count', attrs: { value: String(device.preKeys.size) } }]))
			return
		}
		if (getBinaryNodeChild(node, 'list') && getBinaryNodeChild(node, 'registration')) {
			storeUploadedKeys(device, node)
			fw.sendNode(conn, result(node))
			return
		}
		if (first?.tag === 'digest') {
			fw.sendNode(conn, result(node, [{ tag: 'digest', attrs: {} }]))
			// the last of the client's post-login queries: now release its event buffer
			await fw.finishLogin(conn)
			return
		}
		if (first?.tag === 'key') {
			fw.sendNode(conn, result(node, [{ tag: 'list', attrs: {}, content: await keyBundles(fw, first) }]))
			return
		}
		if (first?.tag === 'rotate') {
			const skey = getBinaryNodeChild(first, 'skey')
			if (skey) device.signedPreKey = parseSkey(skey)
			fw.sendNode(conn, result(node))
			return
		}
	}
	if (xmlns === 'usync') {
		fw.sendNode(conn, result(node, [usyncResult(fw, getBinaryNodeChild(node, 'usync'))]))
		return
	}
	if (xmlns === 'md' && first?.tag === 'remove-companion-device') {
		// sock.logout(): the client unlinks itself
		device.account.devices.delete(device.deviceId)
		fw.sendNode(conn, result(node))
		notifyDeviceListChanged(fw, device.account, device)
		return
	}
	if (xmlns === 'privacy' && node.attrs.type === 'get') {
		fw.sendNode(conn, result(node, [{ tag: 'privacy', attrs: {}, content: [] }]))
		return
	}
	if (xmlns === 'w:g2') {
		handleGroupIq(fw, conn, node)
		return
	}
	if (xmlns === 'blocklist') {
		fw.sendNode(conn, result(node, [{ tag: 'list', attrs: {}, content: [] }]))
		return
	}
	// ping (w:p), passive/active, abt props, w:stats, presence... : an empty result is enough
	fw.sendNode(conn, result(node))
}

const uintBE = (b) => buf(b).readUIntBE(0, buf(b).length)

function parseSkey(skey) {
	return {
		keyId: uintBE(getBinaryNodeChild(skey, 'id').content),
		public: buf(getBinaryNodeChild(skey, 'value').content),
		signature: buf(getBinaryNodeChild(skey, 'signature').content)
	}
}

function storeUploadedKeys(device, node) {
	device.registrationId = uintBE(getBinaryNodeChild(node, 'registration').content)
	device.identityPublic = buf(getBinaryNodeChild(node, 'identity').content)
	for (const key of getBinaryNodeChildren(getBinaryNodeChild(node, 'list'), 'key')) {
		device.preKeys.set(uintBE(getBinaryNodeChild(key, 'id').content), buf(getBinaryNodeChild(key, 'value').content))
	}
	const skey = getBinaryNodeChild(node, 'skey')
	if (skey) device.signedPreKey = parseSkey(skey)
}

/** Finds the fake party behind a jid ("user[:device]@s.whatsapp.net" or "@lid"). */
export function resolve(fw, jid, { create = false } = {}) {
	const decoded = jidDecode(jid)
	if (!decoded?.user) return {}
	const { user, server, device } = decoded
	let found = fw.findByUser(user, server)
	if (!found.account && !found.contact && create && server === 's.whatsapp.net') {
		found = { contact: fw.getOrCreateContact(user) }
	}
	return { ...found, device: device || 0, server }
}

async function keyBundles(fw, keyNode) {
	const users = []
	for (const u of getBinaryNodeChildren(keyNode, 'user')) {
		const jid = u.attrs.jid
		const r = resolve(fw, jid, { create: true })
		let bundle
		if (r.contact && r.device === 0) bundle = await r.contact.device.takeBundle()
		else if (r.account && r.device === 0) bundle = await r.account.phoneDevice.takeBundle()
		else if (r.account) {
			const companion = r.account.devices.get(r.device)
			if (companion) bundle = companionBundle(companion)
		}
		if (bundle) users.push(bundleToUserNode(jid, bundle))
		else fw.log(`no key bundle for ${jid}`)
	}
	return users
}

function usyncResult(fw, usync) {
	const queryNode = getBinaryNodeChild(usync, 'query')
	const protocols = (Array.isArray(queryNode?.content) ? queryNode.content : []).map(p => p.tag)
	const users = []
	for (const u of getBinaryNodeChildren(getBinaryNodeChild(usync, 'list'), 'user')) {
		let jid = u.attrs.jid
		const contactChild = getBinaryNodeChild(u, 'contact')
		if (!jid && contactChild?.content) {
			jid = `${String(buf(contactChild.content).toString()).replace(/\D/g, '')}@s.whatsapp.net`
		}
		if (!jid) continue
		const r = resolve(fw, jid, { create: protocols.includes('devices') || protocols.includes('lid') })
		const content = []
		for (const p of protocols) {
			if (p === 'devices' && (r.account || r.contact)) {
				const list = [{ tag: 'device', attrs: { id: '0' } }]
				if (r.account) {
					for (const d of r.account.devices.values()) {
						list.push({ tag: 'device', attrs: { id: String(d.deviceId), 'key-index': String(d.keyIndex) } })
					}
				}
				content.push({ tag: 'devices', attrs: {}, content: [{ tag: 'device-list', attrs: {}, content: list }] })
			} else if (p === 'lid' && r.server === 's.whatsapp.net' && (r.account || r.contact)) {
				content.push({ tag: 'lid', attrs: { val: `${(r.account || r.contact).lid}@lid` } })
			} else if (p === 'contact') {
				content.push({ tag: 'contact', attrs: { type: 'in' } })
			}
		}
		users.push({ tag: 'user', attrs: { jid }, content })
	}
	return {
		tag: 'usync',
		attrs: clean({ sid: usync?.attrs.sid, index: '0', last: 'true', mode: usync?.attrs.mode, context: usync?.attrs.context }),
		content: [{ tag: 'list', attrs: {}, content: users }]
	}
}

export const textOf = (msg) => msg?.conversation ?? msg?.extendedTextMessage?.text ?? undefined

/** The client sent a message: decrypt every copy we can (contacts, the account's phone) and record it. */
async function handleClientMessage(fw, conn, node) {
	if (jidDecode(node.attrs.to)?.server === 'g.us') return handleClientGroupMessage(fw, conn, node)
	const sender = conn.device
	const encTargets = []
	for (const to of getBinaryNodeChildren(getBinaryNodeChild(node, 'participants'), 'to')) {
		const enc = getBinaryNodeChild(to, 'enc')
		if (enc) encTargets.push({ jid: to.attrs.jid, enc })
	}
	const directEnc = getBinaryNodeChild(node, 'enc')
	if (directEnc && directEnc.attrs.type !== 'skmsg') encTargets.push({ jid: node.attrs.to, enc: directEnc })
	const recipients = []
	let message
	let phoneCopy
	for (const { jid, enc } of encTargets) {
		const r = resolve(fw, jid)
		let signalDevice
		if (r.contact && r.device === 0) signalDevice = r.contact.device
		else if (r.account && r.device === 0) signalDevice = r.account.phoneDevice
		if (!signalDevice) {
			const companion = r.account?.devices.get(r.device)
			if (companion && companion !== sender) {
				// another linked device of an account: pass its copy on, as the real server does
				const copy = {
					tag: 'message',
					attrs: clean({
						from: sender.jid,
						recipient: companion.account === sender.account ? node.attrs.to : undefined,
						id: node.attrs.id,
						t: String(nowS()),
						type: node.attrs.type,
						category: node.attrs.category
					}),
					content: [enc]
				}
				recipients.push({ jid, decrypted: false, forwarded: deliverToDevice(fw, companion, copy) })
			} else {
				recipients.push({ jid, decrypted: false, error: 'unknown recipient device' })
			}
			continue
		}
		try {
			// LID address first (v7 sends through LIDs); a phone-number session (e.g. from a PN group) second
			const msg = await signalDevice.decryptFromAny([sender.lidJid, sender.jid], enc.attrs.type, buf(enc.content))
			recipients.push({ jid, decrypted: true, type: enc.attrs.type })
			if (msg.deviceSentMessage) {
				phoneCopy = {
					destinationJid: msg.deviceSentMessage.destinationJid,
					text: textOf(msg.deviceSentMessage.message)
				}
				message = message || msg.deviceSentMessage.message
			} else if (r.contact) {
				message = msg
			} else {
				message = message || msg
			}
		} catch (err) {
			recipients.push({ jid, decrypted: false, type: enc.attrs.type, error: String(err?.message || err) })
		}
	}
	fw.sendNode(conn, { tag: 'ack', attrs: { class: 'message', id: node.attrs.id, from: node.attrs.to, t: String(nowS()) } })
	if (node.attrs.category === 'peer') return // protocol traffic between the client and its own phone
	const dest = resolve(fw, node.attrs.to)
	const entry = {
		id: node.attrs.id,
		from: sender.account.phone,
		fromDevice: sender.jid,
		to: dest.contact?.phone ?? dest.account?.phone ?? jidDecode(node.attrs.to)?.user,
		toJid: node.attrs.to,
		type: node.attrs.type,
		text: textOf(message),
		messageKeys: message ? Object.keys(proto.Message.toObject(message)) : [],
		phoneCopy: phoneCopy ?? null,
		recipients,
		t: nowS()
	}
	fw.received.push(entry)
	fw.log('client sent', JSON.stringify({ to: entry.to, text: entry.text, id: entry.id }))
}

/** A fake contact sends `text` to every linked device of account `to` (1:1, or in a group). */
export async function sendContactMessage(fw, { to, from, fromName, text, lid, group, id }) {
	const { account, devices } = fw.deviceConnsFor(to)
	if (!devices.length) throw new HttpError(409, `account ${account.phone} has no linked device`)
	if (typeof text !== 'string') throw new HttpError(400, 'text required')
	const contact = fw.getOrCreateContact(from, { name: fromName, lid })
	const msgId = id || newMessageId()
	const contactLid = `${contact.lid}@lid`
	const groupJid = group ? ensureGroupForContactMessage(fw, group, account, contact).jid : undefined
	const out = []
	for (const device of devices) {
		await contact.device.ensureSession(device.lidJid, () => companionBundle(device))
		let content
		if (groupJid) {
			const { ciphertext, senderKeyDistributionMessage } = await contact.device.encryptGroupMessage(groupJid, contactLid, {
				conversation: text
			})
			const skdm = await contact.device.encryptMessage(device.lidJid, {
				senderKeyDistributionMessage: { groupId: groupJid, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage }
			})
			content = [
				{ tag: 'enc', attrs: { v: '2', type: skdm.type }, content: skdm.ciphertext },
				{ tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: ciphertext }
			]
		} else {
			const { type, ciphertext } = await contact.device.encryptMessage(device.lidJid, { conversation: text })
			content = [{ tag: 'enc', attrs: { v: '2', type }, content: ciphertext }]
		}
		const attrs = groupJid
			? {
					from: groupJid,
					participant: contactLid,
					participant_pn: `${contact.phone}@s.whatsapp.net`,
					addressing_mode: 'lid'
				}
			: { from: contactLid, sender_pn: `${contact.phone}@s.whatsapp.net`, addressing_mode: 'lid' }
		const node = {
			tag: 'message',
			attrs: clean({ ...attrs, id: msgId, t: String(nowS()), type: 'text', notify: contact.name }),
			content
		}
		out.push({ device: device.jid, delivery: deliverToDevice(fw, device, node) })
	}
	return {
		id: msgId,
		from: `${contact.phone}@s.whatsapp.net`,
		fromLid: contactLid,
		group: groupJid ?? null,
		devices: out
	}
}

/** The account's own phone sends a message (to a contact, or a protocol message to its companions). */
async function sendFromPhoneRaw(fw, account, devices, message, attrs) {
	const out = []
	for (const device of devices) {
		await account.phoneDevice.ensureSession(device.lidJid, () => companionBundle(device))
		const { type, ciphertext } = await account.phoneDevice.encryptMessage(device.lidJid, message)
		const node = {
			tag: 'message',
			attrs: clean({ from: `${account.phone}@s.whatsapp.net`, t: String(nowS()), ...attrs }),
			content: [{ tag: 'enc', attrs: { v: '2', type }, content: ciphertext }]
		}
		out.push({ device: device.jid, delivery: deliverToDevice(fw, device, node) })
	}
	return out
}

export async function sendFromPhone(fw, { phone, to, text, id, toLid }) {
	const { account, devices } = fw.deviceConnsFor(phone)
	if (!devices.length) throw new HttpError(409, `account ${account.phone} has no linked device`)
	if (typeof text !== 'string') throw new HttpError(400, 'text required')
	const contact = fw.getOrCreateContact(to, { lid: toLid })
	const msgId = id || newMessageId()
	const destinationJid = `${contact.phone}@s.whatsapp.net`
	const out = await sendFromPhoneRaw(
		fw,
		account,
		devices,
		{ deviceSentMessage: { destinationJid, message: { conversation: text } } },
		{ id: msgId, recipient: destinationJid, peer_recipient_lid: `${contact.lid}@lid`, type: 'text' }
	)
	return { id: msgId, to: destinationJid, devices: out }
}

/**
 * Tells the client "no history to sync" (a HISTORY_SYNC_NOTIFICATION of type NO_HISTORY from its
 * own phone). Without it Baileys holds new events for 20 s after a login (AwaitingInitialSync).
 */
export async function sendHistoryNotification(fw, device) {
	const account = device.account
	return sendFromPhoneRaw(
		fw,
		account,
		[device],
		{
			protocolMessage: {
				type: proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION,
				historySyncNotification: { syncType: proto.Message.HistorySyncType.NO_HISTORY, progress: 100 }
			}
		},
		{ id: newMessageId(), type: 'text', category: 'peer' }
	)
}
