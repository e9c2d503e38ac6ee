// JSON control API (for tests and for people): GET /_fake/state, POST /_fake/scan, ...
import { createServer } from 'node:http'
import { sendContactMessage, sendFromPhone } from './messaging.js'
import { createGroup, listGroups } from './groups.js'

async function readJson(req) {
	const chunks = []
	for await (const c of req) chunks.push(c)
	const raw = Buffer.concat(chunks).toString('utf8').trim()
	if (!raw) return {}
	try {
		return JSON.parse(raw)
	} catch {
		const e = new Error('body must be JSON')
		e.status = 400
		throw e
	}
}

export function makeRoutes(fw) {
	return {
		'GET /_fake/state': () => fw.state(),
		'GET /_fake/received': () => fw.received,
		'DELETE /_fake/received': () => {
			fw.received.length = 0
			return { ok: true }
		},
		'GET /_fake/options': () => fw.options(),
		'POST /_fake/options': body => fw.setOptions(body),
		'POST /_fake/scan': body => fw.scan(body),
		'POST /_fake/pairing-code': body => fw.enterPairingCode(body),
		'GET /_fake/groups': () => listGroups(fw),
		'POST /_fake/groups': body => createGroup(fw, body),
		'POST /_fake/messages': body => sendContactMessage(fw, body),
		'POST /_fake/messages/from-phone': body => sendFromPhone(fw, body),
		'POST /_fake/remove-device': body => fw.removeDevice(body),
		'POST /_fake/drop': body => fw.dropConnections(body)
	}
}

export async function startControlServer(fw, { host = '127.0.0.1', port = 7101 } = {}) {
	const routes = makeRoutes(fw)
	const server = createServer(async (req, res) => {
		const path = new URL(req.url, 'http://x').pathname.replace(/\/+$/, '')
		const handler = routes[`${req.method} ${path}`]
		let status = 200
		let body
		try {
			if (!handler) {
				status = 404
				body = { error: `no route ${req.method} ${path}`, routes: Object.keys(routes) }
			} else {
				body = await handler(req.method === 'POST' ? await readJson(req) : {})
			}
		} catch (err) {
			status = err.status || 500
			body = { error: err.message || String(err) }
			if (status === 500) fw.log('control error', err)
		}
		res.writeHead(status, { 'content-type': 'application/json' })
		res.end(JSON.stringify(body, null, 2) + '\n')
	})
	await new Promise((resolve, reject) => {
		server.once('error', reject)
		server.listen(port, host, resolve)
	})
	return server
}
