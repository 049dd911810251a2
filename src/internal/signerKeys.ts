/**
 * Cookie signing keys: decoding and generation. No dependency beyond Node, so the
 * `effect-sessions keygen` command loads nothing else.
 */

/** @internal */
export const MIN_KEY_BYTES = 32

/** @internal */
export const KEY_BYTES = 32

const base64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2})$/

/** @internal */
export const decodeKey = (text: unknown): Buffer | undefined => {
  if (typeof text !== "string") return undefined
  const trimmed = text.trim()
  if (!base64.test(trimmed)) return undefined
  const body = trimmed.replace(/=+$/, "")
  if (body.length % 4 === 1) return undefined
  if (trimmed.length !== body.length && trimmed.length % 4 !== 0) return undefined
  const bytes = Buffer.from(body, /[-_]/.test(body) ? "base64url" : "base64")
  return bytes.length >= MIN_KEY_BYTES ? bytes : undefined
}

/** @internal */
export const generateKey = (): string => {
  const bytes = new Uint8Array(KEY_BYTES)
  globalThis.crypto.getRandomValues(bytes)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")
}
