/**
 * What a store holds for one session: `{ id, data, expiresAt, version }`.
 * `expiresAt` is in epoch milliseconds and judged by the application's `Clock`;
 * `version` starts at 1 and grows by one with every successful `save`.
 *
 * @example
 * ```ts
 * import { SessionData, SessionId, SessionRecord, SessionToken } from "effect-sessions"
 *
 * const record = SessionRecord.make({
 *   id: SessionId.fromToken(SessionToken.unsafeGenerate()),
 *   data: SessionData.fromEntries([["visits", 1]]),
 *   expiresAt: Date.now() + 60_000,
 *   version: 1
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SessionData from "./SessionData.js"
import * as SessionId from "./SessionId.js"
import * as StoreError from "./StoreError.js"

/**
 * One stored session.
 *
 * @since 0.1.0
 */
export interface SessionRecord {
  readonly id: SessionId.SessionId
  readonly data: SessionData.SessionData
  /** Epoch milliseconds; the record is expired when `expiresAt <= now`. */
  readonly expiresAt: number
  /** 1 for a new session, one more after each successful `save`. */
  readonly version: number
}

/**
 * `make` builds a record (no checks: stores check data through `SessionStore.make`).
 *
 * @since 0.1.0
 */
export const make = (fields: SessionRecord): SessionRecord => ({
  id: fields.id,
  data: fields.data,
  expiresAt: fields.expiresAt,
  version: fields.version
})

/**
 * Schema of a record as it is stored: a well-formed id, data following the rules,
 * a finite integer `expiresAt` and a positive integer `version`.
 *
 * @since 0.1.0
 */
export const SessionRecordSchema: Schema.Schema<SessionRecord, {
  readonly id: string
  readonly data: SessionData.SessionData
  readonly expiresAt: number
  readonly version: number
}> = Schema.Struct({
  id: SessionId.SessionIdSchema,
  data: SessionData.SessionDataSchema,
  expiresAt: Schema.Number.pipe(Schema.int(), Schema.finite()),
  version: Schema.Number.pipe(Schema.int(), Schema.positive())
})

/**
 * `isExpired` is true when `now` has reached the record's `expiresAt`.
 *
 * @since 0.1.0
 */
export const isExpired = (record: Pick<SessionRecord, "expiresAt">, now: number): boolean => record.expiresAt <= now

/**
 * Raw fields of a stored record as a backend reads them back; `data` is JSON text or an already-parsed value.
 *
 * @since 0.1.0
 */
export interface StoredFields {
  readonly id: unknown
  readonly data: unknown
  readonly expiresAt: unknown
  readonly version: unknown
}

const toSafeInteger = (u: unknown): number | undefined => {
  if (typeof u === "number") return Number.isSafeInteger(u) ? u : undefined
  if (typeof u === "bigint") {
    return u <= BigInt(Number.MAX_SAFE_INTEGER) && u >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(u)
      : undefined
  }
  if (typeof u === "string" && /^-?\d{1,16}$/.test(u)) {
    const n = Number(u)
    return Number.isSafeInteger(n) ? n : undefined
  }
  return undefined
}

/**
 * `decodeStored` turns a backend's raw fields into a record, or names the broken rule.
 * Numbers may arrive as numbers, bigints or decimal strings (BIGINT columns); data as JSON text or a parsed value.
 *
 * @since 0.1.0
 */
export const decodeStoredEither = (fields: StoredFields): Either.Either<SessionRecord, string> => {
  if (!SessionId.isSessionId(fields.id)) return Either.left("stored id is malformed")
  const expiresAt = toSafeInteger(fields.expiresAt)
  if (expiresAt === undefined) return Either.left("stored expiresAt is not an integer")
  const version = toSafeInteger(fields.version)
  if (version === undefined || version < 1) return Either.left("stored version is not a positive integer")
  const data = typeof fields.data === "string"
    ? SessionData.decode(fields.data)
    : fields.data instanceof Uint8Array
    ? SessionData.decode(
      Buffer.from(fields.data.buffer, fields.data.byteOffset, fields.data.byteLength).toString("utf8")
    )
    : SessionData.fromJsonValue(fields.data)
  if (Either.isLeft(data)) return Either.left(data.left)
  return Either.right({ id: fields.id, data: data.right, expiresAt, version })
}

/**
 * `decodeStored` fails with a `Decode` `StoreError` (for `load`, by default) when the fields do not make a record.
 *
 * @since 0.1.0
 */
export const decodeStored = (
  fields: StoredFields,
  method: StoreError.Method = "load"
): Effect.Effect<SessionRecord, StoreError.StoreError> => {
  const result = decodeStoredEither(fields)
  return Either.isRight(result)
    ? Effect.succeed(result.right)
    : Effect.fail(StoreError.rule("Decode", method, result.left))
}

/**
 * `decodeUnknown` validates an arbitrary value against `SessionRecordSchema`; failure is a `Decode` `StoreError`
 * whose cause never repeats the value.
 *
 * @since 0.1.0
 */
export const decodeUnknown = (
  u: unknown,
  method: StoreError.Method = "load"
): Effect.Effect<SessionRecord, StoreError.StoreError> =>
  Schema.decodeUnknown(SessionRecordSchema)(u).pipe(
    Effect.mapError((e: ParseResult.ParseError) =>
      StoreError.rule("Decode", method, `stored record does not match the schema (${e._tag})`)
    )
  )
