// server.js runs by hand: prints the ws URL, the root key, curl hints and a FAKE_WA_READY line.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const serverJs = fileURLToPath(new URL('../server.js', import.meta.url))

it('node server.js --port 0 --control-port 0 starts and prints what a client needs', { timeout: 20000 }, async () => {
	const child = spawn(process.execPath, [serverJs, '--port', '0', '--control-port', '0', '--qr-ref-count', '4'], {
		stdio: ['ignore', 'pipe', 'inherit']
	})
	try {
		let out = ''
		const ready = await new Promise((resolve, reject) => {
			child.stdout.on('data', d => {
				out += d
				const m = out.match(/^FAKE_WA_READY (.*)$/m)
				if (m) resolve(JSON.parse(m[1]))
			})
			child.on('exit', code => reject(new Error(`server exited with ${code}: ${out}`)))
		})
		assert.match(ready.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/ws\/chat$/)
		assert.match(ready.rootPublicKeyHex, /^[0-9a-f]{64}$/)
		assert.ok(out.includes(ready.wsUrl) && out.includes(ready.rootPublicKeyHex))
		assert.match(out, /curl -s -XPOST .*\/_fake\/scan/)
		assert.match(out, /curl -s -XPOST .*\/_fake\/messages/)
		const state = await (await fetch(ready.controlUrl + '/_fake/state')).json()
		assert.equal(state.rootPublicKeyHex, ready.rootPublicKeyHex)
		assert.equal(state.wsUrl, ready.wsUrl)
		assert.equal(state.options.qrRefCount, 4)
	} finally {
		child.kill('SIGTERM')
	}
})
