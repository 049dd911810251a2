/**
 * Cookie signing: HKDF derivation, the MAC and its constant-time check.
 */
import * as Option from "effect/Option"
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto"

export { decodeKey, generateKey, KEY_BYTES, MIN_KEY_BYTES } from "./signerKeys.js"

/** The HKDF label: a key given to this library signs nothing the same way elsewhere. */
const LABEL = "effect-sessions/cookie-signer/v1"

/** The format version the MAC covers. */
const FORMAT = "effect-sessions/cookie/v1"

/** Length of a base64url HMAC-SHA256 (32 bytes, no padding). */
const MAC_LENGTH = 43

/** Browsers keep cookies up to about 4 KiB; anything longer is not ours. */
const MAX_COOKIE_VALUE = 4096

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
    verify: (
      name: string,
      cookieValue: string
    ): Option.Option<{ readonly value: string; readonly reissue: boolean }> => {
      // the values come from requests: a non-string is junk, never a crash
      if (typeof cookieValue !== "string" || cookieValue.length > MAX_COOKIE_VALUE) return Option.none()
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
