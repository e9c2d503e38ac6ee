// Pairing-code login: sock.requestPairingCode() -> the phone enters the code -> pair-success.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DisconnectReason } from '@whiskeysockets/baileys'
import { api, connect, endSocket, exitWhenDone, makeMemoryAuth, startServer } from '../harness.js'

const PHONE = '15557654321'

describe('pairing code', () => {
	let srv
	before(async () => {
		srv = await startServer({ qrRefIntervalMs: 20000 })
	})
	after(async () => {
		await srv.stop()
		exitWhenDone()
	})

	it('a wrong code is refused', { timeout: 20000 }, async () => {
		const client = connect(srv, makeMemoryAuth())
		await client.waitFor('connection.update', u => !!u.qr)
		const code = await client.sock.requestPairingCode(PHONE)
		assert.equal(code.length, 8)
		const state = (await api(srv, 'GET', '/_fake/state')).body
		assert.deepEqual(state.pendingPairingCodes, [PHONE])
		const wrong = code === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA'
		const r = await api(srv, 'POST', '/_fake/pairing-code', { phone: PHONE, code: wrong })
		assert.equal(r.status, 400, JSON.stringify(r.body))
		assert.equal((await api(srv, 'GET', '/_fake/state')).body.devices.length, 0)
		await endSocket(client)
	})

	it('the right code links the device; it logs in and gets messages', { timeout: 30000 }, async () => {
		const auth = makeMemoryAuth()
		const first = connect(srv, auth)
		await first.waitFor('connection.update', u => !!u.qr)
		const code = await first.sock.requestPairingCode(PHONE)
		const r = await api(srv, 'POST', '/_fake/pairing-code', { phone: PHONE, code, name: 'Code User' })
		assert.equal(r.status, 200, JSON.stringify(r.body))
		assert.equal(r.body.jid, `${PHONE}:1@s.whatsapp.net`)
		const creds = await first.waitFor('creds.update', c => !!c.me?.lid)
		assert.equal(creds.me.id, `${PHONE}:1@s.whatsapp.net`)
		const close = await first.closed()
		assert.equal(first.statusOf(close), DisconnectReason.restartRequired)

		const client = connect(srv, auth)
		await client.waitFor('connection.update', u => u.connection === 'open')
		await api(srv, 'POST', '/_fake/messages', { to: PHONE, from: '15550003333', text: 'code login works' })
		await client.waitFor('messages.upsert', u => u.messages.some(m => m.message?.conversation === 'code login works'))
		await endSocket(client)
	})
})
