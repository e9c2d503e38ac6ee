// Groups: created through the control API (or implicitly by a contact's group message), the
// client's w:g2 queries (metadata, participating, create), and group messages the client sends
// (sender-key distribution messages + one skmsg), decrypted by each fake member.
import { randomInt } from 'node:crypto'
import { getBinaryNodeChild, getBinaryNodeChildren, proto } from '@whiskeysockets/baileys'
import { lidForPhone } from './core.js'
import { deliverToDevice, resolve, textOf } from './messaging.js'
import { digits, HttpError, nowS } from './util.js'

const buf = (x) => Buffer.from(x ?? [])
const clean = (attrs) => Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined && v !== null))

/** "120363000000000001", "120363000000000001@g.us" -> "120363000000000001" (or undefined if malformed). */
export function groupIdOf(value) {
	const id = String(value ?? '').trim().replace(/@g\.us$/, '')
	return /^\d+(-\d+)?$/.test(id) ? id : undefined
}

export const groupJidOf = (id) => `${id}@g.us`

/**
 * A member phone -> the fake party behind it: an account (its phone + linked devices) or a contact.
 * A phone that is neither (an owner that has not paired yet) gets no device and is not made a
 * contact, so it can still pair later.
 */
function member(fw, phone) {
	const account = fw.accounts.get(phone)
	if (account) return { phone, lid: account.lid, account }
	const contact = fw.contacts.get(phone)
	if (contact) return { phone, lid: contact.lid, contact }
	return { phone, lid: lidForPhone(phone) }
}

/**
 * POST /_fake/groups {id?, subject?, participants: [phone], owner?, addressingMode?: "lid"|"pn"}.
 * The owner (normally the account's phone) is a member and superadmin.
 */
export function createGroup(fw, { id, subject, participants, owner, addressingMode } = {}) {
	const gid = id === undefined || id === null || id === '' ? '120363' + String(randomInt(1e11, 1e12)) : groupIdOf(id)
	if (!gid) throw new HttpError(400, 'id must be digits (optionally "…@g.us")')
	if (fw.groups.has(gid)) throw new HttpError(409, `group ${gid} exists`)
	if (participants !== undefined && !Array.isArray(participants)) throw new HttpError(400, 'participants must be an array of phones')
	const mode = addressingMode ?? 'lid'
	if (mode !== 'lid' && mode !== 'pn') throw new HttpError(400, 'addressingMode must be lid|pn')
	const ownerPhone = owner !== undefined && owner !== null && owner !== '' ? digits(owner) : undefined
	if (owner && !ownerPhone) throw new HttpError(400, 'owner must be a phone number')
	const phones = []
	for (const p of [ownerPhone, ...(participants ?? [])]) {
		if (p === undefined) continue
		const d = digits(p)
		if (!d) throw new HttpError(400, `bad participant ${JSON.stringify(p)}`)
		if (!phones.includes(d)) phones.push(d)
	}
	if (!phones.length) throw new HttpError(400, 'participants (phones) required')
	// contacts get their stable LIDs now (accounts that pair later stay accounts)
	for (const p of phones) if (p !== ownerPhone && !fw.accounts.has(p)) fw.getOrCreateContact(p)
	const t = nowS()
	const group = {
		id: gid,
		jid: groupJidOf(gid),
		subject: subject === undefined ? `Group ${gid}` : String(subject),
		owner: ownerPhone,
		participants: phones,
		admins: ownerPhone ? [ownerPhone] : [],
		addressingMode: mode,
		creation: t
	}
	fw.groups.set(gid, group)
	return groupInfo(fw, group)
}

/** A contact's group message to an unknown group creates it (the account and the sender); adds the sender if missing. */
export function ensureGroupForContactMessage(fw, groupJid, account, contact) {
	const gid = groupIdOf(groupJid)
	if (!gid) throw new HttpError(400, 'group must be digits (optionally "…@g.us")')
	let group = fw.groups.get(gid)
	if (!group) {
		createGroup(fw, { id: gid, owner: account.phone, participants: [contact.phone] })
		group = fw.groups.get(gid)
	} else {
		if (!group.participants.includes(contact.phone)) group.participants.push(contact.phone)
		if (!group.participants.includes(account.phone)) group.participants.push(account.phone)
	}
	return group
}

export function groupInfo(fw, group) {
	return {
		id: group.id,
		jid: group.jid,
		subject: group.subject,
		owner: group.owner ?? null,
		addressingMode: group.addressingMode,
		creation: group.creation,
		participants: group.participants.map(phone => {
			const m = member(fw, phone)
			return {
				phone,
				jid: `${phone}@s.whatsapp.net`,
				lid: `${m.lid}@lid`,
				kind: m.account ? 'account' : m.contact ? 'contact' : 'unpaired',
				admin: phone === group.owner ? 'superadmin' : group.admins.includes(phone) ? 'admin' : null
			}
		})
	}
}

