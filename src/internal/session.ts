/**
 * The per-request session: lazy load, change set, commit with merge, cookie decision.
 *
 * One `RequestSession` is made per request by the middleware. All of its mutable state is touched only
 * between yields (JavaScript runs one fiber step at a time), so concurrent fibers of one request see one
 * session without locks; the one load is shared through a `Deferred`, commits are serialised by a mutex.
 *
 * @internal
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type { Signer } from "../CookieSigner.js"
import * as Expiry from "../Expiry.js"
import type * as SessionStore from "../SessionStore.js"
import * as SessionData from "../SessionData.js"
import * as SessionId from "../SessionId.js"
import type * as SessionRecord from "../SessionRecord.js"
import * as SessionToken from "../SessionToken.js"
import * as StoreError from "../StoreError.js"
import { META_KEY, type Service as SessionService, sessionError, type SessionError } from "../Session.js"
import * as Cookie from "./cookie.js"
import { Mutex } from "./mutex.js"

/** The resolved configuration shared by every request. */
export interface Config {
  readonly store: SessionStore.Service
  readonly cookie: Cookie.ResolvedCookie
  readonly signer: Signer | undefined
  readonly expiry: Expiry.Expiry
  readonly sessionEndLifetimeMs: number
  /** `undefined`: half the sliding lifetime. */
  readonly refreshAfterMs: number | undefined
  readonly absoluteLifetimeMs: number | undefined
  readonly mergeDeadlineMs: number
  /** `undefined`: the store's own cap applies. */
  readonly maxDataBytes: number | undefined
  /** Per-session commit locks of this middleware instance. */
  readonly locks: CommitLocks
}

interface LockEntry {
  readonly mutex: Mutex
  /** The last record a commit under this lock saved, while others wait: their base when it is newer. */
  latest: SessionRecord.SessionRecord | undefined
}

/**
 * Commits of one session inside one process take turns, and each starts from the record the previous one
 * saved: concurrent requests of one browser then merge without a single `Conflict`. Across processes the
 * store's compare-and-set and the reload-and-retry loop do the work. An entry lives only while a commit of
 * its session is running or waiting: it goes when its mutex is released with nobody waiting.
 */
export class CommitLocks {
  private readonly entries = new Map<SessionId.SessionId, LockEntry>()

  /** `with(id, f)` runs `f` holding the lock of session `id`; `waited` tells whether it had to wait for it. */
  with<A, E>(id: SessionId.SessionId, f: (entry: LockEntry, waited: boolean) => Effect.Effect<A, E>): Effect.Effect<A, E> {
    let entry: LockEntry | undefined
    return Mutex.withLockOf(() => {
      entry = this.entries.get(id)
      if (entry === undefined) {
        const created: LockEntry = {
          mutex: new Mutex(() => {
            if (this.entries.get(id) === created) this.entries.delete(id)
          }),
          latest: undefined
        }
        this.entries.set(id, created)
        entry = created
      }
      return entry.mutex
    }, (waited) => f(entry!, waited))
  }

  /** The number of sessions with a commit running or waiting (for tests). */
  get size(): number {
    return this.entries.size
  }
}

/** Attempts at drawing a token that no live session holds. */
const CREATE_ATTEMPTS = 8
/** Base and cap of the jittered backoff between merge attempts. */
const BACKOFF_BASE_MS = 5
const BACKOFF_CAP_MS = 250

type Change = { readonly op: "set"; readonly value: SessionData.JsonValue } | { readonly op: "remove" }
const REMOVE: Change = { op: "remove" }

interface Meta {
  readonly createdAt: number | undefined
  readonly expiry: Expiry.Expiry | undefined
}

const NO_META: Meta = { createdAt: undefined, expiry: undefined }

type CookieAction =
  | { readonly _tag: "None" }
  | { readonly _tag: "Set"; readonly token: SessionToken.SessionToken; readonly maxAge: number | undefined }
  | { readonly _tag: "Remove" }

const NONE: CookieAction = { _tag: "None" }
const REMOVE_COOKIE: CookieAction = { _tag: "Remove" }

