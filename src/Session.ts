/**
 * The session a handler sees: a per-request service provided by `SessionMiddleware`.
 *
 * - Lazy: nothing is read from the store until a handler reads or writes the session.
 * - One session per request: concurrent fibers of one request share one load and one change set.
 * - Changes (keys set or removed, `clear`, `flush`, `cycleId`, `setExpiry`) are committed when the
 *   response is about to leave, and not at all on a 5xx; `save` commits earlier. A concurrent change
 *   made by another request is merged (reload, re-apply, retry) rather than overwritten.
 * - Values are JSON (`SessionData.JsonValue`); typed access goes through a `Schema`. A stored value that
 *   fails its schema is a `SessionError` with reason `"Decode"`, never a defect.
 *
 * @example
 * ```ts
 * import { Session } from "effect-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 *
 * const Visits = Session.key("visits", Schema.Number)
 *
 * const handler = Effect.gen(function*() {
 *   const visits = Option.getOrElse(yield* Visits, () => 0) + 1
 *   yield* Visits.set(visits)
 *   return HttpServerResponse.text(`visit ${visits}`)
 * })
 *
 * // on login: a new token against session fixation
 * const login = (userId: string) =>
 *   Effect.zipRight(Session.insert("user", userId), Session.cycleId)
 *
 * // on logout: delete the session and send a removal cookie
 * const logout = Session.flush
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Expiry from "./Expiry.js"
import type * as SessionData from "./SessionData.js"
import type { SessionId } from "./SessionId.js"

/**
 * What went wrong with the session, for the handler:
 *
 * - `"Decode"`: a stored value does not match the schema it was read with.
 * - `"Encode"`: a value cannot be stored (not JSON session data, fails its schema's encoding, a reserved key,
 *   or the session is over `maxDataBytes`).
 * - `"Store"`: the store failed (its `StoreError`, redacted, is the `cause`).
 *
 * @since 0.1.0
 */
export type SessionErrorReason = "Decode" | "Encode" | "Store"

/**
 * The one error of the `Session` API. It is a `Schema.TaggedError` so that an `HttpApi` can declare it
 * (status 500): on the wire it is `{ "_tag": "SessionError", "reason": ... }` only; its `cause`
 * (a `StoreError` or a redacted schema issue, never a value, token or id) stays on the server.
 *
 * @since 0.1.0
 */
export class SessionError extends Schema.TaggedError<SessionError>("effect-sessions/SessionError")(
  "SessionError",
  { reason: Schema.Literal("Decode", "Encode", "Store") },
  HttpApiSchema.annotations({ status: 500, description: "The session could not be read or written." })
) {
  override get message(): string {
    switch (this.reason) {
      case "Decode":
        return "a session value does not match its schema"
      case "Encode":
        return "a session value cannot be stored"
      case "Store":
        return "the session store failed"
    }
  }
}

/**
 * `requireFresh` refused: the session is bound to no user (`"Unbound"`), or its user authenticated longer ago
 * than the handler allows (`"Stale"`). As a `Schema.TaggedError` (status 401) an `HttpApi` can declare it; it
 * carries no user id.
 *
 * @since 0.3.0
 */
export class NotFresh extends Schema.TaggedError<NotFresh>("effect-sessions/NotFresh")(
  "NotFresh",
  { reason: Schema.Literal("Unbound", "Stale") },
  HttpApiSchema.annotations({ status: 401, description: "Sign in (again) to continue." })
) {
  override get message(): string {
    return this.reason === "Unbound"
      ? "the session is bound to no user"
      : "the user authenticated too long ago for this action"
  }
}

/**
 * Device details kept with a user binding. By default `bindUser` keeps the request's `User-Agent` (trimmed to
 * printable ASCII, at most 256 characters) and no IP address (see the middleware's `device` option).
 *
 * @since 0.3.0
 */
export interface Device {
  readonly userAgent?: string | undefined
  readonly ip?: string | undefined
}

/**
 * The user the session is bound to, as a handler reads it.
 *
 * @since 0.3.0
 */
export interface SessionUser {
  readonly id: string
  /** When the user authenticated (epoch ms): the time of the `bindUser` call. */
  readonly authenticatedAt: number
  readonly device: Device
}

/**
 * Options of `bindUser`.
 *
 * @since 0.3.0
 */
export interface BindOptions {
  /** The device details to keep, instead of those the middleware's `device` option takes from the request. */
  readonly device?: Device | undefined
}

