// The client sends to a group: group metadata (w:g2), usync + key bundles of the members,
// sender-key distribution messages, then the skmsg, which the fake members decrypt.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { api, endSocket, exitWhenDone, loginWithQr, startServer, waitUntil } from '../harness.js'

const PHONE = '15556667777'
const ALICE = '15550001111'
const BOB = '15550002222'
const GROUP = '120363000000000001'
const GROUP_JID = `${GROUP}@g.us`

const receivedWith = (srv, text) =>
	waitUntil(async () => (await api(srv, 'GET', '/_fake/received')).body.find(m => m.text === text), 8000, `received "${text}"`)

describe('client sends to a group', () => {
	let srv, client
	before(async () => {
		srv = await startServer()
		client = (await loginWithQr(srv, PHONE)).client
	})
	after(async () => {
		if (client) await endSocket(client)
		await srv.stop()
		exitWhenDone()
	})

	it('POST /_fake/groups creates a group that Baileys reads with groupMetadata', { timeout: 10000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/groups', { id: GROUP, subject: 'Team', participants: [ALICE, BOB], owner: PHONE })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		assert.equal(r.body.jid, GROUP_JID)
		assert.deepEqual(r.body.participants.map(p => p.phone), [PHONE, ALICE, BOB])
		assert.equal((await api(srv, 'POST', '/_fake/groups', { id: GROUP, participants: [ALICE] })).status, 409)

		const meta = await client.sock.groupMetadata(GROUP_JID)
		assert.equal(meta.id, GROUP_JID)
		assert.equal(meta.subject, 'Team')
		assert.equal(meta.addressingMode, 'lid')
		assert.equal(meta.participants.length, 3)
		const alice = r.body.participants.find(p => p.phone === ALICE)
		const metaAlice = meta.participants.find(p => p.id === alice.lid)
		assert.ok(metaAlice, 'participant by LID')
		assert.equal(metaAlice.phoneNumber, `${ALICE}@s.whatsapp.net`)
		assert.equal(meta.participants.find(p => p.phoneNumber === `${PHONE}@s.whatsapp.net`).admin, 'superadmin')
	})

	it('sendMessage to the group: both fake members decrypt it', { timeout: 10000 }, async () => {
		const sent = await client.sock.sendMessage(GROUP_JID, { text: 'hello team' })
		const m = await receivedWith(srv, 'hello team')
		assert.equal(m.id, sent.key.id)
		assert.equal(m.to, GROUP_JID)
		assert.equal(m.group, true)
		assert.equal(m.from, PHONE)
		assert.deepEqual([...m.decryptedBy].sort(), [ALICE, BOB])
		for (const phone of [ALICE, BOB]) {
			assert.equal(m.participants.find(p => p.phone === phone)?.decrypted, true, JSON.stringify(m.participants))
		}
		// the sender key went out once per member device (pkmsg: no session before)
		const skdms = m.recipients.filter(r => r.senderKey)
		assert.ok(skdms.length >= 2, JSON.stringify(m.recipients))
		assert.ok(skdms.every(r => r.decrypted))
		assert.deepEqual((await api(srv, 'GET', '/_fake/state')).body.nacks, [])
	})

	it('a second message reuses the distributed sender key and still decrypts', { timeout: 10000 }, async () => {
		const sent = await client.sock.sendMessage(GROUP_JID, { text: 'second to team' })
		const m = await receivedWith(srv, 'second to team')
		assert.equal(m.id, sent.key.id)
		assert.deepEqual([...m.decryptedBy].sort(), [ALICE, BOB])
		assert.deepEqual(m.recipients.filter(r => r.senderKey), [], 'no new sender-key distribution')
	})

	it('a contact message to an unknown group creates it; the client can reply there', { timeout: 10000 }, async () => {
		const other = '120363000000000002'
		const r = await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: ALICE, text: 'new group', group: other })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		await client.waitFor('messages.upsert', u => u.messages.some(x => x.message?.conversation === 'new group'))
		const groups = (await api(srv, 'GET', '/_fake/groups')).body
		const g = groups.find(x => x.id === other)
		assert.deepEqual(g.participants.map(p => p.phone).sort(), [ALICE, PHONE].sort())
		await client.sock.sendMessage(`${other}@g.us`, { text: 'reply in new group' })
		const m = await receivedWith(srv, 'reply in new group')
		assert.deepEqual(m.decryptedBy, [ALICE])
	})

	it('a PN-addressed group (addressingMode "pn") works too, and 1:1 sends after it still decrypt', { timeout: 10000 }, async () => {
		const pnGroup = '120363000000000003'
		const r = await api(srv, 'POST', '/_fake/groups', { id: pnGroup, participants: [ALICE], owner: PHONE, addressingMode: 'pn' })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		const meta = await client.sock.groupMetadata(`${pnGroup}@g.us`)
		assert.equal(meta.addressingMode, 'pn')
		assert.ok(meta.participants.some(p => p.id === `${ALICE}@s.whatsapp.net` && p.lid?.endsWith('@lid')))
		await client.sock.sendMessage(`${pnGroup}@g.us`, { text: 'pn group hello' })
		const m = await receivedWith(srv, 'pn group hello')
		assert.equal(m.addressingMode, 'pn')
		assert.deepEqual(m.decryptedBy, [ALICE])
		await client.sock.sendMessage(`${ALICE}@s.whatsapp.net`, { text: 'direct after pn group' })
		assert.ok((await receivedWith(srv, 'direct after pn group')).recipients.every(x => x.decrypted))
	})

	it('sock.groupCreate and groupFetchAllParticipating are answered from the same groups', { timeout: 10000 }, async () => {
		const meta = await client.sock.groupCreate('Made by the client', [`${BOB}@s.whatsapp.net`])
		assert.match(meta.id, /^\d+@g\.us$/)
		assert.equal(meta.subject, 'Made by the client')
		const g = (await api(srv, 'GET', '/_fake/groups')).body.find(x => x.jid === meta.id)
		assert.deepEqual(g.participants.map(p => p.phone), [PHONE, BOB])
		const all = await client.sock.groupFetchAllParticipating()
		assert.ok(all[GROUP_JID] && all[meta.id], Object.keys(all).join())
		await client.sock.sendMessage(meta.id, { text: 'in the created group' })
		assert.deepEqual((await receivedWith(srv, 'in the created group')).decryptedBy, [BOB])
	})

	it("another linked device of the account gets the client's group message (fromMe)", { timeout: 10000 }, async () => {
		const second = (await loginWithQr(srv, PHONE)).client
		try {
			await client.sock.sendMessage(GROUP_JID, { text: 'seen on both devices' })
			const up = await second.waitFor('messages.upsert', u => u.messages.some(x => x.message?.extendedTextMessage?.text === 'seen on both devices' || x.message?.conversation === 'seen on both devices'), 8000)
			const msg = up.messages[0]
			assert.equal(msg.key.remoteJid, GROUP_JID)
			assert.equal(msg.key.fromMe, true)
			const m = await receivedWith(srv, 'seen on both devices')
			assert.deepEqual([...m.decryptedBy].sort(), [ALICE, BOB])
			assert.deepEqual(m.forwarded.map(f => f.jid), [`${PHONE}:2@s.whatsapp.net`])
			assert.deepEqual((await api(srv, 'GET', '/_fake/state')).body.nacks, [])
		} finally {
			await endSocket(second)
		}
	})
})
