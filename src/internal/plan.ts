/**
 * The commit as one pure decision: from what the request loaded, its change set, the time and the rules,
 * the store operation to run and the cookie to send. Every commit rule lives here once; the request-scoped
 * part (`session.ts`) only keeps state and runs what this returns (`commit.ts`).
 *
 * - No stored session: a change set that leaves user data creates one under a fresh token; one that leaves
 *   none stores nothing and sends no cookie.
 * - A live session: a change set that changes something is a compare-and-set `Save` on the version loaded
 *   (the merge: the changes re-applied onto whatever record the runner holds); `cycleId` is a `Move`: the data
 *   under a fresh token, then the old record replaced, by compare-and-set at the same version, with a tombstone
 *   that holds no data and expires at the end of the grace window. A change that changes nothing (an equal value,
 *   a missing key removed, an empty session cleared) writes nothing; a read-only request refreshes a sliding
 *   expiry only below `refreshAfter`.
 * - A moved session (a tombstone, inside the grace window): nothing is written and no cookie sent, so a request
 *   still carrying the old token can neither undo the login's new cookie nor reach the moved data.
 * - `flush` ends the loaded session (`end`); what the request sets afterwards starts a new one.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Expiry from "../Expiry.js"
import { META_KEY, Metadata, type UserBinding } from "../Session.js"

export type { Metadata } from "../Session.js"
import * as SessionData from "../SessionData.js"
import type { SessionId } from "../SessionId.js"
import type { SessionRecord } from "../SessionRecord.js"
import * as Csrf from "./csrf.js"

/** One key's change. */
export type Change = { readonly op: "set"; readonly value: SessionData.JsonValue } | { readonly op: "remove" }

/** A request's changes, as of one commit. */
export interface ChangeSet {
  /** The session the request started with is to be ended (`flush`); the changes below start a new one. */
  readonly flushed: boolean
  readonly changes: ReadonlyMap<string, Change>
  /** Every key of the base record is dropped before `changes` apply. */
  readonly cleared: boolean
  /** The session's own expiry, set with `setExpiry`. */
  readonly expiry: Expiry.Expiry | undefined
  /** `cycleId`: move the session to a fresh token. */
  readonly cycle: boolean
  /** `bindUser` / `unbindUser`: the session's user from now on. */
  readonly user: UserChange | undefined
}

/** A change of the session's user. */
export type UserChange = { readonly _tag: "Bind"; readonly binding: UserBinding } | { readonly _tag: "Unbind" }

/** The configuration the rules read. */
export interface Rules {
  readonly expiry: Expiry.Expiry
  readonly sessionEndLifetimeMs: number
  /** `undefined`: half the sliding lifetime. */
  readonly refreshAfterMs: number | undefined
  readonly absoluteLifetimeMs: number | undefined
  /** How long the tombstone of a moved session lives. */
  readonly cycleGraceMs: number
  /** `cycleId` drops the CSRF secret, so the next `Csrf.token` draws a new one. */
  readonly rotateCsrfOnCycle: boolean
}

/** What a token reaches in the store. */
export type Base =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Moved"; readonly record: SessionRecord }
  | { readonly _tag: "Live"; readonly record: SessionRecord; readonly meta: Metadata }

/** The store operation of a plan. */
export type Write =
  | { readonly _tag: "None" }
  /** Create a session under a fresh token (`Collision`: draw again). */
  | {
    readonly _tag: "Create"
    readonly data: SessionData.SessionData
    readonly meta: Metadata
    readonly expiresAt: number
  }
  /** Compare-and-set save; `refresh` when only the expiry moves (a read-only request). */
  | { readonly _tag: "Save"; readonly record: SessionRecord; readonly meta: Metadata; readonly refresh: boolean }
  /** Create the data under a fresh token, then compare-and-set the old record into `tombstone`. */
  | {
    readonly _tag: "Move"
    readonly data: SessionData.SessionData
    readonly meta: Metadata
    readonly expiresAt: number
    readonly tombstone: SessionRecord
  }
  /** The session's time is up (absolute lifetime, a past `AtDateTime`): delete it. */
  | { readonly _tag: "End"; readonly id: SessionId }

