// Units: fixed root keys, and the cert chain checks Baileys' handshake makes.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { Curve, proto } from '@whiskeysockets/baileys'
import { keyPairFromPrivate, makeCertChain } from '../noise.js'
import { buildPairSuccess, strictVerify } from '../pairing-crypto.js'

// Baileys 7.0.0-rc14's Curve.verify only catches throws and ignores libsignal's boolean result,
// so it accepts any well-formed signature: the checks below use strictVerify instead.
it('Baileys rc14 Curve.verify accepts a wrong key (why strictVerify exists)', () => {
	const k = Curve.generateKeyPair()
	const sig = Curve.sign(k.private, Buffer.from('x'))
	const wrongKey = Curve.generateKeyPair().public
	assert.equal(Curve.verify(wrongKey, Buffer.from('x'), sig), true, 'if this fails, Baileys now really checks signatures')
	assert.equal(strictVerify(wrongKey, Buffer.from('x'), sig), false)
	assert.equal(strictVerify(k.public, Buffer.from('x'), sig), true)
})

it('--root-private-key: the derived public key is the X25519 public key of that private key', () => {
	const a = keyPairFromPrivate('11'.repeat(32))
	const b = Curve.generateKeyPair()
	assert.equal(a.public.length, 32)
	assert.deepEqual(Curve.sharedKey(a.private, b.public), Curve.sharedKey(b.private, a.public))
	assert.deepEqual(keyPairFromPrivate('11'.repeat(32)).public, a.public, 'stable')
	assert.throws(() => keyPairFromPrivate('abcd'))
})

it('cert chain: intermediate signed by the root (issuerSerial 0), leaf by the intermediate', () => {
	const root = Curve.generateKeyPair()
	const server = Curve.generateKeyPair()
	const chain = proto.CertChain.decode(makeCertChain({ rootKeyPair: root, serverStaticPublic: server.public }))
	const inter = proto.CertChain.NoiseCertificate.Details.decode(chain.intermediate.details)
	assert.equal(inter.issuerSerial, 0)
	assert.ok(strictVerify(root.public, chain.intermediate.details, chain.intermediate.signature))
	assert.ok(strictVerify(inter.key, chain.leaf.details, chain.leaf.signature))
	assert.ok(!strictVerify(Curve.generateKeyPair().public, chain.intermediate.details, chain.intermediate.signature))
	assert.ok(!strictVerify(root.public, chain.leaf.details, chain.leaf.signature))
})

it('pair-success: the account signature over [6,0]+details+companion identity verifies', () => {
	const account = { rawId: 42, accountKeyPair: Curve.generateKeyPair() }
	const companion = Curve.generateKeyPair()
	const adv = Buffer.alloc(32, 3)
	const node = buildPairSuccess({
		id: 'x',
		account,
		device: { keyIndex: 1, jid: '1:1@s.whatsapp.net', lidJid: '2:1@lid' },
		companionIdentityPublic: companion.public,
		advSecretKey: adv
	})
	const idNode = node.content[0].content.find(n => n.tag === 'device-identity')
	const hmacd = proto.ADVSignedDeviceIdentityHMAC.decode(idNode.content)
	const signed = proto.ADVSignedDeviceIdentity.decode(hmacd.details)
	const msg = Buffer.concat([Buffer.from([6, 0]), signed.details, companion.public])
	assert.ok(strictVerify(signed.accountSignatureKey, msg, signed.accountSignature))
	assert.ok(!strictVerify(Curve.generateKeyPair().public, msg, signed.accountSignature))
})
