// The WhatsApp engine's Node half: drives Baileys for the Python provider runtime.
//
// Protocol: one JSON object per line. stdin carries commands from Python ({op, id?, ...});
// stdout carries events to Python, each line prefixed with FRAME so that nothing else a library
// prints there can be taken for an event. Everything else goes to stderr.
//
// The auth state (creds and Signal keys) lives in this process's memory, loaded from Python at
// start; every change is sent to Python, which stores it in DynamoDB, and Baileys' write waits
// for Python's ack, so a crash right after a change loses nothing.
import { createInterface } from 'node:readline'
import makeWASocket, {
  BufferJSON,
  DisconnectReason,
  WA_CERT_DETAILS,
  initAuthCreds,
  jidNormalizedUser,
  proto,
} from '@whiskeysockets/baileys'

const FRAME = '@@IM@@ '
const out = process.stdout
// Libraries that print to stdout would corrupt the protocol: send console output to stderr.
console.log = console.info = console.debug = console.warn = console.error

function emit (event) {
  out.write(FRAME + JSON.stringify(event, BufferJSON.replacer) + '\n')
}

function log (level, message) {
  emit({ ev: 'log', level, message })
}

// A pino-compatible logger that forwards warnings and errors only.
function makeLogger () {
  const logger = {
    level: 'warn',
    child () { return logger },
    trace () {}, debug () {}, info () {},
    warn (obj, msg) { log('warn', describe(obj, msg)) },
    error (obj, msg) { log('error', describe(obj, msg)) },
    fatal (obj, msg) { log('error', describe(obj, msg)) },
  }
  return logger
}

function describe (obj, msg) {
  if (typeof obj === 'string') return obj
  const err = obj && (obj.err || obj.error)
  return [msg, err && err.message].filter(Boolean).join(': ') || 'baileys'
}

// --- acks from Python -------------------------------------------------------------------------
let nextRequest = 1
const waiting = new Map()

function request (event) {
  const id = nextRequest++
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject })
    emit({ ...event, id })
  })
}

// --- the auth state ---------------------------------------------------------------------------
function makeAuthState (saved) {
  const creds = saved.creds ? JSON.parse(JSON.stringify(saved.creds), BufferJSON.reviver) : initAuthCreds()
  const keys = JSON.parse(JSON.stringify(saved.keys || {}), BufferJSON.reviver)
  const store = {
    get: async (type, ids) => {
      const found = {}
      for (const id of ids) {
        let value = keys[type] && keys[type][id]
        if (value && type === 'app-state-sync-key') value = proto.Message.AppStateSyncKeyData.fromObject(value)
        found[id] = value
      }
      return found
    },
    set: async (data) => {
      for (const type of Object.keys(data)) {
        keys[type] = keys[type] || {}
        for (const [id, value] of Object.entries(data[type])) {
          if (value) keys[type][id] = value
          else delete keys[type][id]
        }
      }
      await request({ ev: 'keys', data })
    },
  }
  return { creds, keys: store }
}

// --- the socket -------------------------------------------------------------------------------
let sock = null
let config = null
let auth = null
let stopping = false
let reconnectDelay = 1000
const sentByApi = new Set()

function account () {
  const id = auth && auth.creds.me && auth.creds.me.id
  return id ? '+' + id.split(':')[0].split('@')[0] : null
}

function connect () {
  sock = makeWASocket({
    auth,
    waWebSocketUrl: config.wsUrl || undefined,
    logger: makeLogger(),
    printQRInTerminal: false,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    qrTimeout: config.qrTimeoutMs || undefined,
    connectTimeoutMs: 20000,
    defaultQueryTimeoutMs: 20000,
    browser: ['Instance Manager', 'Chrome', '1.0.0'],
  })
  const current = sock
  sock.ev.on('creds.update', async () => {
    try {
      await request({ ev: 'creds', creds: auth.creds })
    } catch (error) {
      log('error', `saving credentials failed: ${error.message}`)
    }
  })
  sock.ev.on('connection.update', (update) => {
    if (current !== sock) return
    const { connection, lastDisconnect, qr } = update
    if (qr) emit({ ev: 'qr', qr })
    if (connection === 'open') {
      reconnectDelay = 1000
      emit({ ev: 'connection', state: 'open', account: account() })
    } else if (connection === 'close') {
      const code = lastDisconnect && lastDisconnect.error && lastDisconnect.error.output
        ? lastDisconnect.error.output.statusCode : 0
      const reason = (lastDisconnect && lastDisconnect.error && lastDisconnect.error.message) || 'closed'
      onClose(code, reason)
    } else if (connection === 'connecting') {
      emit({ ev: 'connection', state: 'connecting' })
    }
  })
  sock.ev.on('messages.update', (updates) => {
    for (const { key, update } of updates) {
      const status = ACK_NAMES[update && update.status]
      // 'server' is reported once, when sendMessage returns
      if (key && key.fromMe && status && status !== 'server') emit({ ev: 'ack', id: key.id, chatId: chatIdOf(key), status })
    }
  })
  // Baileys decrypts incoming messages concurrently: one that must first store a new LID mapping can
  // be overtaken by the next one of its chat. Note the order they arrived in, and emit in that order.
  sock.ws.on('CB:message', (node) => arrived(node.attrs.id, node.attrs.from))
  sock.ev.on('messages.upsert', ({ messages, type }) => {
    if (type !== 'notify' && type !== 'append') return
    for (const message of messages) {
      const id = message.key && message.key.id
      // What we sent through the instance API is not news to the user's webhook.
      const view = id && sentByApi.delete(id) ? null : normalize(message)
      processed(id, view)
    }
  })
}