/**
 * `sessionError` builds a `SessionError` carrying a server-side `cause` (not encoded, never sent).
 *
 * @since 0.1.0
 */
export const sessionError = (reason: SessionErrorReason, cause?: unknown): SessionError => {
  const error = new SessionError({ reason })
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, enumerable: false, configurable: true, writable: true })
  }
  return error
}

/**
 * The key under which the library keeps its own metadata (creation time, an expiry set with `setExpiry`)
 * inside the stored data. `get`, `keys` and `isEmpty` never expose it; `insert` and `remove` refuse it.
 *
 * @since 0.1.0
 */
export const META_KEY = "effect-sessions:meta"

/** The longest user id `bindUser` accepts, in UTF-16 code units. */
export const MAX_USER_ID_LENGTH = 255

/**
 * A session's user, as `bindUser` stored it: the app's user id (an opaque string of 1 to 255 characters), when
 * the user authenticated (epoch ms), and the device details the app chose to keep.
 *
 * @since 0.3.0
 */
export const UserBinding = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(MAX_USER_ID_LENGTH)),
  authenticatedAt: Schema.NonNegativeInt,
  userAgent: Schema.optional(Schema.String),
  ip: Schema.optional(Schema.String)
})

/**
 * The decoded `UserBinding`.
 *
 * @since 0.3.0
 */
export type UserBinding = Schema.Schema.Type<typeof UserBinding>

/**
 * The library's metadata, as stored under `META_KEY`: when the session was created, the expiry it set for
 * itself with `setExpiry`, the user it is bound to (`bindUser`), when a request last wrote it, and, on the
 * record a `cycleId` moved away from, when it moved (such a record holds no data and no user; it keeps
 * requests still carrying the old token from undoing the login until it expires, after the grace window).
 * Unknown fields are ignored; a malformed value reads as no metadata.
 *
 * @since 0.2.0
 */
export const Metadata = Schema.Struct({
  createdAt: Schema.optional(Schema.NonNegativeInt),
  expiry: Schema.optional(Expiry.ExpiryFromJson),
  movedAt: Schema.optional(Schema.NonNegativeInt),
  user: Schema.optional(UserBinding),
  refreshedAt: Schema.optional(Schema.NonNegativeInt)
})

/**
 * The decoded metadata (see `Metadata`).
 *
 * @since 0.2.0
 */
export type Metadata = Schema.Schema.Type<typeof Metadata>

/**
 * The per-request session.
 *
 * @since 0.1.0
 */
export interface Service {
  /** `id` succeeds with the `SessionId` (the token's digest, never the token) of the stored session, or `Option.none()` while none is stored. */
  readonly id: Effect.Effect<Option.Option<SessionId>, SessionError>
  /** `get(key)` succeeds with the value stored under `key`, or `Option.none()`; with a schema, the decoded value or a `Decode` error. */
  readonly get: {
    (key: string): Effect.Effect<Option.Option<SessionData.JsonValue>, SessionError>
    <A, I>(key: string, schema: Schema.Schema<A, I, never>): Effect.Effect<Option.Option<A>, SessionError>
  }
  /** `insert(key, value)` sets `key`; with a schema the value is encoded first. A value that is not session data is an `Encode` error. */
  readonly insert: {
    (key: string, value: SessionData.JsonValue): Effect.Effect<void, SessionError>
    <A, I>(key: string, value: A, schema: Schema.Schema<A, I, never>): Effect.Effect<void, SessionError>
  }
  /** `remove(key)` removes `key`; removing a missing key succeeds. */
  readonly remove: (key: string) => Effect.Effect<void, SessionError>
  /** `keys` succeeds with the keys the session holds. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, SessionError>
  /** `isEmpty` is true when the session holds no key. */
  readonly isEmpty: Effect.Effect<boolean, SessionError>
  /** `clear` removes every key; the session itself (its id, creation time, expiry) is kept. */
  readonly clear: Effect.Effect<void, SessionError>
  /** `flush` ends the session: the record is deleted and a removal cookie sent. Keys inserted afterwards start a new session. */
  readonly flush: Effect.Effect<void, SessionError>
  /**
   * `cycleId` moves the session to a new token (fixation defence, e.g. on login): a compare-and-set on the record
   * loaded, so a logout or a change that landed first is never undone. Data kept (the CSRF secret dropped unless
   * `rotateCsrfOnCycle: false`); the old token reaches nothing from then on and, for the grace window, gets no cookie.
   */
  readonly cycleId: Effect.Effect<void, SessionError>
  /** `setExpiry` sets this session's own expiry (persisted with it); the configured absolute lifetime still caps it. */
  readonly setExpiry: (expiry: Expiry.Expiry) => Effect.Effect<void, SessionError>
  /** `expiry` succeeds with the expiry in force for this session (its own, or the configured one). */
  readonly expiry: Effect.Effect<Expiry.Expiry, SessionError>
  /** `expiresAt` succeeds with the instant (epoch ms) the session ends if this request is its last. */
  readonly expiresAt: Effect.Effect<number, SessionError>
  /** `save` commits the changes made so far now, instead of when the response leaves. */
  readonly save: Effect.Effect<void, SessionError>
  /**
   * `bindUser(userId)` binds the session to a user of the app (on login, typically with `cycleId`) and records
   * the authentication time and device details; binding again (re-authentication) renews them. A bound session
   * is listed and revoked through `SessionIndex`. A user id that is not 1 to 255 characters is an `Encode` error.
   */
  readonly bindUser: (userId: string, options?: BindOptions) => Effect.Effect<void, SessionError>
  /** `unbindUser` removes the binding (the session's data stays); unbinding an unbound session changes nothing. */
  readonly unbindUser: Effect.Effect<void, SessionError>
  /** `user` succeeds with the bound user, or `Option.none()`. */
  readonly user: Effect.Effect<Option.Option<SessionUser>, SessionError>
  /**
   * `requireFresh(maxAge)` succeeds with the bound user when it authenticated at most `maxAge` ago, and fails
   * with `NotFresh` otherwise (for a payment or a password change: ask the user to sign in again).
   */
  readonly requireFresh: (maxAge: Duration.DurationInput) => Effect.Effect<SessionUser, SessionError | NotFresh>
}