export const listGroups = (fw) => [...fw.groups.values()].map(g => groupInfo(fw, g))

/** <group> in the shape Baileys' extractGroupMetadata reads (rc14: jid + phone_number for LID groups, jid + lid for PN groups). */
export function groupNode(fw, group) {
	const lidMode = group.addressingMode === 'lid'
	const ownerM = group.owner ? member(fw, group.owner) : undefined
	const pnJid = (phone) => `${phone}@s.whatsapp.net`
	const participants = group.participants.map(phone => {
		const m = member(fw, phone)
		const type = phone === group.owner ? 'superadmin' : group.admins.includes(phone) ? 'admin' : undefined
		const attrs = lidMode
			? { jid: `${m.lid}@lid`, phone_number: pnJid(phone), type }
			: { jid: pnJid(phone), lid: `${m.lid}@lid`, type }
		return { tag: 'participant', attrs: clean(attrs) }
	})
	const ownerAttrs = ownerM
		? lidMode
			? { creator: `${ownerM.lid}@lid`, creator_pn: pnJid(group.owner), s_o: `${ownerM.lid}@lid`, s_o_pn: pnJid(group.owner) }
			: { creator: pnJid(group.owner), s_o: pnJid(group.owner) }
		: {}
	return {
		tag: 'group',
		attrs: clean({
			id: group.id,
			subject: group.subject,
			s_t: String(group.creation),
			creation: String(group.creation),
			size: String(group.participants.length),
			addressing_mode: group.addressingMode,
			...ownerAttrs
		}),
		content: participants
	}
}

const iqResult = (node, from, content) => ({
	tag: 'iq',
	attrs: { id: node.attrs.id, type: 'result', from },
	...(content ? { content } : {})
})

const iqError = (node, from, code, text) => ({
	tag: 'iq',
	attrs: { id: node.attrs.id, type: 'error', from },
	content: [{ tag: 'error', attrs: { code: String(code), text } }]
})

/** <iq xmlns="w:g2">: metadata (`<query request="interactive"/>` to the group), participating, create. */
export function handleGroupIq(fw, conn, node) {
	const to = node.attrs.to || '@g.us'
	const first = Array.isArray(node.content) ? node.content[0] : undefined
	const account = conn.account
	if (to === '@g.us' || to === 'g.us') {
		if (first?.tag === 'participating') {
			const mine = [...fw.groups.values()].filter(g => g.participants.includes(account.phone))
			fw.sendNode(conn, iqResult(node, '@g.us', [{ tag: 'groups', attrs: {}, content: mine.map(g => groupNode(fw, g)) }]))
			return
		}
		if (first?.tag === 'create') {
			// sock.groupCreate(subject, [jids])
			const phones = getBinaryNodeChildren(first, 'participant').map(p => {
				const r = resolve(fw, p.attrs.jid)
				return r.account?.phone ?? r.contact?.phone ?? digits(p.attrs.jid)
			})
			const info = createGroup(fw, { subject: first.attrs.subject, owner: account.phone, participants: phones })
			fw.sendNode(conn, iqResult(node, '@g.us', [groupNode(fw, fw.groups.get(info.id))]))
			return
		}
		fw.sendNode(conn, iqResult(node, '@g.us'))
		return
	}
	const group = fw.groups.get(groupIdOf(to))
	if (!group) {
		fw.sendNode(conn, iqError(node, to, 404, 'item-not-found'))
		return
	}
	if (first?.tag === 'query') {
		if (!group.participants.includes(account.phone)) {
			fw.sendNode(conn, iqError(node, group.jid, 403, 'forbidden'))
			return
		}
		fw.sendNode(conn, iqResult(node, group.jid, [groupNode(fw, group)]))
		return
	}
	// subject, description, settings, invite...: not modelled, accepted
	fw.sendNode(conn, iqResult(node, group.jid))
}

/**
 * The client sent a group message: `<message to="…@g.us" addressing_mode><participants><to jid><enc
 * pkmsg|msg/></to>…</participants><enc type="skmsg"/></message>`. Each `to` carries a sender-key
 * distribution message: fake members (contacts, accounts' phones) decrypt it and store the sender key,
 * then every fake member tries the skmsg. Other linked devices of member accounts get the message
 * forwarded like the real server fans it out.
 */
