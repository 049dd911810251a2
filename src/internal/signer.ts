/**
 * Cookie signing: key decoding, HKDF derivation, the MAC and its constant-time check.
 */
import * as Option from "effect/Option"
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto"

/** @internal */
export const MIN_KEY_BYTES = 32

/** @internal */
export const KEY_BYTES = 32

/** The HKDF label: a key given to this library signs nothing the same way elsewhere. */
const LABEL = "effect-sessions/cookie-signer/v1"

/** The format version the MAC covers. */
const FORMAT = "effect-sessions/cookie/v1"

/** Length of a base64url HMAC-SHA256 (32 bytes, no padding). */
const MAC_LENGTH = 43

/** Browsers keep cookies up to about 4 KiB; anything longer is not ours. */
const MAX_COOKIE_VALUE = 4096

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

const derive = (key: Buffer): Buffer => Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), LABEL, 32))

const mac = (key: Buffer, name: string, value: string): Buffer =>
  Buffer.from(
    createHmac("sha256", key)
      .update(`${FORMAT}\n${Buffer.byteLength(name, "utf8")}:${name}=${value}`, "utf8")
      .digest("base64url"),
    "latin1"
  )

/** @internal */
export const makeSigner = (keys: ReadonlyArray<Buffer>) => {
  const derived = keys.map(derive)
  const first = derived[0]
  return {
    sign: (name: string, value: string): string => `${value}.${mac(first, name, value).toString("latin1")}`,
    verify: (name: string, cookieValue: string): Option.Option<{ readonly value: string; readonly reissue: boolean }> => {
      if (cookieValue.length > MAX_COOKIE_VALUE) return Option.none()
      const dot = cookieValue.lastIndexOf(".")
      if (dot < 0) return Option.none()
      const value = cookieValue.slice(0, dot)
      const given = Buffer.from(cookieValue.slice(dot + 1), "utf8")
      if (given.length !== MAC_LENGTH) return Option.none()
      for (let i = 0; i < derived.length; i++) {
        const expected = mac(derived[i], name, value)
        if (expected.length === given.length && timingSafeEqual(expected, given)) {
          return Option.some({ value, reissue: i > 0 })
        }
      }
      return Option.none()
    }
  }
}