/**
 * The session of the current request.
 *
 * @since 0.1.0
 */
export class Session extends Context.Tag("effect-sessions/Session")<Session, Service>() {}

/**
 * `id` succeeds with the current session's id, or `Option.none()` while none is stored.
 *
 * @since 0.1.0
 */
export const id: Effect.Effect<Option.Option<SessionId>, SessionError, Session> = Effect.flatMap(Session, (s) => s.id)

/**
 * `get(key)` / `get(key, schema)` reads a value of the current session.
 *
 * @since 0.1.0
 */
export const get: {
  (key: string): Effect.Effect<Option.Option<SessionData.JsonValue>, SessionError, Session>
  <A, I>(key: string, schema: Schema.Schema<A, I, never>): Effect.Effect<Option.Option<A>, SessionError, Session>
} =
  ((key: string, schema?: Schema.Schema<unknown, unknown, never>) =>
    Effect.flatMap(Session, (s) => schema === undefined ? s.get(key) : s.get(key, schema))) as never

/**
 * `insert(key, value)` / `insert(key, value, schema)` sets a value of the current session.
 *
 * @since 0.1.0
 */
export const insert: {
  (key: string, value: SessionData.JsonValue): Effect.Effect<void, SessionError, Session>
  <A, I>(key: string, value: A, schema: Schema.Schema<A, I, never>): Effect.Effect<void, SessionError, Session>
} = ((key: string, value: unknown, schema?: Schema.Schema<unknown, unknown, never>) =>
  Effect.flatMap(
    Session,
    (s) => schema === undefined ? s.insert(key, value as SessionData.JsonValue) : s.insert(key, value, schema)
  )) as never

/**
 * `remove(key)` removes a key of the current session.
 *
 * @since 0.1.0
 */
export const remove = (key: string): Effect.Effect<void, SessionError, Session> =>
  Effect.flatMap(Session, (s) => s.remove(key))

/**
 * `keys` succeeds with the keys of the current session.
 *
 * @since 0.1.0
 */
export const keys: Effect.Effect<ReadonlyArray<string>, SessionError, Session> = Effect.flatMap(Session, (s) => s.keys)

/**
 * `isEmpty` is true when the current session holds no key.
 *
 * @since 0.1.0
 */
export const isEmpty: Effect.Effect<boolean, SessionError, Session> = Effect.flatMap(Session, (s) => s.isEmpty)

/**
 * `clear` removes every key of the current session and keeps the session.
 *
 * @since 0.1.0
 */
export const clear: Effect.Effect<void, SessionError, Session> = Effect.flatMap(Session, (s) => s.clear)

/**
 * `flush` ends the current session (logout): deleted from the store, removal cookie sent.
 *
 * @since 0.1.0
 */
export const flush: Effect.Effect<void, SessionError, Session> = Effect.flatMap(Session, (s) => s.flush)

