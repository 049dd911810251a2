/**
 * The secret a session cookie carries: 16 bytes from `crypto.getRandomValues`,
 * base64url without padding (22 characters).
 *
 * A token is a credential. It never reaches a store (stores see its SHA-256
 * digest, see `SessionId`), a log line, a span or an error message.
 *
 * @example
 * ```ts
 * import { SessionToken } from "effect-sessions"
 * import { Effect, Option } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const token = yield* SessionToken.generate
 *   const parsed = SessionToken.parse(token) // Option.some(token)
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Brand from "effect/Brand"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * A session token: 22 base64url characters encoding 16 random bytes.
 *
 * @since 0.1.0
 */
export type SessionToken = string & Brand.Brand<"effect-sessions/SessionToken">

/**
 * Number of random bytes in a token.
 *
 * @since 0.1.0
 */
export const BYTES = 16

/**
 * Number of characters in an encoded token.
 *
 * @since 0.1.0
 */
export const LENGTH = 22

const pattern = /^[A-Za-z0-9_-]{21}[AQgw]$/

/**
 * Draws a new token from the platform's cryptographic random source.
 * This is the only function in the library that makes a token.
 *
 * @since 0.1.0
 */
export const unsafeGenerate = (): SessionToken => {
  const bytes = new Uint8Array(BYTES)
  globalThis.crypto.getRandomValues(bytes)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url") as SessionToken
}

/**
 * `generate` succeeds with a fresh token from `crypto.getRandomValues` (never Effect's `Random`).
 *
 * @since 0.1.0
 */
export const generate: Effect.Effect<SessionToken> = Effect.sync(unsafeGenerate)

/**
 * `parse` succeeds with `Option.some` only for the canonical encoding of 16 bytes
 * (22 base64url characters whose last one carries no stray bits); anything else is `Option.none()`.
 *
 * @since 0.1.0
 */
export const parse = (input: string): Option.Option<SessionToken> =>
  input.length === LENGTH && pattern.test(input) ? Option.some(input as SessionToken) : Option.none()

/**
 * `isSessionToken` is true for a string `parse` would accept.
 *
 * @since 0.1.0
 */
export const isSessionToken = (input: unknown): input is SessionToken =>
  typeof input === "string" && input.length === LENGTH && pattern.test(input)
