// QR refs: emitted, rotating, expiring (408 timedOut); scan validation.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DisconnectReason } from '@whiskeysockets/baileys'
import { api, connect, endSocket, exitWhenDone, makeMemoryAuth, startServer, waitUntil } from '../harness.js'

describe('QR refs', () => {
	let srv
	before(async () => {
		srv = await startServer({ qrRefIntervalMs: 1000, qrRefCount: 3 })
	})
	after(async () => {
		await srv.stop()
		exitWhenDone()
	})

	it('emits a QR per ref, rotates them, then closes with timedOut (408)', { timeout: 20000 }, async () => {
		const client = connect(srv, makeMemoryAuth())
		const first = await client.waitFor('connection.update', u => !!u.qr)
		assert.match(first.qr, /^https:\/\/wa\.me\/settings\/linked_devices#2@[^,]+,[^,]+,[^,]+,[^,]+,\d+$/)

		const state = (await api(srv, 'GET', '/_fake/state')).body
		assert.equal(state.pendingQr, true)
		assert.equal(state.lastQrRefs.length, 3)
		assert.equal(state.currentQrRef, first.qr.split('#')[1].split(',')[0])

		const close = await client.closed()
		const qrs = client.events.filter(e => e.name === 'connection.update' && e.data.qr).map(e => e.data.qr)
		assert.equal(qrs.length, 3, 'one QR per ref')
		assert.deepEqual(
			qrs.map(q => q.split('#')[1].split(',')[0]),
			state.lastQrRefs,
			'QRs carry the refs the server sent, in order'
		)
		assert.equal(new Set(qrs.map(q => q.split(',').slice(1).join(','))).size, 1, 'only the ref changes')
		assert.equal(client.statusOf(close), DisconnectReason.timedOut)
		await waitUntil(async () => !(await api(srv, 'GET', '/_fake/state')).body.pendingQr, 3000, 'pendingQr false')
	})

	it('scan needs the QR string and rejects unknown or bad ones', { timeout: 20000 }, async () => {
		const client = connect(srv, makeMemoryAuth())
		const { qr } = await client.waitFor('connection.update', u => !!u.qr)

		let r = await api(srv, 'POST', '/_fake/scan', { phone: '15550000001' })
		assert.equal(r.status, 400)
		assert.match(r.body.error, /qr required/)

		r = await api(srv, 'POST', '/_fake/scan', { phone: '15550000001', qr: qr.replace(/#2@[^,]+/, '#2@bogus') })
		assert.equal(r.status, 404)

		const parts = qr.split(',')
		parts[3] = Buffer.alloc(32, 7).toString('base64') // wrong adv secret: the client must reject the HMAC
		r = await api(srv, 'POST', '/_fake/scan', { phone: '15550000001', qr: parts.join(',') })
		assert.equal(r.status, 409, JSON.stringify(r.body)) // client closed on the bad pair-success
		const close = await client.closed()
		assert.notEqual(client.statusOf(close), DisconnectReason.restartRequired)
		assert.equal((await api(srv, 'GET', '/_fake/state')).body.devices.length, 0)
		await endSocket(client)
	})

	it('options can be changed through the control API', async () => {
		const r = await api(srv, 'POST', '/_fake/options', { qrRefIntervalMs: 1200, qrRefCount: 2 })
		assert.equal(r.status, 200)
		assert.deepEqual(r.body, { qrRefIntervalMs: 1200, qrRefCount: 2, historyNotification: 'always' })
		const bad = await api(srv, 'POST', '/_fake/options', { qrRefCount: -1 })
		assert.equal(bad.status, 400)
	})
})