/** The cookie of a plan; `Set` carries the new token after a `Create` or `Move`, the current one otherwise. */
export type CookiePlan =
  | { readonly _tag: "None" }
  | { readonly _tag: "Remove" }
  | { readonly _tag: "Set"; readonly maxAge: number | undefined }

export interface Plan {
  /** A flushed session to delete before `write`. */
  readonly end: SessionId | undefined
  readonly write: Write
  readonly cookie: CookiePlan
}

/** What the incoming cookie says, beside the record it reaches. */
export interface Incoming {
  /** A cookie of the session's name came with the request (well-formed or not). */
  readonly present: boolean
  /** It verified under an older signing key: re-issue it under the first. */
  readonly reissue: boolean
}

export const NO_CHANGES: ChangeSet = {
  flushed: false,
  changes: new Map(),
  cleared: false,
  expiry: undefined,
  cycle: false,
  user: undefined
}

const NO_COOKIE: CookiePlan = { _tag: "None" }
const REMOVE_COOKIE: CookiePlan = { _tag: "Remove" }
/** Nothing to write, no cookie. */
export const NOTHING: Plan = { end: undefined, write: { _tag: "None" }, cookie: NO_COOKIE }

/** The plan after the store answered `Gone`: the session ended elsewhere; forget it and remove the cookie. */
export const GONE: Plan = { end: undefined, write: { _tag: "None" }, cookie: REMOVE_COOKIE }

const NO_META: Metadata = {}
const decodeMeta = Schema.decodeUnknownEither(Metadata)
const encodeMeta = Schema.encodeSync(Metadata)

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

/** `readMeta` reads the library's metadata from stored data; anything malformed reads as none. */
export const readMeta = (data: SessionData.SessionData): Metadata => {
  if (!hasOwn(data, META_KEY)) return NO_META
  const decoded = decodeMeta(data[META_KEY])
  return Either.isRight(decoded) ? decoded.right : NO_META
}

/** `classify` tells what a loaded record is to a request: a live session, or the tombstone of a moved one. */
export const classify = (record: SessionRecord | undefined): Base => {
  if (record === undefined) return { _tag: "Absent" }
  const meta = readMeta(record.data)
  return meta.movedAt !== undefined ? { _tag: "Moved", record } : { _tag: "Live", record, meta }
}

/** The metadata a write stores: `refreshedAt` is the write's time. */
const metaOf = (
  createdAt: number,
  expiry: Expiry.Expiry | undefined,
  user: UserBinding | undefined,
  now: number
): Metadata => {
  const meta: { -readonly [K in keyof Metadata]: Metadata[K] } = { createdAt }
  if (expiry !== undefined) meta.expiry = expiry
  if (user !== undefined) meta.user = user
  meta.refreshedAt = now
  return meta
}

/** The user a write stores: the change's, else the one the session has. */
const nextUser = (meta: Metadata, change: UserChange | undefined): UserBinding | undefined =>
  change === undefined ? meta.user : change._tag === "Bind" ? change.binding : undefined

/** The metadata a write that changes a live session stores: its own expiry and user as changed, written now. */
const writtenMeta = (meta: Metadata, changes: ChangeSet, expiryChanged: boolean, now: number): Metadata =>
  metaOf(meta.createdAt ?? now, expiryChanged ? changes.expiry : meta.expiry, nextUser(meta, changes.user), now)

/** A user change changes the session: a bind always (a new authentication), an unbind of a bound session. */
const userChanged = (meta: Metadata, change: UserChange | undefined): boolean =>
  change !== undefined && (change._tag === "Bind" || meta.user !== undefined)

const withMeta = (data: Record<string, SessionData.JsonValue>, meta: Metadata): SessionData.SessionData => {
  data[META_KEY] = encodeMeta(meta) as SessionData.JsonValue
  return data
}