interface Snapshot {
  readonly changes: ReadonlyMap<string, Change>
  readonly cleared: boolean
  readonly clearGen: number
  readonly expiryChange: Expiry.Expiry | undefined
  readonly cycled: boolean
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

const isNonNegInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

const encodeExpiry = (e: Expiry.Expiry): SessionData.JsonValue => {
  switch (e._tag) {
    case "OnSessionEnd":
      return { _tag: "OnSessionEnd" }
    case "OnInactivity":
      return { _tag: "OnInactivity", duration: Math.max(0, Math.floor(Duration.toMillis(e.duration))) }
    case "AtDateTime":
      return { _tag: "AtDateTime", at: Math.floor(e.at) }
  }
}

const decodeExpiry = (u: unknown): Expiry.Expiry | undefined => {
  if (typeof u !== "object" || u === null) return undefined
  const o = u as Record<string, unknown>
  switch (o._tag) {
    case "OnSessionEnd":
      return Expiry.OnSessionEnd
    case "OnInactivity":
      return isNonNegInt(o.duration) ? Expiry.OnInactivity(Duration.millis(o.duration)) : undefined
    case "AtDateTime":
      return typeof o.at === "number" && Number.isSafeInteger(o.at) ? Expiry.AtDateTime(o.at) : undefined
    default:
      return undefined
  }
}

/** `readMeta` reads the library's metadata from stored data; anything malformed reads as absent. */
export const readMeta = (data: SessionData.SessionData | undefined): Meta => {
  if (data === undefined || !hasOwn(data, META_KEY)) return NO_META
  const raw = data[META_KEY]
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return NO_META
  const o = raw as Record<string, unknown>
  return {
    createdAt: isNonNegInt(o.createdAt) ? o.createdAt : undefined,
    expiry: decodeExpiry(o.expiry)
  }
}

const writeMeta = (meta: Meta): SessionData.JsonValue => {
  const out: Record<string, SessionData.JsonValue> = Object.create(null)
  if (meta.createdAt !== undefined) out.createdAt = meta.createdAt
  if (meta.expiry !== undefined) out.expiry = encodeExpiry(meta.expiry)
  return out
}

const hasUserKeys = (data: SessionData.SessionData): boolean => {
  for (const k in data) {
    if (k !== META_KEY) return true
  }
  return false
}

/** `withNow(f)` runs `f` with the current time of the fiber's `Clock`, in one operation (`Clock.currentTimeMillis` takes three). */
const withNow = <A, E>(f: (now: number) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.withFiberRuntime((fiber) => f(Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()))

const storeFailure = (e: StoreError.StoreError): SessionError => sessionError("Store", e)

/** `schemaIssue` is a redacted account of a schema failure: the key and the kind of issue, never the value. */
const schemaIssue = (key: string, what: "decode" | "encode") =>
  new Error(`session value under key ${JSON.stringify(key.slice(0, 64))} failed to ${what} with its schema`)

/** The load in flight; `waiters` is made only when a second fiber waits for it. */
interface Inflight {
  waiters: Deferred.Deferred<void, StoreError.StoreError> | undefined
}

type SaveOutcome =
  | { readonly _tag: "Saved"; readonly record: SessionRecord.SessionRecord; readonly now: number }
  | { readonly _tag: "Gone" }

const GONE: SaveOutcome = { _tag: "Gone" }

/**
 * The session of one request.
 */
export class RequestSession implements SessionService {
  // incoming cookie
  private tokenResolved = false
  private incomingToken: SessionToken.SessionToken | undefined = undefined
  private reissue = false
  // load
  private phase: "idle" | "loading" | "loaded" = "idle"
  private inflight: Inflight | undefined = undefined
  private epoch = 0
  // the record this request works against, and the token that reaches it
  private record: SessionRecord.SessionRecord | undefined = undefined
  private token: SessionToken.SessionToken | undefined = undefined
  // change set
  private changes = new Map<string, Change>()
  private cleared = false
  private clearGen = 0
  private expiryChange: Expiry.Expiry | undefined = undefined
  private cycled = false
  private flushed = false
  private flushId: SessionId.SessionId | undefined = undefined
  // outcome
  private cookie: CookieAction = NONE
  private failed = false
  private finished = false
  private mutex: Mutex | undefined = undefined

  constructor(readonly config: Config, readonly cookieValues: ReadonlyArray<string>) {}

  // ---------------------------------------------------------------------------
  // incoming token and load
  // ---------------------------------------------------------------------------

  private resolveToken(): SessionToken.SessionToken | undefined {
    if (this.tokenResolved) return this.incomingToken
    this.tokenResolved = true
    const incoming = Cookie.selectToken(this.cookieValues, this.config.cookie.name, this.config.signer)
    if (incoming === undefined) return undefined
    this.reissue = incoming.reissue
    this.incomingToken = incoming.token
    return incoming.token
  }

  /** `load` loads the session once (shared by concurrent fibers); call it when the effect runs, not before. */
  private load(): Effect.Effect<void, StoreError.StoreError> {
    if (this.phase === "loaded") return Effect.void
    const inflight = this.inflight
    if (this.phase === "loading" && inflight !== undefined) {
      // A second fiber: only now is there someone to share the load with.
      return Deferred.await(inflight.waiters ??= Deferred.unsafeMake<void, StoreError.StoreError>(FiberId.none))
    }
    const token = this.resolveToken()
    if (token === undefined) {
      this.phase = "loaded"
      return Effect.void
    }
    const flight: Inflight = { waiters: undefined }
    this.inflight = flight
    this.phase = "loading"
    const epoch = this.epoch
    return Effect.uninterruptible(Effect.matchCauseEffect(this.config.store.load(SessionId.fromToken(token)), {
      onSuccess: (found) => {
        if (this.epoch === epoch) {
          if (Option.isSome(found)) {
            this.record = found.value
            this.token = token
          }
          this.phase = "loaded"
          this.inflight = undefined
        }
        if (flight.waiters !== undefined) Deferred.unsafeDone(flight.waiters, Exit.void)
        return Effect.void
      },
      onFailure: (cause) => {
        if (this.epoch === epoch) {
          this.phase = "idle"
          this.inflight = undefined
        }
        const exit = Exit.failCause(cause)
        if (flight.waiters !== undefined) Deferred.unsafeDone(flight.waiters, exit)
        return exit
      }
    }))
  }

  private loaded(): Effect.Effect<void, SessionError> {
    return Effect.mapError(this.load(), storeFailure)
  }

  /** `whenLoaded(f)` runs `f` once the session is loaded, without any detour when it already is. */
  private whenLoaded<A>(f: () => Effect.Effect<A, SessionError>): Effect.Effect<A, SessionError> {
    return Effect.suspend(() => (this.phase === "loaded" ? f() : Effect.flatMap(this.loaded(), f)))
  }

  /** `syncLoaded(f)` is `whenLoaded` for a synchronous `f`. */
  private syncLoaded<A>(f: () => A): Effect.Effect<A, SessionError> {
    return Effect.suspend(() => (this.phase === "loaded" ? Effect.succeed(f()) : Effect.map(this.loaded(), f)))
  }

  // ---------------------------------------------------------------------------
  // reading
  // ---------------------------------------------------------------------------

  private lookup(key: string): SessionData.JsonValue | undefined {
    const change = this.changes.get(key)
    if (change !== undefined) return change.op === "set" ? change.value : undefined
    if (this.cleared || this.record === undefined) return undefined
    const data = this.record.data
    return hasOwn(data, key) ? data[key] : undefined
  }

  private meta(): Meta {
    const stored = readMeta(this.record?.data)
    return this.expiryChange === undefined ? stored : { createdAt: stored.createdAt, expiry: this.expiryChange }
  }

  private expiryOf(meta: Meta): Expiry.Expiry {
    return meta.expiry ?? this.config.expiry
  }

  private expiresAtOf(meta: Meta, now: number): number {
    const absolute = this.config.absoluteLifetimeMs
    return Expiry.expiresAt(this.expiryOf(meta), now, {
      sessionEndLifetime: Duration.millis(this.config.sessionEndLifetimeMs),
      absoluteDeadline: absolute === undefined ? undefined : (meta.createdAt ?? now) + absolute
    })
  }

  /** The lifetime a sliding expiry slides by, or `undefined` for a fixed one. */
  private slidingMs(expiry: Expiry.Expiry): number | undefined {
    switch (expiry._tag) {
      case "OnSessionEnd":
        return this.config.sessionEndLifetimeMs
      case "OnInactivity":
        return Duration.toMillis(expiry.duration)
      case "AtDateTime":
        return undefined
    }
  }

  get id(): Effect.Effect<Option.Option<SessionId.SessionId>, SessionError> {
    return this.syncLoaded(() => (this.record === undefined ? Option.none() : Option.some(this.record.id)))
  }

  // The service's functions are made on first use (a request touches one or two of them), bound so
  // that they can be passed around like the fields of any service.
  private boundGet: SessionService["get"] | undefined = undefined
  private boundInsert: SessionService["insert"] | undefined = undefined
  private boundRemove: SessionService["remove"] | undefined = undefined
  private boundSetExpiry: SessionService["setExpiry"] | undefined = undefined

  get get(): SessionService["get"] {
    return this.boundGet ??= ((key: string, schema?: Schema.Schema<unknown, unknown, never>) =>
      this.getValue(key, schema)) as SessionService["get"]
  }

  get insert(): SessionService["insert"] {
    return this.boundInsert ??= ((key: string, value: unknown, schema?: Schema.Schema<unknown, unknown, never>) =>
      this.insertValue(key, value, schema)) as SessionService["insert"]
  }

  get remove(): SessionService["remove"] {
    return this.boundRemove ??= (key: string) => this.removeKey(key)
  }

  get setExpiry(): SessionService["setExpiry"] {
    return this.boundSetExpiry ??= (expiry: Expiry.Expiry) => this.setExpiryTo(expiry)
  }

  private getValue(key: string, schema: Schema.Schema<unknown, unknown, never> | undefined): Effect.Effect<Option.Option<unknown>, SessionError> {
    return this.whenLoaded(() => {
      if (key === META_KEY) return Effect.succeed(Option.none())
      const value = this.lookup(key)
      if (value === undefined) return Effect.succeed(Option.none())
      if (schema === undefined) return Effect.succeed(Option.some(value))
      // Synchronously when the schema allows; the effectful decoder (asynchronous schemas) otherwise.
      const decoded = Schema.decodeUnknownEither(schema)(value)
      // A `__proto__` key of the stored value must stay data: a schema that made it a prototype fails the read.
      const failed = () => sessionError("Decode", schemaIssue(key, "decode"))
      const plain = (out: unknown) =>
        SessionData.decodedIsPlain(value, out) ? Effect.succeed(Option.some(out)) : Effect.fail(failed())
      if (Either.isRight(decoded)) return plain(decoded.right)
      return Effect.flatMap(Effect.mapError(Schema.decodeUnknown(schema)(value), failed), plain)
    })
  }

  get keys(): Effect.Effect<ReadonlyArray<string>, SessionError> {
    return this.syncLoaded(() => this.currentKeys())
  }

  private currentKeys(): Array<string> {
    const out = new Set<string>()
    if (!this.cleared && this.record !== undefined) {
      for (const k of Object.keys(this.record.data)) if (k !== META_KEY) out.add(k)
    }
    for (const [k, c] of this.changes) {
      if (c.op === "set") out.add(k)
      else out.delete(k)
    }
    return Array.from(out)
  }

  get isEmpty(): Effect.Effect<boolean, SessionError> {
    return this.syncLoaded(() => this.currentKeys().length === 0)
  }

  get expiry(): Effect.Effect<Expiry.Expiry, SessionError> {
    return this.syncLoaded(() => this.expiryOf(this.meta()))
  }

  get expiresAt(): Effect.Effect<number, SessionError> {
    return this.whenLoaded(() =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const record = this.record
        const meta = this.meta()
        if (record === undefined || this.isDirty()) return this.expiresAtOf(meta, now)
        const sliding = this.slidingMs(this.expiryOf(meta))
        if (sliding === undefined) return record.expiresAt
        const next = this.expiresAtOf(meta, now)
        return record.expiresAt - now < this.refreshAfterMs(sliding) && next > record.expiresAt ? next : record.expiresAt
      }))
  }

