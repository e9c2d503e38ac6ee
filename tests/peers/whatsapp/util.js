// Small shared helpers.
export class HttpError extends Error {
	constructor(status, message) {
		super(message)
		this.status = status
	}
}

export const nowS = () => Math.floor(Date.now() / 1000)

/** Phone/LID digits from "15551234567", "+1 555...", "15551234567:3@s.whatsapp.net" or "...@lid". */
export const digits = (s) => String(s ?? '').split('@')[0].split(':')[0].replace(/\D/g, '')