/** `expiresAt` is when a session with `meta` ends if touched at `now`, capped by the absolute lifetime. */
export const expiresAt = (meta: Metadata, now: number, rules: Rules): number =>
  Expiry.expiresAt(meta.expiry ?? rules.expiry, now, {
    sessionEndLifetime: rules.sessionEndLifetimeMs,
    absoluteDeadline: rules.absoluteLifetimeMs === undefined
      ? undefined
      : (meta.createdAt ?? now) + rules.absoluteLifetimeMs
  })

/** The lifetime a sliding expiry slides by, or `undefined` for a fixed one. */
const slidingMs = (expiry: Expiry.Expiry, rules: Rules): number | undefined => {
  switch (expiry._tag) {
    case "OnSessionEnd":
      return rules.sessionEndLifetimeMs
    case "OnInactivity":
      return Duration.toMillis(expiry.duration)
    case "AtDateTime":
      return undefined
  }
}

/** `refreshedExpiresAt` is the later expiry a read-only request pushes a sliding session out to, if it should. */
const refreshedExpiresAt = (record: SessionRecord, meta: Metadata, now: number, rules: Rules): number | undefined => {
  const sliding = slidingMs(meta.expiry ?? rules.expiry, rules)
  if (sliding === undefined) return undefined
  if (record.expiresAt - now >= (rules.refreshAfterMs ?? sliding / 2)) return undefined
  const next = expiresAt(meta, now, rules)
  return next > record.expiresAt ? next : undefined
}

const setCookie = (meta: Metadata, at: number, now: number, rules: Rules): CookiePlan => ({
  _tag: "Set",
  maxAge: Expiry.maxAgeSeconds(meta.expiry ?? rules.expiry, at, now)
})

const userKeys = (data: SessionData.SessionData | undefined): number => {
  let n = 0
  if (data !== undefined) { for (const k in data) if (k !== META_KEY) n++ }
  return n
}

/**
 * `merge` applies the changes onto the base data (without its metadata): the new user data, and whether it
 * differs from the base.
 */
export const merge = (
  base: SessionData.SessionData | undefined,
  changes: ChangeSet
): { readonly data: Record<string, SessionData.JsonValue>; readonly changed: boolean } => {
  const out: Record<string, SessionData.JsonValue> = Object.create(null)
  const keep = base !== undefined && !changes.cleared
  if (keep) { for (const k in base) if (k !== META_KEY) out[k] = base[k] }
  let changed = false
  for (const [k, c] of changes.changes) {
    if (c.op === "set") {
      if (!changed && (base === undefined || !hasOwn(base, k) || !SessionData.equals(base[k], c.value))) changed = true
      out[k] = c.value
    } else {
      if (!changed && base !== undefined && hasOwn(base, k)) changed = true
      delete out[k]
    }
  }
  if (!changed && changes.cleared && base !== undefined) {
    // A clear changes something only if a key it dropped was not set again to the same value.
    for (const k in base) {
      if (k !== META_KEY && !hasOwn(out, k)) {
        changed = true
        break
      }
    }
  }
  return { data: out, changed }
}

/** The plan for a request whose token reaches no live session. */
const fresh = (
  changes: ChangeSet,
  now: number,
  rules: Rules,
  end: SessionId | undefined,
  removeCookie: boolean
): Plan => {
  const { data } = merge(undefined, changes)
  const meta = metaOf(now, changes.expiry, nextUser(NO_META, changes.user), now)
  const at = expiresAt(meta, now, rules)
  if ((userKeys(data) === 0 && meta.user === undefined) || at <= now) {
    // An empty session that was never stored is never stored and sets no cookie (a bound user is not empty).
    return end === undefined && !removeCookie ? NOTHING : { end, write: { _tag: "None" }, cookie: REMOVE_COOKIE }
  }
  return {
    end,
    write: { _tag: "Create", data: withMeta(data, meta), meta, expiresAt: at },
    cookie: setCookie(meta, at, now, rules)
  }
}

/**
 * `decide` is the commit: what to write and which cookie to send, given what the token reaches (`base`), the
 * request's change set, the time, the rules and the incoming cookie.
 */