  private refreshAfterMs(slidingMs: number): number {
    return this.config.refreshAfterMs ?? slidingMs / 2
  }

  private isDirty(): boolean {
    return this.changes.size > 0 || this.cleared || this.expiryChange !== undefined || this.cycled
  }

  // ---------------------------------------------------------------------------
  // writing
  // ---------------------------------------------------------------------------

  private insertValue(key: string, value: unknown, schema: Schema.Schema<unknown, unknown, never> | undefined): Effect.Effect<void, SessionError> {
    if (key === META_KEY) return Effect.fail(sessionError("Encode", new Error("the session key is reserved")))
    return Effect.suspend(() => {
      if (schema === undefined) return this.setValue(key, value)
      // Synchronously when the schema allows; the effectful encoder (asynchronous schemas) otherwise.
      const encoded = Schema.encodeEither(schema)(value)
      if (Either.isRight(encoded)) return this.setValue(key, encoded.right)
      return Effect.flatMap(
        Effect.mapError(Schema.encode(schema)(value), () => sessionError("Encode", schemaIssue(key, "encode"))),
        (json) => this.setValue(key, json)
      )
    })
  }

  /** `setValue` checks an encoded value against the session data rules and records it, once loaded. */
  private setValue(key: string, json: unknown): Effect.Effect<void, SessionError> {
    const rule = SessionData.validate({ [key]: json })
    if (rule !== undefined) return Effect.fail(sessionError("Encode", new Error(rule)))
    const change: Change = { op: "set", value: json as SessionData.JsonValue }
    if (this.phase === "loaded") {
      this.changes.set(key, change)
      return Effect.void
    }
    return Effect.map(this.loaded(), () => {
      this.changes.set(key, change)
    })
  }