export async function handleClientGroupMessage(fw, conn, node) {
	const sender = conn.device
	const groupJid = node.attrs.to
	const group = fw.groups.get(groupIdOf(groupJid))
	const pnMode = node.attrs.addressing_mode === 'pn'
	// the sender-key name the client used: its LID in LID groups, its phone JID in PN groups
	const author = pnMode ? sender.jid : sender.lidJid
	const skmsg = getBinaryNodeChildren(node, 'enc').find(e => e.attrs.type === 'skmsg')
	const recipients = []
	const skdmForCompanion = new Map() // companion device -> its <enc>
	for (const to of getBinaryNodeChildren(getBinaryNodeChild(node, 'participants'), 'to')) {
		const enc = getBinaryNodeChild(to, 'enc')
		if (!enc) continue
		const jid = to.attrs.jid
		const r = resolve(fw, jid)
		const signalDevice = r.device === 0 ? (r.contact?.device ?? r.account?.phoneDevice) : undefined
		if (!signalDevice) {
			const companion = r.account?.devices.get(r.device)
			if (companion === sender) recipients.push({ jid, decrypted: false, type: enc.attrs.type, self: true })
			else if (companion) skdmForCompanion.set(companion, { jid, enc })
			else recipients.push({ jid, decrypted: false, type: enc.attrs.type, error: 'unknown recipient device' })
			continue
		}
		try {
			// the client keeps separate sessions for LID and phone-number addresses; so does the fake
			const from = r.server === 'lid' ? [sender.lidJid, sender.jid] : [sender.jid, sender.lidJid]
			const msg = await signalDevice.decryptFromAny(from, enc.attrs.type, buf(enc.content))
			const skdm = msg.senderKeyDistributionMessage
			if (skdm?.axolotlSenderKeyDistributionMessage) {
				await signalDevice.processSenderKeyDistribution(author, {
					groupId: skdm.groupId || groupJid,
					axolotlSenderKeyDistributionMessage: skdm.axolotlSenderKeyDistributionMessage
				})
			}
			recipients.push({ jid, decrypted: true, type: enc.attrs.type, senderKey: !!skdm })
		} catch (err) {
			recipients.push({ jid, decrypted: false, type: enc.attrs.type, error: String(err?.message || err) })
		}
	}
	fw.sendNode(conn, { tag: 'ack', attrs: { class: 'message', id: node.attrs.id, from: groupJid, t: String(nowS()) } })

	let message
	const participants = []
	const members = group ? group.participants.map(p => member(fw, p)) : []
	for (const m of members) {
		const signalDevice = m.contact?.device ?? m.account?.phoneDevice
		const entry = { phone: m.phone, lid: `${m.lid}@lid`, self: m.account === sender.account }
		if (!signalDevice) {
			participants.push({ ...entry, decrypted: false, error: 'not paired' })
			continue
		}
		if (!skmsg) {
			participants.push({ ...entry, decrypted: false, error: 'no skmsg' })
			continue
		}
		try {
			const msg = await signalDevice.decryptGroupMessage(groupJid, author, buf(skmsg.content))
			message = message || msg
			participants.push({ ...entry, decrypted: true })
		} catch (err) {
			participants.push({ ...entry, decrypted: false, error: String(err?.message || err) })
		}
	}

	// fan out to the other linked devices of member accounts (they decrypt it themselves)
	const forwarded = []
	for (const m of members) {
		for (const companion of m.account?.devices.values() ?? []) {
			if (companion === sender) continue
			const skdm = skdmForCompanion.get(companion)
			const copy = {
				tag: 'message',
				attrs: clean({
					from: groupJid,
					participant: author,
					participant_pn: pnMode ? undefined : `${sender.account.phone}@s.whatsapp.net`,
					participant_lid: pnMode ? sender.lidJid : undefined,
					addressing_mode: pnMode ? 'pn' : 'lid',
					id: node.attrs.id,
					t: String(nowS()),
					type: node.attrs.type,
					notify: sender.account.name
				}),
				content: [...(skdm ? [skdm.enc] : []), ...(skmsg ? [skmsg] : [])]
			}
			forwarded.push({ jid: companion.jid, senderKey: !!skdm, delivery: deliverToDevice(fw, companion, copy) })
		}
	}
	for (const [companion, { jid, enc }] of skdmForCompanion) {
		if (!members.some(m => m.account === companion.account)) {
			recipients.push({ jid, decrypted: false, type: enc.attrs.type, error: 'not a group member' })
		}
	}

	const entry = {
		id: node.attrs.id,
		from: sender.account.phone,
		fromDevice: sender.jid,
		to: groupJid,
		toJid: groupJid,
		group: true,
		addressingMode: pnMode ? 'pn' : 'lid',
		type: node.attrs.type,
		text: textOf(message),
		messageKeys: message ? Object.keys(proto.Message.toObject(message)) : [],
		phoneCopy: null,
		recipients, // one per <to>: the sender-key distribution messages
		participants, // one per group member: could it decrypt the skmsg?
		decryptedBy: participants.filter(p => p.decrypted && !p.self).map(p => p.phone),
		forwarded,
		t: nowS()
	}
	if (!group) entry.error = 'unknown group'
	fw.received.push(entry)
	fw.log('client sent to group', JSON.stringify({ to: groupJid, text: entry.text, id: entry.id, decryptedBy: entry.decryptedBy }))
}