export const decide = (base: Base, changes: ChangeSet, now: number, rules: Rules, incoming: Incoming): Plan => {
  switch (base._tag) {
    case "Moved":
      // Inside the grace window of a move: a request still carrying the old token writes nothing and sends
      // no cookie (a removal would undo the login's new cookie; the old token must reach nothing).
      return NOTHING
    case "Absent":
      // A flush of a cookie that reached nothing still removes the cookie.
      return fresh(changes, now, rules, undefined, changes.flushed && incoming.present)
    case "Live": {
      const { meta, record } = base
      if (changes.flushed) return fresh(changes, now, rules, record.id, true)
      const merged = merge(record.data, changes)
      const expiryChanged = changes.expiry !== undefined &&
        (meta.expiry === undefined || !Expiry.equals(meta.expiry, changes.expiry))
      if (changes.cycle) {
        const data = merged.data
        if (rules.rotateCsrfOnCycle) delete data[Csrf.TOKEN_KEY]
        const nextMeta = writtenMeta(meta, changes, expiryChanged, now)
        const at = expiresAt(nextMeta, now, rules)
        if (at <= now) return { end: undefined, write: { _tag: "End", id: record.id }, cookie: REMOVE_COOKIE }
        const tombstoneMeta: Metadata = { createdAt: nextMeta.createdAt, movedAt: now }
        const tombstone: SessionRecord = {
          id: record.id,
          data: withMeta(Object.create(null), tombstoneMeta),
          expiresAt: Math.min(record.expiresAt, now + rules.cycleGraceMs),
          version: record.version
        }
        // A new token always needs its cookie, also for a browser-session cookie.
        return {
          end: undefined,
          write: { _tag: "Move", data: withMeta(data, nextMeta), meta: nextMeta, expiresAt: at, tombstone },
          cookie: setCookie(nextMeta, at, now, rules)
        }
      }
      if (merged.changed || expiryChanged || userChanged(meta, changes.user)) {
        const nextMeta = writtenMeta(meta, changes, expiryChanged, now)
        const at = expiresAt(nextMeta, now, rules)
        if (at <= now) return { end: undefined, write: { _tag: "End", id: record.id }, cookie: REMOVE_COOKIE }
        const fixed = (nextMeta.expiry ?? rules.expiry)._tag === "OnSessionEnd"
        const sendCookie = expiryChanged || incoming.reissue || (!fixed && at !== record.expiresAt)
        return {
          end: undefined,
          write: {
            _tag: "Save",
            record: { id: record.id, data: withMeta(merged.data, nextMeta), expiresAt: at, version: record.version },
            meta: nextMeta,
            refresh: false
          },
          cookie: sendCookie ? setCookie(nextMeta, at, now, rules) : NO_COOKIE
        }
      }
      // Read-only (or a change that changes nothing): refresh a sliding expiry only below `refreshAfter`.
      const next = refreshedExpiresAt(record, meta, now, rules)
      if (next !== undefined) {
        const sessionCookie = (meta.expiry ?? rules.expiry)._tag === "OnSessionEnd"
        const refreshed: Metadata = { ...meta, refreshedAt: now }
        const data = withMeta(Object.assign(Object.create(null), record.data), refreshed)
        return {
          end: undefined,
          write: { _tag: "Save", record: { ...record, data, expiresAt: next }, meta: refreshed, refresh: true },
          cookie: !sessionCookie || incoming.reissue ? setCookie(meta, next, now, rules) : NO_COOKIE
        }
      }
      return incoming.reissue
        ? { end: undefined, write: { _tag: "None" }, cookie: setCookie(meta, record.expiresAt, now, rules) }
        : NOTHING
    }
  }
}

/** `isNothing` is true for a plan that writes nothing and sends no cookie. */
export const isNothing = (plan: Plan): boolean =>
  plan.end === undefined && plan.write._tag === "None" && plan.cookie._tag === "None"

/**
 * The decision the middleware uses: `decide`, unless a test of the core provides a broken one (the core's
 * mutation tests); read once, when the middleware is built.
 */
export class Decide extends Context.Reference<Decide>()("effect-sessions/internal/Decide", {
  defaultValue: (): typeof decide => decide
}) {}