  private removeKey(key: string): Effect.Effect<void, SessionError> {
    if (key === META_KEY) return Effect.fail(sessionError("Encode", new Error("the session key is reserved")))
    return this.syncLoaded(() => {
      this.changes.set(key, REMOVE)
    })
  }

  get clear(): Effect.Effect<void, SessionError> {
    return this.syncLoaded(() => {
      this.changes.clear()
      this.cleared = true
      this.clearGen++
    })
  }

  get flush(): Effect.Effect<void, SessionError> {
    return Effect.sync(() => {
      const token = this.token ?? this.resolveToken()
      const id = this.record?.id ?? (token === undefined ? undefined : SessionId.fromToken(token))
      if (id !== undefined) this.flushId = id
      this.flushed = true
      this.epoch++
      this.phase = "loaded"
      this.inflight = undefined
      this.forget()
    })
  }

  get cycleId(): Effect.Effect<void, SessionError> {
    return this.syncLoaded(() => {
      this.cycled = true
    })
  }

  private setExpiryTo(expiry: Expiry.Expiry): Effect.Effect<void, SessionError> {
    return this.syncLoaded(() => {
      this.expiryChange = expiry
    })
  }

  get save(): Effect.Effect<void, SessionError> {
    return Effect.mapError(this.commit, (e) => sessionError(e.reason === "Encode" ? "Encode" : "Store", e))
  }