function onClose (code, reason) {
  const registered = Boolean(auth.creds.registered || auth.creds.me)
  if (stopping) {
    emit({ ev: 'connection', state: 'close', code, reason, final: true })
    return
  }
  if (code === DisconnectReason.loggedOut || code === DisconnectReason.forbidden) {
    emit({ ev: 'connection', state: 'close', code, reason, final: true, loggedOut: true })
    return
  }
  if (code === DisconnectReason.timedOut && !registered) {
    emit({ ev: 'connection', state: 'close', code, reason, final: true, qrExpired: true })
    return
  }
  if (code === DisconnectReason.restartRequired) {
    emit({ ev: 'connection', state: 'close', code, reason, final: false })
    connect()
    return
  }
  emit({ ev: 'connection', state: 'close', code, reason, final: false, retryInMs: reconnectDelay })
  setTimeout(() => { if (!stopping) connect() }, reconnectDelay)
  reconnectDelay = Math.min(reconnectDelay * 2, 60000)
}

// --- arrival order ----------------------------------------------------------------------------
const ORDER_WAIT_MS = 3000 // a message that never comes out of Baileys holds its chat no longer
let arrivalSeq = 0
const inBaileys = new Map() // id -> { seq, chat, at }: arrived, not yet out of Baileys
let ready = [] // { seq, chat, view }: out of Baileys, waiting for earlier arrivals of their chat

function arrived (id, chat) {
  if (id && !inBaileys.has(id)) inBaileys.set(id, { seq: ++arrivalSeq, chat, at: Date.now() })
}

function processed (id, view) {
  const arrival = id && inBaileys.get(id)
  if (arrival) inBaileys.delete(id)
  if (view) ready.push({ seq: arrival ? arrival.seq : Infinity, chat: arrival ? arrival.chat : view.chatId, view })
  release()
}

function release () {
  const now = Date.now()
  for (const [id, arrival] of inBaileys) if (now - arrival.at > ORDER_WAIT_MS) inBaileys.delete(id)
  ready.sort((a, b) => a.seq - b.seq)
  const kept = []
  for (const item of ready) {
    const earlier = kept.some((k) => k.chat === item.chat) ||
      [...inBaileys.values()].some((w) => w.chat === item.chat && w.seq < item.seq)
    if (earlier) kept.push(item)
    else emit({ ev: 'message', message: item.view })
  }
  ready = kept
}

setInterval(() => { if (ready.length) release() }, 500).unref()

// --- messages ---------------------------------------------------------------------------------
const TYPES = [
  ['conversation', 'text'], ['extendedTextMessage', 'text'], ['imageMessage', 'image'],
  ['videoMessage', 'video'], ['audioMessage', 'audio'], ['documentMessage', 'document'],
  ['stickerMessage', 'sticker'], ['locationMessage', 'location'], ['contactMessage', 'contact'],
  ['reactionMessage', 'reaction'], ['pollCreationMessage', 'poll'],
]

function unwrap (content) {
  let inner = content || {}
  for (const wrapper of ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'documentWithCaptionMessage']) {
    if (inner[wrapper] && inner[wrapper].message) inner = inner[wrapper].message
  }
  return inner
}

function phoneOf (jid) {
  return jid ? jid.split('@')[0].split(':')[0] : ''
}

