// Two linked devices on one account, and logout started by the client (sock.logout()).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DisconnectReason } from '@whiskeysockets/baileys'
import { api, endSocket, exitWhenDone, loginWithQr, startServer, waitUntil } from '../harness.js'

const PHONE = '15553334444'
const CAROL = '15550004444'
const textOf = m => m.message?.conversation ?? m.message?.extendedTextMessage?.text
const withText = text => u => u.messages.some(m => textOf(m) === text)

describe('two linked devices', () => {
	let srv, a, b
	before(async () => {
		srv = await startServer()
	})
	after(async () => {
		for (const c of [a, b]) if (c) await endSocket(c)
		await srv.stop()
		exitWhenDone()
	})

	it('both devices link to the same account and both get a contact message', { timeout: 30000 }, async () => {
		a = (await loginWithQr(srv, PHONE)).client
		b = (await loginWithQr(srv, PHONE)).client
		assert.equal(a.sock.user.id, `${PHONE}:1@s.whatsapp.net`)
		assert.equal(b.sock.user.id, `${PHONE}:2@s.whatsapp.net`)
		const r = await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: CAROL, fromName: 'Carol', text: 'to both' })
		assert.equal(r.body.devices.length, 2)
		await a.waitFor('messages.upsert', withText('to both'))
		await b.waitFor('messages.upsert', withText('to both'))
	})

	it("a message sent on one device shows on the other as fromMe, and to a contact's LID", { timeout: 20000 }, async () => {
		const carolLid = (await api(srv, 'GET', '/_fake/state')).body.contacts.find(c => c.phone === CAROL).lid
		await a.sock.sendMessage(`${CAROL}@s.whatsapp.net`, { text: 'from device one' })
		const up = await b.waitFor('messages.upsert', withText('from device one'))
		const msg = up.messages.find(m => textOf(m) === 'from device one')
		assert.equal(msg.key.fromMe, true)
		assert.equal(msg.key.remoteJid, `${CAROL}@s.whatsapp.net`)

		await b.sock.sendMessage(carolLid, { text: 'to the lid' })
		const received = await waitUntil(async () => {
			const list = (await api(srv, 'GET', '/_fake/received')).body
			return list.find(m => m.text === 'to the lid')
		}, 10000, 'message to LID')
		assert.equal(received.to, CAROL)
		assert.equal(received.toJid, carolLid)
	})

	it('sock.logout() unlinks only that device (401)', { timeout: 20000 }, async () => {
		await a.sock.logout()
		const close = await a.closed()
		assert.equal(a.statusOf(close), DisconnectReason.loggedOut)
		a = undefined
		const devices = (await api(srv, 'GET', '/_fake/state')).body.devices
		assert.deepEqual(devices.map(d => d.jid), [`${PHONE}:2@s.whatsapp.net`])
		await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: CAROL, text: 'still here' })
		await b.waitFor('messages.upsert', withText('still here'))
	})
})
