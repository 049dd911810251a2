/**
 * MongoStore internals as pure functions: the document a record becomes, the filter and update of every
 * operation, and the mapping of driver errors to `StoreError`. Nothing here talks to a server, so all of it
 * is tested without one.
 */
import * as Either from "effect/Either"
import type { SessionId } from "../SessionId.js"
import * as SessionRecord from "../SessionRecord.js"
import * as StoreError from "../StoreError.js"
import * as Binding from "./binding.js"

/**
 * A session as stored: the data as its JSON text, `expiresAt` as a BSON date (for the TTL index), and for a
 * session bound to a user the user's key (`SessionIndex.userKey`, a digest, never the user id) for the index.
 */
export interface SessionDocument {
  readonly _id: string
  readonly data: string
  readonly expiresAt: Date
  readonly version: number
  readonly userKey?: string
}

/** The largest instant a `Date` (and so a BSON date) can hold, in epoch ms. */
export const MAX_DATE_MS = 8.64e15

/** The name of the TTL index `migrate` creates. */
export const TTL_INDEX_NAME = "expiresAt_ttl"

/** The name of the per-user index `migrate` creates. */
export const USER_INDEX_NAME = "userKey_expiresAt"

/** The driver's code for a duplicate key. */
export const DUPLICATE_KEY = 11000
/** The server's codes for an index that exists with other options. */
export const INDEX_OPTIONS_CONFLICT = 85
export const INDEX_KEY_SPECS_CONFLICT = 86

/** `toDate` is the BSON date of `expiresAt`, or the rule it breaks. */
export const toDate = (expiresAt: number): Either.Either<Date, string> =>
  Math.abs(expiresAt) <= MAX_DATE_MS
    ? Either.right(new Date(expiresAt))
    : Either.left("expiresAt is outside the range of a date")

/** `toDocument` is the document `create` stores for a record whose data is `json`. */
export const toDocument = (
  record: SessionRecord.SessionRecord,
  json: string
): Either.Either<SessionDocument, string> =>
  Either.map(toDate(record.expiresAt), (expiresAt) => {
    const userKey = Binding.userKeyOf(record.data)
    return userKey === undefined
      ? { _id: record.id, data: json, expiresAt, version: record.version }
      : { _id: record.id, data: json, expiresAt, version: record.version, userKey }
  })

/**
 * The update that writes `document`'s fields at `version`: the user key is set with the data, or removed when the
 * session is bound to no one (an unbound, moved or rebound session leaves its old user's index in the same write).
 */
const writeUpdate = (document: SessionDocument, version: number) =>
  document.userKey === undefined
    ? {
      $set: { data: document.data, expiresAt: document.expiresAt, version },
      $unset: { userKey: "" }
    } as const
    : { $set: { data: document.data, expiresAt: document.expiresAt, version, userKey: document.userKey } } as const

/**
 * `fromDocument` reads a stored document back into a record, or names the broken rule (never a value).
 */
export const fromDocument = (document: unknown): Either.Either<SessionRecord.SessionRecord, string> => {
  if (typeof document !== "object" || document === null) return Either.left("stored document is not an object")
  const { _id, data, expiresAt, version } = document as Record<string, unknown>
  if (typeof data !== "string") return Either.left("stored data is not a string")
  if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) {
    return Either.left("stored expiresAt is not a date")
  }
  return SessionRecord.decodeStoredEither({ id: _id, data, expiresAt: expiresAt.getTime(), version })
}

/** The filter that finds one session. */
export const idFilter = (id: SessionId): { readonly _id: string } => ({ _id: id })

/**
 * `create`: one upsert whose filter matches the id only when the stored document has expired by `now`
 * (the app clock). No document: inserted. An expired one: replaced. A live one: the filter misses, the
 * upsert tries to insert the same `_id` and the server answers duplicate key, which is `Collision`.
 */
export const createOperation = (document: SessionDocument, now: number) => ({
  filter: { _id: document._id, expiresAt: { $lte: new Date(now) } },
  update: writeUpdate(document, document.version),
  options: { upsert: true }
} as const)

/**
 * `save` (compare-and-set): updates only the live document with the expected version, to version + 1.
 * When nothing matched, `classifyMissedSave` tells `Conflict` from `Gone`.
 */
export const saveOperation = (document: SessionDocument, expectedVersion: number, now: number) => ({
  filter: { _id: document._id, version: expectedVersion, expiresAt: { $gt: new Date(now) } },
  update: writeUpdate(document, expectedVersion + 1)
} as const)

/** The projection of the read that follows a save that matched nothing. */
export const missedSaveProjection = { _id: 0, version: 1, expiresAt: 1 } as const

/** After a save that matched nothing: `Gone` when no live document is left at `now`, else `Conflict`. */
export const classifyMissedSave = (document: unknown, now: number): "Gone" | "Conflict" => {
  if (typeof document !== "object" || document === null) return "Gone"
  const expiresAt = (document as { expiresAt?: unknown }).expiresAt
  return expiresAt instanceof Date && expiresAt.getTime() > now ? "Conflict" : "Gone"
}

/** The filter of records expired at `now`. */
export const expiredFilter = (now: number) => ({ expiresAt: { $lte: new Date(now) } } as const)

/** The TTL index: the server removes a document `graceSeconds` after its `expiresAt` (the app clock judges before). */
export const ttlIndex = (graceSeconds: number) => ({
  key: { expiresAt: 1 },
  options: { name: TTL_INDEX_NAME, expireAfterSeconds: Math.max(0, Math.floor(graceSeconds)) }
} as const)

/**
 * The per-user index: the live sessions of a user are one range of it (`userKey` equal, `expiresAt` above now);
 * partial, so unbound sessions cost it nothing.
 */
export const userIndex = {
  key: { userKey: 1, expiresAt: 1 },
  options: { name: USER_INDEX_NAME, partialFilterExpression: { userKey: { $exists: true } } }
} as const

/** The filter of a user's sessions live at `now`, but `except`. */
export const liveOfUser = (userKey: string, now: number, except?: string) =>
  except === undefined
    ? { userKey, expiresAt: { $gt: new Date(now) } }
    : { userKey, expiresAt: { $gt: new Date(now) }, _id: { $ne: except } }

/** The `collMod` command that changes the grace of an existing TTL index. */
export const ttlCollMod = (collection: string, graceSeconds: number) => ({
  collMod: collection,
  index: { keyPattern: { expiresAt: 1 }, expireAfterSeconds: Math.max(0, Math.floor(graceSeconds)) }
} as const)

const numericCode = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === "number" ? code : undefined
}

/** `isDuplicateKey` is true for the driver's duplicate key error (code 11000). */
export const isDuplicateKey = (error: unknown): boolean => numericCode(error) === DUPLICATE_KEY

/** `isIndexConflict` is true when an index exists under the same name or key with other options. */
export const isIndexConflict = (error: unknown): boolean => {
  const code = numericCode(error)
  return code === INDEX_OPTIONS_CONFLICT || code === INDEX_KEY_SPECS_CONFLICT
}

/**
 * `toStoreError` maps a driver failure: a duplicate key on `create` is `Collision`; anything else (network,
 * server selection, timeouts, server errors) is `Unavailable`. The cause keeps the error's name and code only:
 * a duplicate key message repeats the key, which is a session id.
 */
export const toStoreError = (method: StoreError.Method, error: unknown): StoreError.StoreError =>
  method === "create" && isDuplicateKey(error)
    ? StoreError.make("Collision", method)
    : StoreError.make("Unavailable", method, error)