  // ---------------------------------------------------------------------------
  // commit
  // ---------------------------------------------------------------------------

  private get commit(): Effect.Effect<void, StoreError.StoreError> {
    return Mutex.withLockOf(() => this.commitMutex(), () => this.commitUnsafe())
  }

  private commitMutex(): Mutex {
    return this.mutex ?? (this.mutex = new Mutex())
  }

  private snapshot(): Snapshot {
    return {
      changes: new Map(this.changes),
      cleared: this.cleared,
      clearGen: this.clearGen,
      expiryChange: this.expiryChange,
      cycled: this.cycled
    }
  }

  /** `consume` forgets the changes a successful commit wrote (not those made while it ran). */
  private consume(snapshot: Snapshot): void {
    for (const [k, c] of snapshot.changes) {
      if (this.changes.get(k) === c) this.changes.delete(k)
    }
    if (this.clearGen === snapshot.clearGen) this.cleared = false
    if (this.expiryChange === snapshot.expiryChange) this.expiryChange = undefined
    if (snapshot.cycled) this.cycled = false
  }

  /** `build` applies a change set onto a base record's data (the merge), with fresh metadata. */
  private build(base: SessionData.SessionData | undefined, snapshot: Snapshot, now: number): {
    readonly data: SessionData.SessionData
    readonly meta: Meta
  } {
    const out: Record<string, SessionData.JsonValue> = Object.create(null)
    if (base !== undefined && !snapshot.cleared) {
      for (const k of Object.keys(base)) if (k !== META_KEY) out[k] = base[k]
    }
    for (const [k, c] of snapshot.changes) {
      if (c.op === "set") out[k] = c.value
      else delete out[k]
    }
    const stored = readMeta(base)
    const meta: Meta = { createdAt: stored.createdAt ?? now, expiry: snapshot.expiryChange ?? stored.expiry }
    out[META_KEY] = writeMeta(meta)
    return { data: out, meta }
  }

  /** `sizeProblem` is the `Encode` error when `data` is over the configured cap (checked before the store is called). */
  private sizeProblem(data: SessionData.SessionData, method: "create" | "save"): StoreError.StoreError | undefined {
    const max = this.config.maxDataBytes
    if (max === undefined) return undefined
    const encoded = SessionData.encode(data, max)
    return Either.isLeft(encoded) ? StoreError.rule("Encode", method, encoded.left) : undefined
  }

