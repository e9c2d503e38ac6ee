// The whole life of one linked device: QR scan -> 515 -> login, messages both ways, re-login
// with saved creds, connection drop, offline delivery, logout from the phone.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DisconnectReason } from '@whiskeysockets/baileys'
import { api, connect, endSocket, exitWhenDone, makeMemoryAuth, startServer, waitUntil } from '../harness.js'

const PHONE = '15551234567'
const ALICE = '15550001111'
const BOB = '15550002222'

const textOf = m => m.message?.conversation ?? m.message?.extendedTextMessage?.text
const upsertWithText = text => u => u.messages.some(m => textOf(m) === text)

describe('linked device life cycle', () => {
	let srv
	const auth = makeMemoryAuth()
	let client // the current socket

	before(async () => {
		srv = await startServer()
	})
	after(async () => {
		if (client) await endSocket(client)
		await srv.stop()
		exitWhenDone()
	})

	it('QR scan pairs: creds.update with me, 515 restart, re-connect opens', { timeout: 30000 }, async () => {
		const first = connect(srv, auth)
		const { qr } = await first.waitFor('connection.update', u => !!u.qr)
		const scan = await api(srv, 'POST', '/_fake/scan', { phone: PHONE, name: 'Tester', qr })
		assert.equal(scan.status, 200, JSON.stringify(scan.body))
		assert.equal(scan.body.jid, `${PHONE}:1@s.whatsapp.net`)

		const credsUpdate = await first.waitFor('creds.update', c => !!c.me)
		assert.equal(credsUpdate.me.id, `${PHONE}:1@s.whatsapp.net`)
		assert.equal(credsUpdate.me.lid, scan.body.lid)
		assert.ok(credsUpdate.account?.deviceSignature, 'account signed by the device')
		const close = await first.closed()
		assert.equal(first.statusOf(close), DisconnectReason.restartRequired)

		client = connect(srv, auth)
		await client.waitFor('connection.update', u => u.connection === 'open')
		assert.ok(!client.events.some(e => e.name === 'connection.update' && e.data.qr), 'no QR on login')
		const state = (await api(srv, 'GET', '/_fake/state')).body
		assert.equal(state.devices.length, 1)
		assert.equal(state.devices[0].connected, true)
		await waitUntil(async () => (await api(srv, 'GET', '/_fake/state')).body.devices[0].preKeys > 0, 5000, 'prekeys uploaded')
	})

	it('a fake contact message arrives with LID remoteJid and phone remoteJidAlt', { timeout: 20000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: ALICE, fromName: 'Alice', text: 'hi from alice' })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		assert.equal(r.body.devices[0].delivery, 'sent')
		const up = await client.waitFor('messages.upsert', upsertWithText('hi from alice'))
		const msg = up.messages.find(m => textOf(m) === 'hi from alice')
		assert.equal(up.type, 'notify')
		assert.equal(msg.key.remoteJid, r.body.fromLid)
		assert.match(msg.key.remoteJid, /@lid$/)
		assert.equal(msg.key.remoteJidAlt, `${ALICE}@s.whatsapp.net`)
		assert.equal(msg.key.fromMe, false)
		assert.equal(msg.key.id, r.body.id)
		assert.equal(msg.pushName, 'Alice')

		// a second message from the same contact uses the established session (type msg)
		await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: ALICE, text: 'second' })
		await client.waitFor('messages.upsert', upsertWithText('second'))
	})

	it('the client sends a text to <digits>@s.whatsapp.net and the server decrypts it', { timeout: 20000 }, async () => {
		const sent = await client.sock.sendMessage(`${ALICE}@s.whatsapp.net`, { text: 'hello alice' })
		const sent2 = await client.sock.sendMessage(`${BOB}@s.whatsapp.net`, { text: 'hello bob, new contact' })
		const received = await waitUntil(async () => {
			const list = (await api(srv, 'GET', '/_fake/received')).body
			return list.length >= 2 && list
		}, 10000, 'two received messages')
		assert.deepEqual(
			received.map(m => ({ to: m.to, text: m.text, id: m.id })),
			[
				{ to: ALICE, text: 'hello alice', id: sent.key.id },
				{ to: BOB, text: 'hello bob, new contact', id: sent2.key.id }
			]
		)
		assert.equal(received[0].from, PHONE)
		assert.equal(received[0].phoneCopy.text, 'hello alice', "the account's phone got the deviceSentMessage copy")
		assert.equal(received[0].phoneCopy.destinationJid, `${ALICE}@s.whatsapp.net`)
		assert.deepEqual((await api(srv, 'GET', '/_fake/state')).body.nacks, [])
	})

	it('the account phone sends to a contact: the client sees fromMe', { timeout: 20000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/messages/from-phone', { phone: PHONE, to: ALICE, text: 'sent on the phone' })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		const up = await client.waitFor('messages.upsert', upsertWithText('sent on the phone'))
		const msg = up.messages.find(m => textOf(m) === 'sent on the phone')
		assert.equal(msg.key.fromMe, true)
		assert.equal(msg.key.remoteJid, `${ALICE}@s.whatsapp.net`)
	})

	it('a group message from a contact (sender keys) arrives', { timeout: 20000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/messages', {
			to: PHONE,
			from: ALICE,
			text: 'hello group',
			group: '120363000000000001'
		})
		assert.equal(r.status, 200, JSON.stringify(r.body))
		const up = await client.waitFor('messages.upsert', upsertWithText('hello group'))
		const msg = up.messages.find(m => textOf(m) === 'hello group')
		assert.equal(msg.key.remoteJid, '120363000000000001@g.us')
		assert.equal(msg.key.participant, r.body.fromLid)
		assert.equal(msg.key.participantAlt, `${ALICE}@s.whatsapp.net`)
	})

	it('a fresh socket with the saved creds logs in again without a QR', { timeout: 20000 }, async () => {
		await endSocket(client)
		client = connect(srv, auth)
		await client.waitFor('connection.update', u => u.connection === 'open')
		assert.ok(!client.events.some(e => e.name === 'connection.update' && e.data.qr))
		await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: ALICE, text: 'after re-login' })
		await client.waitFor('messages.upsert', upsertWithText('after re-login'))
	})

	it('messages sent while the client is away are delivered at the next login', { timeout: 20000 }, async () => {
		await endSocket(client)
		const r = await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: BOB, fromName: 'Bob', text: 'while you were away' })
		assert.equal(r.body.devices[0].delivery, 'queued')
		client = connect(srv, auth)
		await client.waitFor('connection.update', u => u.connection === 'open')
		const up = await client.waitFor('messages.upsert', upsertWithText('while you were away'))
		assert.equal(up.messages[0].key.remoteJidAlt, `${BOB}@s.whatsapp.net`)
	})

	it('drop: the connection is lost and a new socket with saved creds reconnects', { timeout: 20000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/drop', { phone: PHONE })
		assert.equal(r.body.dropped, 1)
		const close = await client.closed()
		assert.equal(client.statusOf(close), DisconnectReason.connectionClosed)
		client = connect(srv, auth)
		await client.waitFor('connection.update', u => u.connection === 'open')
		await client.sock.sendMessage(`${ALICE}@s.whatsapp.net`, { text: 'back online' })
		await waitUntil(async () => (await api(srv, 'GET', '/_fake/received')).body.some(m => m.text === 'back online'), 10000)
	})

	it('a second socket with the same creds replaces the first (440)', { timeout: 20000 }, async () => {
		const second = connect(srv, auth)
		await second.waitFor('connection.update', u => u.connection === 'open')
		const close = await client.closed()
		assert.equal(client.statusOf(close), DisconnectReason.connectionReplaced)
		client = second
		await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: ALICE, text: 'to the new socket' })
		await client.waitFor('messages.upsert', upsertWithText('to the new socket'))
	})

	it('remove-device logs the client out (401) and re-login is refused', { timeout: 20000 }, async () => {
		const r = await api(srv, 'POST', '/_fake/remove-device', { phone: PHONE })
		assert.deepEqual(r.body.removed, [`${PHONE}:1@s.whatsapp.net`])
		const close = await client.closed()
		assert.equal(client.statusOf(close), DisconnectReason.loggedOut)

		const again = connect(srv, auth)
		const close2 = await again.closed()
		assert.equal(again.statusOf(close2), DisconnectReason.loggedOut)
		assert.equal((await api(srv, 'GET', '/_fake/state')).body.devices.length, 0)
		client = undefined
	})
})
