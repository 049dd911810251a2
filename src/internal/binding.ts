/**
 * What a store's index reads from a record: the user a live session is bound to (from the library's metadata
 * inside the data), the key the index files it under, and the entry `list` returns.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { META_KEY } from "../Session.js"
import type * as SessionData from "../SessionData.js"
import type { SessionId } from "../SessionId.js"

/** A live session as `SessionIndex.list` returns it. */
export interface Entry {
  readonly id: SessionId
  readonly createdAt: number
  readonly authenticatedAt: number
  readonly expiresAt: number
  readonly refreshedAt: number
  readonly device: { readonly userAgent?: string; readonly ip?: string }
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

const isNonNegativeInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

/** The binding fields of stored data, read without a schema (this runs on every write of a store). */
const bindingOf = (data: SessionData.SessionData): Record<string, unknown> | undefined => {
  if (!hasOwn(data, META_KEY)) return undefined
  const meta = data[META_KEY]
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) return undefined
  // A moved session's tombstone belongs to nobody.
  if (hasOwn(meta, "movedAt")) return undefined
  const user = hasOwn(meta, "user") ? (meta as Record<string, unknown>)["user"] : undefined
  if (typeof user !== "object" || user === null || Array.isArray(user)) return undefined
  const id = (user as Record<string, unknown>)["id"]
  return typeof id === "string" && id.length > 0 ? (user as Record<string, unknown>) : undefined
}

/** `userOf(data)` is the user id a live session's data is bound to, or `undefined`. */
export const userOf = (data: SessionData.SessionData): string | undefined => bindingOf(data)?.["id"] as string

/**
 * `userKey(userId)` is the key an index files a user under: a SHA-256 digest (43 characters of base64url), so a
 * key has one length and no store's key space, column or log of keys holds the app's user ids.
 */
export const userKey = (userId: string): string =>
  createHash("sha256").update("effect-sessions:user:").update(userId, "utf8").digest("base64url")

/** `userKeyOf(data)` is the index key of the user the data is bound to, or `undefined`. */
export const userKeyOf = (data: SessionData.SessionData): string | undefined => {
  const user = userOf(data)
  return user === undefined ? undefined : userKey(user)
}

/**
 * `entryOf(id, data, expiresAt, userId)` is the entry of a live session bound to `userId`, or `undefined` when
 * the data is bound to someone else (or no one).
 */
export const entryOf = (
  id: SessionId,
  data: SessionData.SessionData,
  expiresAt: number,
  userId: string
): Entry | undefined => {
  const user = bindingOf(data)
  if (user === undefined || user["id"] !== userId) return undefined
  const meta = data[META_KEY] as Record<string, unknown>
  const createdAt = isNonNegativeInt(meta["createdAt"]) ? meta["createdAt"] : 0
  const authenticatedAt = isNonNegativeInt(user["authenticatedAt"]) ? user["authenticatedAt"] : createdAt
  const refreshedAt = isNonNegativeInt(meta["refreshedAt"]) ? meta["refreshedAt"] : authenticatedAt
  const device: { userAgent?: string; ip?: string } = {}
  if (typeof user["userAgent"] === "string") device.userAgent = user["userAgent"]
  if (typeof user["ip"] === "string") device.ip = user["ip"]
  return { id, createdAt, authenticatedAt, expiresAt, refreshedAt, device }
}

/** Newest authentication first, then by id: one order for every store. */
export const byRecency = (a: Entry, b: Entry): number =>
  b.authenticatedAt - a.authenticatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