  private setCookie(meta: Meta, expiresAt: number, now: number, token: SessionToken.SessionToken): void {
    this.cookie = { _tag: "Set", token, maxAge: Expiry.maxAgeSeconds(this.expiryOf(meta), expiresAt, now) }
  }

  /** `createFresh` creates the record under a freshly drawn token; on `Collision` it draws again. */
  private createFresh(
    data: SessionData.SessionData,
    expiresAt: number
  ): Effect.Effect<{ readonly record: SessionRecord.SessionRecord; readonly token: SessionToken.SessionToken }, StoreError.StoreError> {
    const attempt = (n: number): Effect.Effect<
      { readonly record: SessionRecord.SessionRecord; readonly token: SessionToken.SessionToken },
      StoreError.StoreError
    > =>
      Effect.flatMap(SessionToken.generate, (token) =>
        this.config.store.create({ id: SessionId.fromToken(token), data, expiresAt, version: 1 }).pipe(
          Effect.map((record) => ({ record, token })),
          Effect.catchIf(
            (e) => e.reason === "Collision" && n + 1 < CREATE_ATTEMPTS,
            () => attempt(n + 1)
          )
        ))
    const problem = this.sizeProblem(data, "create")
    return problem === undefined ? attempt(0) : Effect.fail(problem)
  }

  /** `forget` drops the record, the token and this request's change set. */
  private forget(): void {
    this.record = undefined
    this.token = undefined
    this.changes.clear()
    this.cleared = false
    this.clearGen++
    this.expiryChange = undefined
    this.cycled = false
    this.reissue = false
  }

  /** `ended` forgets the session after it ended elsewhere (`Gone`) and plans a removal cookie. */
  private ended(): void {
    this.forget()
    this.cookie = REMOVE_COOKIE
  }

