/**
 * The key a store sees: the SHA-256 digest of a session token, base64url without
 * padding (43 characters).
 *
 * A store never sees a token, so a leaked database or backup holds no usable
 * session. Treat an id as sensitive all the same: it never goes into a log line,
 * a span or an error message.
 *
 * @example
 * ```ts
 * import { SessionId, SessionToken } from "effect-sessions"
 *
 * const id = SessionId.fromToken(SessionToken.unsafeGenerate())
 * ```
 *
 * @since 0.1.0
 */
import type * as Brand from "effect/Brand"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import type { SessionToken } from "./SessionToken.js"

/**
 * A session id: 43 base64url characters, the SHA-256 digest of a `SessionToken`.
 *
 * @since 0.1.0
 */
export type SessionId = string & Brand.Brand<"effect-sessions/SessionId">

/**
 * Number of characters in an id.
 *
 * @since 0.1.0
 */
export const LENGTH = 43

const pattern = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

/**
 * `fromToken` is the SHA-256 digest of the token, base64url: the same token always gives the same id.
 *
 * @since 0.1.0
 */
export const fromToken = (token: SessionToken): SessionId =>
  createHash("sha256").update(token, "utf8").digest("base64url") as SessionId

/**
 * `isSessionId` is true for the canonical base64url encoding of 32 bytes.
 *
 * @since 0.1.0
 */
export const isSessionId = (input: unknown): input is SessionId =>
  typeof input === "string" && input.length === LENGTH && pattern.test(input)

/**
 * `parse` succeeds with `Option.some` only for a well-formed id.
 *
 * @since 0.1.0
 */
export const parse = (input: string): Option.Option<SessionId> =>
  isSessionId(input) ? Option.some(input) : Option.none()

/**
 * Schema for a stored id; decoding fails for anything that is not a well-formed id.
 * Its failure message never repeats the input.
 *
 * @since 0.1.0
 */
export const SessionIdSchema: Schema.Schema<SessionId, string> = Schema.String.pipe(
  Schema.filter(isSessionId, { message: () => "not a session id" }),
  Schema.brand("effect-sessions/SessionId")
) as unknown as Schema.Schema<SessionId, string>
