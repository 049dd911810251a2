/**
 * The sessions of each user: a store that can keep a per-user index provides `SessionIndex` beside its
 * `SessionStore` (MemoryStore, SqlStore on every dialect, RedisStore standalone and Cluster, MongoStore, and
 * CachingStore through its persistent store). LruStore provides none — a bounded cache loses entries, so its
 * index would miss sessions — and a layer without an index has no `SessionIndex` in its type.
 *
 * A session belongs to a user once a request calls `Session.bindUser(userId)` (on login, typically with
 * `Session.cycleId`); the binding lives in the session's metadata, so every store files it with the record in
 * the same write.
 *
 * - `list(userId)`: the user's live sessions (never expired, revoked or moved ones), newest authentication
 *   first.
 * - `revoke(userId, { except })`: deletes every session of the user, or all but `except`, and succeeds with the
 *   count. Every session of the user whose write finished before `revoke` began is gone when it returns, and
 *   none comes back: a request that loaded one earlier gets `Gone` on its save.
 *
 * User ids never appear in spans, logs or errors; stores file them under a digest (`userKey`).
 *
 * @example
 * ```ts
 * import { Session, SessionIndex } from "effect-sessions"
 * import { Effect } from "effect"
 *
 * const login = (userId: string) => Effect.zipRight(Session.cycleId, Session.bindUser(userId))
 *
 * // a "your devices" page and its button
 * const devices = SessionIndex.mine
 * const logOutOthers = SessionIndex.revokeOthers
 *
 * // admin code: log a user out everywhere
 * const lock = (userId: string) => Effect.flatMap(SessionIndex.SessionIndex, (index) => index.revoke(userId))
 * ```
 *
 * @since 0.3.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as internal from "./internal/binding.js"
import { Session, type SessionError, sessionError } from "./Session.js"
import type { SessionId } from "./SessionId.js"
import type * as StoreError from "./StoreError.js"

/**
 * A live session of a user: its id (the token's digest), when it was created, when its user authenticated
 * (the `bindUser` call), when it expires, when a request last wrote it (a change, or a sliding refresh), and
 * the device details kept with the binding.
 *
 * @since 0.3.0
 */
export interface Entry extends internal.Entry {}

/**
 * Options of `revoke`.
 *
 * @since 0.3.0
 */
export interface RevokeOptions {
  /** The one session to keep (the current one, for "log out my other sessions"). */
  readonly except?: SessionId | undefined
}

/**
 * The index service.
 *
 * @since 0.3.0
 */
export interface Service {
  /** `list(userId)` succeeds with the user's live sessions, newest authentication first. */
  readonly list: (userId: string) => Effect.Effect<ReadonlyArray<Entry>, StoreError.StoreError>
  /** `revoke(userId, options)` deletes the user's sessions (all, or all but `except`) and succeeds with the count. */
  readonly revoke: (userId: string, options?: RevokeOptions) => Effect.Effect<number, StoreError.StoreError>
  /**
   * `revokeIds(userId, options)` is `revoke` succeeding with the ids it deleted: for a cache to evict and an
   * invalidation channel to announce.
   */
  readonly revokeIds: (
    userId: string,
    options?: RevokeOptions
  ) => Effect.Effect<ReadonlyArray<SessionId>, StoreError.StoreError>
}

/**
 * The per-user session index of the store in context.
 *
 * @since 0.3.0
 */
export class SessionIndex extends Context.Tag("effect-sessions/SessionIndex")<SessionIndex, Service>() {}

/**
 * `make({ list, revokeIds })` builds the service; `revoke` is `revokeIds` counted.
 *
 * @since 0.3.0
 */
export const make = (implementation: Omit<Service, "revoke">): Service => ({
  list: implementation.list,
  revokeIds: implementation.revokeIds,
  revoke: (userId, options) => Effect.map(implementation.revokeIds(userId, options), (ids) => ids.length)
})

/**
 * `list(userId)` lists a user's live sessions (admin code).
 *
 * @since 0.3.0
 */
export const list = (userId: string): Effect.Effect<ReadonlyArray<Entry>, StoreError.StoreError, SessionIndex> =>
  Effect.flatMap(SessionIndex, (index) => index.list(userId))

/**
 * `revoke(userId, options)` logs a user out everywhere, or everywhere but `except` (admin code).
 *
 * @since 0.3.0
 */
export const revoke = (
  userId: string,
  options?: RevokeOptions
): Effect.Effect<number, StoreError.StoreError, SessionIndex> =>
  Effect.flatMap(SessionIndex, (index) => index.revoke(userId, options))

/**
 * A session of the current user, marked when it is the current request's.
 *
 * @since 0.3.0
 */
export interface MineEntry extends Entry {
  readonly current: boolean
}

const storeFailure = (e: StoreError.StoreError): SessionError => sessionError("Store", e)

/**
 * `mine` succeeds with the current user's live sessions, the current one marked; none when the session is bound
 * to no user. A binding made by this request and not yet saved is listed once it is saved.
 *
 * @since 0.3.0
 */
export const mine: Effect.Effect<ReadonlyArray<MineEntry>, SessionError, Session | SessionIndex> = Effect.gen(
  function*() {
    const session = yield* Session
    const user = yield* session.user
    if (Option.isNone(user)) return []
    const current = yield* session.id
    const index = yield* SessionIndex
    const entries = yield* Effect.mapError(index.list(user.value.id), storeFailure)
    return entries.map((entry): MineEntry => ({
      ...entry,
      current: Option.isSome(current) && current.value === entry.id
    }))
  }
)

/**
 * `revokeOthers` ends every other session of the current user ("log out my other sessions") and succeeds with
 * the count; 0 when the session is bound to no user.
 *
 * @since 0.3.0
 */
export const revokeOthers: Effect.Effect<number, SessionError, Session | SessionIndex> = Effect.gen(function*() {
  const session = yield* Session
  const user = yield* session.user
  if (Option.isNone(user)) return 0
  // The current session must exist in the store to be kept: a binding made by this request is saved first.
  yield* session.save
  const current = yield* session.id
  const index = yield* SessionIndex
  return yield* Effect.mapError(
    index.revoke(user.value.id, { except: Option.getOrUndefined(current) }),
    storeFailure
  )
})

/**
 * `userKey(userId)` is the key stores file a user under: a SHA-256 digest of the id (43 characters of
 * base64url), so no index key, column or key listing holds the app's user ids.
 *
 * @since 0.3.0
 */
export const userKey: (userId: string) => string = internal.userKey