  /** `casSave` saves the change set onto `base`; on `Conflict` it reloads, re-applies and retries until the deadline. */
  private casSave(
    base: SessionRecord.SessionRecord,
    snapshot: Snapshot,
    deadline: number,
    attempt: number,
    knownNow?: number
  ): Effect.Effect<SaveOutcome, StoreError.StoreError> {
    const store = this.config.store
    const at = (now: number): Effect.Effect<SaveOutcome, StoreError.StoreError> => {
      const { data, meta } = this.build(base.data, snapshot, now)
      const expiresAt = this.expiresAtOf(meta, now)
      if (expiresAt <= now) {
        // Its time is up (absolute lifetime, a past `AtDateTime`): end it instead of storing a dead record.
        return Effect.as(store.delete(base.id), GONE)
      }
      const problem = this.sizeProblem(data, "save")
      if (problem !== undefined) return Effect.fail(problem)
      return Effect.matchEffect(store.save({ id: base.id, data, expiresAt, version: base.version }), {
        onSuccess: (record) => Effect.succeed<SaveOutcome>({ _tag: "Saved", record, now }),
        onFailure: (e) => {
          if (e.reason === "Gone") return Effect.succeed(GONE)
          if (e.reason !== "Conflict") return Effect.fail(e)
          return Effect.flatMap(Clock.currentTimeMillis, (t) => {
            if (t >= deadline) return Effect.fail(e)
            const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 10))
            return Random.nextIntBetween(0, cap + 1).pipe(
              Effect.flatMap((ms) => Effect.sleep(Duration.millis(Math.min(ms, Math.max(0, deadline - t))))),
              Effect.zipRight(store.load(base.id)),
              Effect.flatMap((latest) =>
                Option.isNone(latest) ? Effect.succeed(GONE) : this.casSave(latest.value, snapshot, deadline, attempt + 1)
              )
            )
          })
        }
      })
    }
    return knownNow === undefined ? withNow(at) : at(knownNow)
  }

  private commitUnsafe(): Effect.Effect<void, StoreError.StoreError> {
    if (this.flushed) {
      const id = this.flushId
      if (id !== undefined) {
        return Effect.flatMap(this.config.store.delete(id), () => {
          this.flushId = undefined
          this.flushDone()
          return this.commitLoaded()
        })
      }
      this.flushDone()
    }
    return this.commitLoaded()
  }

  private flushDone(): void {
    this.flushed = false
    // A cookie reached us, or one was set earlier in this request: it must go.
    if (this.cookieValues.length > 0 || this.cookie._tag === "Set") this.cookie = REMOVE_COOKIE
  }

  private commitLoaded(): Effect.Effect<void, StoreError.StoreError> {
    if (this.phase === "idle") {
      // Untouched. Only a cookie signed under an older key needs work: re-issue it under the first key.
      if (this.config.signer === undefined || this.cookieValues.length === 0) return Effect.void
      this.resolveToken()
      if (!this.reissue) return Effect.void
      return Effect.flatMap(this.load(), () => this.commitNow())
    }
    // a fiber of the handler may still be loading
    if (this.phase === "loading") return Effect.flatMap(this.load(), () => this.commitNow())
    return this.commitNow()
  }

  private commitNow(): Effect.Effect<void, StoreError.StoreError> {
    return withNow((now) => this.commitAt(now))
  }

  private commitAt(now: number): Effect.Effect<void, StoreError.StoreError> {
    const store = this.config.store
    const record = this.record
    const snapshot = this.snapshot()

    if (record === undefined) {
      const { data, meta } = this.build(undefined, snapshot, now)
      const expiresAt = this.expiresAtOf(meta, now)
      if (!hasUserKeys(data) || expiresAt <= now) {
        // An empty session that was never stored is never stored and sets no cookie.
        this.consume(snapshot)
        return Effect.void
      }
      return Effect.map(this.createFresh(data, expiresAt), (created) => {
        this.record = created.record
        this.token = created.token
        this.consume(snapshot)
        this.setCookie(meta, created.record.expiresAt, now, created.token)
      })
    }

    if (snapshot.cycled) {
      // Fixation defence: the data under a new token first, and only then the old record deleted.
      const { data, meta } = this.build(record.data, snapshot, now)
      const expiresAt = this.expiresAtOf(meta, now)
      if (expiresAt <= now) {
        return Effect.map(store.delete(record.id), () => this.ended())
      }
      return Effect.flatMap(this.createFresh(data, expiresAt), (created) =>
        Effect.map(store.delete(record.id), () => {
          this.record = created.record
          this.token = created.token
          this.reissue = false
          this.consume(snapshot)
          this.setCookie(meta, created.record.expiresAt, now, created.token)
        }))
    }

    const token = this.token!
    if (snapshot.changes.size > 0 || snapshot.cleared || snapshot.expiryChange !== undefined) {
      const deadline = now + this.config.mergeDeadlineMs
      return this.config.locks.with(record.id, (entry, waited) => {
        const base = entry.latest !== undefined && entry.latest.version > record.version ? entry.latest : record
        // Without a wait for the lock no time has passed since `now` was read.
        return Effect.map(this.casSave(base, snapshot, deadline, 0, waited ? undefined : now), (outcome) => {
          entry.latest = outcome._tag === "Saved" ? outcome.record : undefined
          this.saved(outcome, record, snapshot, token)
        })
      })
    }

    // Read-only: refresh a sliding expiry only once its remaining life is below `refreshAfter`.
    const meta = readMeta(record.data)
    const expiry = this.expiryOf(meta)
    const sliding = this.slidingMs(expiry)
    if (sliding !== undefined && record.expiresAt - now < this.refreshAfterMs(sliding)) {
      const expiresAt = this.expiresAtOf(meta, now)
      if (expiresAt > record.expiresAt) {
        return Effect.map(this.refresh(record, expiresAt, now), (outcome) => {
          if (outcome?._tag === "Gone") {
            this.ended()
            return
          }
          if (outcome !== undefined) {
            this.record = outcome.record
            if (expiry._tag !== "OnSessionEnd" || this.reissue) {
              this.setCookie(meta, outcome.record.expiresAt, now, token)
              this.reissue = false
            }
            return
          }
          this.reissueNow(meta, record, now, token)
        })
      }
    }
    this.reissueNow(meta, record, now, token)
    return Effect.void
  }

  /** `saved` takes in the outcome of a commit that wrote a change set onto `record`. */
  private saved(outcome: SaveOutcome, record: SessionRecord.SessionRecord, snapshot: Snapshot, token: SessionToken.SessionToken): void {
    if (outcome._tag === "Gone") {
      this.ended()
      return
    }
    const saved = outcome.record
    this.record = saved
    this.consume(snapshot)
    const meta = readMeta(saved.data)
    const fixed = this.expiryOf(meta)._tag === "OnSessionEnd"
    if (snapshot.expiryChange !== undefined || this.reissue || (!fixed && saved.expiresAt !== record.expiresAt)) {
      this.setCookie(meta, saved.expiresAt, outcome.now, token)
      this.reissue = false
    }
  }

  private reissueNow(meta: Meta, record: SessionRecord.SessionRecord, now: number, token: SessionToken.SessionToken): void {
    if (this.reissue) {
      this.setCookie(meta, record.expiresAt, now, token)
      this.reissue = false
    }
  }

  /** `refresh` pushes a read-only session's expiry out; `undefined` when that did not happen (and need not). */
  private refresh(
    record: SessionRecord.SessionRecord,
    expiresAt: number,
    now: number
  ): Effect.Effect<SaveOutcome | undefined, StoreError.StoreError> {
    return Effect.catchAll(
      Effect.map(this.config.store.save({ ...record, expiresAt }), (saved): SaveOutcome | undefined => ({
        _tag: "Saved",
        record: saved,
        now
      })),
      (e) => {
        if (e.reason === "Gone") return Effect.succeed(GONE)
        // Another request wrote the session meanwhile, which refreshed it: nothing to do.
        if (e.reason === "Conflict") return Effect.succeed(undefined)
        // A refresh the handler did not ask for: a failure leaves the session as it is (still valid).
        return Effect.as(
          Effect.logWarning("effect-sessions: session refresh failed; the session keeps its expiry").pipe(
            Effect.annotateLogs({ reason: e.reason, method: e.method })
          ),
          undefined
        )
      }
    )
  }

  // ---------------------------------------------------------------------------
  // the response
  // ---------------------------------------------------------------------------

  private applyCookie(response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse {
    if (this.failed) return response
    const action = this.cookie
    switch (action._tag) {
      case "None":
        return response
      case "Remove":
        return Cookie.remove(response, this.config.cookie)
      case "Set": {
        const signer = this.config.signer
        const value = signer === undefined ? action.token : signer.sign(this.config.cookie.name, action.token)
        return Cookie.set(response, this.config.cookie, value, action.maxAge)
      }
    }
  }

  /**
   * The pre-response handler: commits once (not on a 5xx), then writes the cookie. It may run twice
   * (again on a 500 produced after it): the second run commits nothing more. It never fails: a store
   * failure becomes an opaque 500, logged by reason and method only.
   */
  readonly onResponse: HttpApp.PreResponseHandler = (_request, response) => {
    if (response.status >= 500 || this.finished) return Effect.succeed(this.applyCookie(response))
    if (
      this.phase === "idle" && !this.flushed && this.cookie._tag === "None" &&
      (this.config.signer === undefined || this.cookieValues.length === 0)
    ) {
      this.finished = true
      return Effect.succeed(response)
    }
    this.finished = true
    if (this.phase === "loaded" && !this.flushed && !this.isDirty()) {
      // Read-only: usually nothing to write, decided without taking the lock.
      return withNow((now) => {
        if (this.mutex?.locked || this.phase !== "loaded" || this.flushed || this.isDirty()) {
          return this.respondAfter(this.commit, response)
        }
        let work: Effect.Effect<void, StoreError.StoreError>
        try {
          work = this.commitAt(now)
        } catch (defect) {
          return this.respondAfter(Effect.die(defect), response)
        }
        if (work === Effect.void) return Effect.succeed(this.applyCookie(response))
        // A refresh to write: built and locked in the same step, as if the lock had been taken first.
        return this.respondAfter(Mutex.withLockOf(() => this.commitMutex(), () => work), response)
      })
    }
    return this.respondAfter(this.commit, response)
  }

  private respondAfter(
    commit: Effect.Effect<void, StoreError.StoreError>,
    response: HttpServerResponse.HttpServerResponse
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> {
    return Effect.matchCauseEffect(commit, {
      onSuccess: () => Effect.succeed(this.applyCookie(response)),
      onFailure: (cause) => {
        this.failed = true
        const failure = Cause.failureOption(cause)
        const log = Option.isSome(failure)
          ? Effect.logError("effect-sessions: session commit failed; responding 500").pipe(
            Effect.annotateLogs({ reason: failure.value.reason, method: failure.value.method })
          )
          : Effect.logError("effect-sessions: session commit died; responding 500")
        return Effect.as(log, HttpServerResponse.empty({ status: 500 }))
      }
    })
  }
}