export function normalize (message) {
  const key = message.key || {}
  const content = unwrap(message.message)
  if (!message.message || content.protocolMessage || content.senderKeyDistributionMessage && Object.keys(content).length === 1) {
    return null
  }
  const found = TYPES.find(([field]) => content[field])
  const type = found ? (found[0] === 'audioMessage' && content.audioMessage.ptt ? 'voice' : found[1]) : 'other'
  const body = content.conversation || (content.extendedTextMessage && content.extendedTextMessage.text) ||
    ['imageMessage', 'videoMessage', 'documentMessage'].map((f) => content[f] && content[f].caption).find(Boolean) ||
    (content.reactionMessage && content.reactionMessage.text) || ''
  const remote = key.remoteJid || ''
  const isGroup = remote.endsWith('@g.us')
  // WhatsApp addresses people by LID; where it gives the phone number too, the phone number wins.
  const personJid = isGroup ? (key.participantAlt || key.participant || '') : (remote.endsWith('@lid') && key.remoteJidAlt ? key.remoteJidAlt : remote)
  const chatId = isGroup ? remote : `${phoneOf(personJid)}@c.us`
  const senderJid = key.fromMe ? (auth.creds.me && auth.creds.me.id) : personJid
  const digits = phoneOf(senderJid)
  const name = key.fromMe ? (auth.creds.me && auth.creds.me.name) : message.pushName
  const contact = name ? `${name} (+${digits})` : `+${digits}`
  const seconds = Number(message.messageTimestamp || Math.floor(Date.now() / 1000))
  return {
    id: key.id,
    body,
    fromMe: Boolean(key.fromMe),
    timestamp: new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '.000Z'),
    contact,
    type,
    chatId,
    ...(isGroup ? { author: `${digits}@c.us` } : {}),
  }
}

// proto.WebMessageInfo.Status: 2 SERVER_ACK, 3 DELIVERY_ACK, 4 READ, 5 PLAYED
const ACK_NAMES = { 2: 'server', 3: 'delivered', 4: 'read', 5: 'played' }

function chatIdOf (key) {
  const remote = key.remoteJid || ''
  if (remote.endsWith('@g.us')) return remote
  const person = remote.endsWith('@lid') && key.remoteJidAlt ? key.remoteJidAlt : remote
  return `${phoneOf(person)}@c.us`
}

function toJid (chatId) {
  if (/^\d+$/.test(chatId)) return `${chatId}@s.whatsapp.net`
  if (chatId.endsWith('@c.us')) return `${chatId.slice(0, -5)}@s.whatsapp.net`
  return jidNormalizedUser(chatId)
}

// --- commands from Python ---------------------------------------------------------------------
async function handle (command) {
  switch (command.op) {
    case 'start':
      config = command
      if (config.rootPublicKeyHex) WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(config.rootPublicKeyHex, 'hex')
      auth = makeAuthState(command)
      connect()
      return
    case 'ack': {
      const pending = waiting.get(command.id)
      if (pending) {
        waiting.delete(command.id)
        if (command.error) pending.reject(new Error(command.error))
        else pending.resolve()
      }
      return
    }
    case 'send':
      try {
        const sent = await sock.sendMessage(toJid(command.to), { text: command.text })
        sentByApi.add(sent.key.id)
        emit({ ev: 'ack', id: sent.key.id, chatId: chatIdOf(sent.key), status: 'server' })
        if (sentByApi.size > 1000) sentByApi.delete(sentByApi.values().next().value)
        emit({ ev: 'result', id: command.id, ok: true, messageId: sent.key.id })
      } catch (error) {
        emit({ ev: 'result', id: command.id, ok: false, error: error.message })
      }
      return
    case 'pairing_code':
      try {
        const code = await sock.requestPairingCode(command.phone)
        emit({ ev: 'result', id: command.id, ok: true, code })
      } catch (error) {
        emit({ ev: 'result', id: command.id, ok: false, error: error.message })
      }
      return
    case 'stop':
      stopping = true
      if (sock) sock.end(undefined)
      setTimeout(() => process.exit(0), 200)
      return
    default:
      log('warn', `unknown command ${command.op}`)
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let command
  try {
    command = JSON.parse(line)
  } catch {
    log('warn', 'ignored a line that is not JSON')
    return
  }
  handle(command).catch((error) => log('error', `${command.op} failed: ${error.message}`))
}).on('close', () => {
  stopping = true
  process.exit(0)
})

process.on('unhandledRejection', (error) => log('error', `unhandled: ${error && error.message}`))
emit({ ev: 'ready', pid: process.pid })