/**
 * `cycleId` gives the current session a new token, keeping its data (call it on login).
 *
 * @since 0.1.0
 */
export const cycleId: Effect.Effect<void, SessionError, Session> = Effect.flatMap(Session, (s) => s.cycleId)

/**
 * `setExpiry` sets the current session's own expiry (persisted).
 *
 * @since 0.1.0
 */
export const setExpiry = (expiry: Expiry.Expiry): Effect.Effect<void, SessionError, Session> =>
  Effect.flatMap(Session, (s) => s.setExpiry(expiry))

/**
 * `expiry` succeeds with the expiry in force for the current session.
 *
 * @since 0.1.0
 */
export const expiry: Effect.Effect<Expiry.Expiry, SessionError, Session> = Effect.flatMap(Session, (s) => s.expiry)

/**
 * `expiresAt` succeeds with the instant (epoch ms) the current session ends if this request is its last.
 *
 * @since 0.1.0
 */
export const expiresAt: Effect.Effect<number, SessionError, Session> = Effect.flatMap(Session, (s) => s.expiresAt)

/**
 * `save` commits the current session's changes now.
 *
 * @since 0.1.0
 */
export const save: Effect.Effect<void, SessionError, Session> = Effect.flatMap(Session, (s) => s.save)

/**
 * `bindUser(userId, options)` binds the current session to a user (see `Service.bindUser`).
 *
 * @since 0.3.0
 */
export const bindUser = (userId: string, options?: BindOptions): Effect.Effect<void, SessionError, Session> =>
  Effect.flatMap(Session, (s) => s.bindUser(userId, options))

/**
 * `unbindUser` removes the current session's user binding.
 *
 * @since 0.3.0
 */
export const unbindUser: Effect.Effect<void, SessionError, Session> = Effect.flatMap(Session, (s) => s.unbindUser)

/**
 * `user` succeeds with the current session's user, or `Option.none()`.
 *
 * @since 0.3.0
 */
export const user: Effect.Effect<Option.Option<SessionUser>, SessionError, Session> = Effect.flatMap(
  Session,
  (s) => s.user
)

/**
 * `requireFresh(maxAge)` succeeds with the current user when it authenticated at most `maxAge` ago, else fails
 * with `NotFresh`.
 *
 * @since 0.3.0
 */
export const requireFresh = (
  maxAge: Duration.DurationInput
): Effect.Effect<SessionUser, SessionError | NotFresh, Session> =>
  Effect.flatMap(Session, (s) => s.requireFresh(maxAge))

/**
 * A typed session key: `yield* key` reads it (`Option<A>`), `key.set(a)` writes it, `key.remove` removes it.
 *
 * @since 0.1.0
 */
export interface Key<A, I = A> extends Effect.Effect<Option.Option<A>, SessionError, Session> {
  readonly key: string
  readonly schema: Schema.Schema<A, I, never>
  /** `set(value)` encodes `value` with the key's schema and stores it. */
  readonly set: (value: A) => Effect.Effect<void, SessionError, Session>
  /** `remove` removes the key. */
  readonly remove: Effect.Effect<void, SessionError, Session>
  /** `getOrElse(f)` reads the key, or `f()` when it is absent. */
  readonly getOrElse: <B>(orElse: () => B) => Effect.Effect<A | B, SessionError, Session>
}

class KeyImpl<A, I> extends Effectable.Class<Option.Option<A>, SessionError, Session> implements Key<A, I> {
  constructor(readonly key: string, readonly schema: Schema.Schema<A, I, never>) {
    super()
  }
  commit(): Effect.Effect<Option.Option<A>, SessionError, Session> {
    return Effect.flatMap(Session, (s) => s.get(this.key, this.schema))
  }
  set(value: A): Effect.Effect<void, SessionError, Session> {
    return Effect.flatMap(Session, (s) => s.insert(this.key, value, this.schema))
  }
  get remove(): Effect.Effect<void, SessionError, Session> {
    return Effect.flatMap(Session, (s) => s.remove(this.key))
  }
  getOrElse<B>(orElse: () => B): Effect.Effect<A | B, SessionError, Session> {
    return Effect.map(this.commit(), (o) => (o._tag === "Some" ? o.value : orElse()))
  }
}

/**
 * `key(name, schema)` is a typed key of the session.
 *
 * @since 0.1.0
 */
export const key = <A, I>(name: string, schema: Schema.Schema<A, I, never>): Key<A, I> => new KeyImpl(name, schema)
