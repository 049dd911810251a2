/**
 * The per-request session: the incoming token, the lazy load, the change set, and the pre-response handler.
 * It holds state and runs plans; what a commit does is decided by `plan.decide` and carried out by
 * `commit.run`.
 *
 * One `RequestSession` is made per request by the middleware. Its mutable state is touched only between
 * yields (JavaScript runs one fiber step at a time), so concurrent fibers of one request see one session
 * without locks; the one load is shared through a `Deferred`, commits are serialised by a mutex.
 *
 * @internal
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Signer } from "../CookieSigner.js"
import type * as Expiry from "../Expiry.js"
import {
  type BindOptions,
  MAX_USER_ID_LENGTH,
  META_KEY,
  NotFresh,
  type Service as SessionService,
  type SessionError,
  sessionError,
  type SessionUser,
  type UserBinding
} from "../Session.js"
import * as SessionData from "../SessionData.js"
import * as SessionId from "../SessionId.js"
import type * as SessionToken from "../SessionToken.js"
import type * as StoreError from "../StoreError.js"
import * as Commit from "./commit.js"
import * as Cookie from "./cookie.js"
import { Mutex } from "./mutex.js"
import * as Plan from "./plan.js"

export { CommitLocks } from "./commitLocks.js"

/** The resolved configuration shared by every request. */
export interface Config extends Commit.Runner {
  readonly cookie: Cookie.ResolvedCookie
  readonly signer: Signer | undefined
  /** The device details `bindUser` takes from the request when the app passes none. */
  readonly device: { readonly userAgent: boolean; readonly ip: boolean }
}

/** The request details a binding may keep. */
export interface RequestDetails {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly remoteAddress: Option.Option<string>
}

const MAX_USER_AGENT = 256
const MAX_IP = 64

/** `printable(s, max)` keeps the printable ASCII of an attacker-controlled string, at most `max` characters. */
const printable = (s: unknown, max: number): string | undefined => {
  if (typeof s !== "string") return undefined
  const out = s.slice(0, max * 4).replace(/[^\x20-\x7e]/g, "").trim().slice(0, max)
  return out.length === 0 ? undefined : out
}

type CookieAction =
  | { readonly _tag: "None" }
  | { readonly _tag: "Set"; readonly token: SessionToken.SessionToken; readonly maxAge: number | undefined }
  | { readonly _tag: "Remove" }

const NONE: CookieAction = { _tag: "None" }
const REMOVE_COOKIE: CookieAction = { _tag: "Remove" }
const ABSENT: Plan.Base = { _tag: "Absent" }
const NO_CHANGES = new Map<string, Plan.Change>()
const REMOVE: Plan.Change = { op: "remove" }
const UNBIND: Plan.UserChange = { _tag: "Unbind" }

const toSessionUser = (binding: UserBinding): SessionUser => ({
  id: binding.id,
  authenticatedAt: binding.authenticatedAt,
  device: binding.ip === undefined
    ? binding.userAgent === undefined ? {} : { userAgent: binding.userAgent }
    : binding.userAgent === undefined
    ? { ip: binding.ip }
    : { userAgent: binding.userAgent, ip: binding.ip }
})

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

const storeFailure = (e: StoreError.StoreError): SessionError => sessionError("Store", e)

/** `schemaIssue` is a redacted account of a schema failure: the key and the kind of issue, never the value. */
const schemaIssue = (key: string, what: "decode" | "encode") =>
  new Error(`session value under key ${JSON.stringify(key.slice(0, 64))} failed to ${what} with its schema`)

const reserved = () => Effect.fail(sessionError("Encode", new Error("the session key is reserved")))

/** The change set this request's commit works on: the current one, copied only when it holds changes. */
interface Snapshot extends Plan.ChangeSet {
  readonly clearGen: number
  readonly flushGen: number
}

/** The load in flight; `waiters` is made only when a second fiber waits for it. */
interface Inflight {
  waiters: Deferred.Deferred<void, StoreError.StoreError> | undefined
}

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
  // what the token reaches, and the token that reaches it
  private base: Plan.Base = ABSENT
  private token: SessionToken.SessionToken | undefined = undefined
  // change set
  private changes = new Map<string, Plan.Change>()
  private cleared = false
  private clearGen = 0
  private expiryChange: Expiry.Expiry | undefined = undefined
  private cycled = false
  private userChange: Plan.UserChange | undefined = undefined
  private flushed = false
  private flushGen = 0
  // outcome
  private cookie: CookieAction = NONE
  private failed = false
  private finished = false
  private mutex: Mutex | undefined = undefined

  private cookieValues: ReadonlyArray<string> | undefined = undefined

  /** `cookieHeader`: the request's `Cookie` header, read (strictly) only when the session needs it. */
  constructor(
    readonly config: Config,
    readonly cookieHeader: string | undefined,
    readonly request?: RequestDetails | undefined
  ) {}

  /** The values of every cookie of the session's name, in header order. */
  private get values(): ReadonlyArray<string> {
    return this.cookieValues ??= Cookie.sessionCookieValues(this.cookieHeader, this.config.cookie.name)
  }

  /**
   * `untouchedNeedsNothing` is true when a request that never touched the session has nothing to commit: only a
   * cookie signed under an older key needs work (re-issued under the first key).
   */
  private untouchedNeedsNothing(): boolean {
    if (this.config.signer === undefined || this.values.length === 0) return true
    this.resolveToken()
    return !this.reissue
  }

  // ---------------------------------------------------------------------------
  // incoming token and load
  // ---------------------------------------------------------------------------

  private resolveToken(): SessionToken.SessionToken | undefined {
    if (this.tokenResolved) return this.incomingToken
    this.tokenResolved = true
    const incoming = Cookie.selectToken(this.values, this.config.cookie.name, this.config.signer)
    if (incoming === undefined) return undefined
    this.reissue = incoming.reissue
    this.incomingToken = incoming.token
    return incoming.token
  }

  private get incoming(): Plan.Incoming {
    return { present: this.values.length > 0, reissue: this.reissue }
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
    return Effect.uninterruptible(Effect.matchCauseEffect(this.config.store.load(SessionId.fromToken(token)), {
      onSuccess: (found) => {
        if (Option.isSome(found)) {
          this.base = Plan.classify(found.value)
          this.token = token
        }
        this.phase = "loaded"
        this.inflight = undefined
        if (flight.waiters !== undefined) Deferred.unsafeDone(flight.waiters, Exit.void)
        return Effect.void
      },
      onFailure: (cause) => {
        this.phase = "idle"
        this.inflight = undefined
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

  /** The stored data this request reads through (none once flushed, or for a moved session). */
  private storedData(): SessionData.SessionData | undefined {
    return this.flushed || this.cleared || this.base._tag !== "Live" ? undefined : this.base.record.data
  }

  private lookup(key: string): SessionData.JsonValue | undefined {
    const change = this.changes.get(key)
    if (change !== undefined) return change.op === "set" ? change.value : undefined
    const data = this.storedData()
    return data !== undefined && hasOwn(data, key) ? data[key] : undefined
  }

  private currentMeta(): { readonly expiry?: Expiry.Expiry | undefined } {
    if (this.expiryChange !== undefined) return { expiry: this.expiryChange }
    return this.base._tag === "Live" && !this.flushed ? this.base.meta : {}
  }

  get id(): Effect.Effect<Option.Option<SessionId.SessionId>, SessionError> {
    return this.syncLoaded(() =>
      this.base._tag === "Live" && !this.flushed ? Option.some(this.base.record.id) : Option.none()
    )
  }

  // The service's functions are made on first use (a request touches one or two of them), bound so
  // that they can be passed around like the fields of any service.
  private boundGet: SessionService["get"] | undefined = undefined
  private boundInsert: SessionService["insert"] | undefined = undefined
  private boundRemove: SessionService["remove"] | undefined = undefined
  private boundSetExpiry: SessionService["setExpiry"] | undefined = undefined

  get get(): SessionService["get"] {
    return this.boundGet ??=
      ((key: string, schema?: Schema.Schema<unknown, unknown, never>) => this.getValue(key, schema)) as SessionService[
        "get"
      ]
  }

  get insert(): SessionService["insert"] {
    return this.boundInsert ??=
      ((key: string, value: unknown, schema?: Schema.Schema<unknown, unknown, never>) =>
        this.insertValue(key, value, schema)) as SessionService["insert"]
  }

  get remove(): SessionService["remove"] {
    return this.boundRemove ??= (key: string) => this.removeKey(key)
  }

  get setExpiry(): SessionService["setExpiry"] {
    return this.boundSetExpiry ??= (expiry: Expiry.Expiry) => this.setExpiryTo(expiry)
  }

  private getValue(
    key: string,
    schema: Schema.Schema<unknown, unknown, never> | undefined
  ): Effect.Effect<Option.Option<unknown>, SessionError> {
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
    const data = this.storedData()
    if (data !== undefined) { for (const k of Object.keys(data)) if (k !== META_KEY) out.add(k) }
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
    return this.syncLoaded(() => this.currentMeta().expiry ?? this.config.expiry)
  }

  /** The instant the session ends if this request is its last: what the commit would store, decided by the plan. */
  get expiresAt(): Effect.Effect<number, SessionError> {
    return this.whenLoaded(() =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const plan = this.config.decide(this.base, this.snapshot(), now, this.config, this.incoming)
        const write = plan.write
        switch (write._tag) {
          case "Create":
          case "Move":
            return Effect.succeed(write.expiresAt)
          case "Save":
            return Effect.succeed(write.record.expiresAt)
          case "End":
            return Effect.succeed(now)
          case "None":
            return Effect.succeed(
              this.base._tag === "Live" && plan.end === undefined
                ? this.base.record.expiresAt
                : Plan.expiresAt({ createdAt: now, expiry: this.expiryChange }, now, this.config)
            )
        }
      })
    )
  }

  // ---------------------------------------------------------------------------
  // writing
  // ---------------------------------------------------------------------------

  private insertValue(
    key: string,
    value: unknown,
    schema: Schema.Schema<unknown, unknown, never> | undefined
  ): Effect.Effect<void, SessionError> {
    if (key === META_KEY) return reserved()
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
    const change: Plan.Change = { op: "set", value: json as SessionData.JsonValue }
    return this.syncLoaded(() => {
      this.changes.set(key, change)
    })
  }

  private removeKey(key: string): Effect.Effect<void, SessionError> {
    if (key === META_KEY) return reserved()
    return this.syncLoaded(() => {
      this.changes.set(key, REMOVE)
    })
  }

  get clear(): Effect.Effect<void, SessionError> {
    return this.syncLoaded(() => {
      this.changes = new Map()
      this.cleared = true
      this.clearGen++
    })
  }

  get flush(): Effect.Effect<void, SessionError> {
    // Loaded first: a flush of a moved session (an old token inside the grace window) must do nothing.
    return this.syncLoaded(() => {
      this.changes = new Map()
      this.cleared = false
      this.clearGen++
      this.expiryChange = undefined
      this.cycled = false
      this.userChange = undefined
      this.flushed = true
      this.flushGen++
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

  // ---------------------------------------------------------------------------
  // the user
  // ---------------------------------------------------------------------------

  private boundBindUser: SessionService["bindUser"] | undefined = undefined
  private boundRequireFresh: SessionService["requireFresh"] | undefined = undefined

  get bindUser(): SessionService["bindUser"] {
    return this.boundBindUser ??= (userId: string, options?: BindOptions) => this.bindTo(userId, options)
  }

  get requireFresh(): SessionService["requireFresh"] {
    return this.boundRequireFresh ??= (maxAge: Duration.DurationInput) => this.fresh(maxAge)
  }

  /** The device details of a binding: the app's, else what the configuration takes from the request. */
  private deviceOf(options: BindOptions | undefined): { userAgent?: string; ip?: string } {
    const given = options?.device
    const userAgent = given !== undefined
      ? printable(given.userAgent, MAX_USER_AGENT)
      : this.config.device.userAgent
      ? printable(this.request?.headers["user-agent"], MAX_USER_AGENT)
      : undefined
    const ip = given !== undefined
      ? printable(given.ip, MAX_IP)
      : this.config.device.ip && this.request !== undefined
      ? printable(Option.getOrUndefined(this.request.remoteAddress), MAX_IP)
      : undefined
    const device: { userAgent?: string; ip?: string } = {}
    if (userAgent !== undefined) device.userAgent = userAgent
    if (ip !== undefined) device.ip = ip
    return device
  }

  private bindTo(userId: string, options: BindOptions | undefined): Effect.Effect<void, SessionError> {
    if (typeof userId !== "string" || userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) {
      return Effect.fail(
        sessionError("Encode", new Error(`the user id must be a string of 1 to ${MAX_USER_ID_LENGTH} characters`))
      )
    }
    const device = this.deviceOf(options)
    return Effect.clockWith((clock) => {
      const binding: UserBinding = { id: userId, authenticatedAt: clock.unsafeCurrentTimeMillis(), ...device }
      return this.syncLoaded(() => {
        this.userChange = { _tag: "Bind", binding }
      })
    })
  }

  get unbindUser(): Effect.Effect<void, SessionError> {
    return this.syncLoaded(() => {
      this.userChange = UNBIND
    })
  }

  private currentUser(): UserBinding | undefined {
    const change = this.userChange
    if (change !== undefined) return change._tag === "Bind" ? change.binding : undefined
    return this.base._tag === "Live" && !this.flushed ? this.base.meta.user : undefined
  }

  get user(): Effect.Effect<Option.Option<SessionUser>, SessionError> {
    return this.syncLoaded(() => Option.map(Option.fromNullable(this.currentUser()), toSessionUser))
  }

  private fresh(maxAge: Duration.DurationInput): Effect.Effect<SessionUser, SessionError | NotFresh> {
    const limit = Duration.toMillis(maxAge)
    return Effect.flatMap(this.syncLoaded(() => this.currentUser()), (binding) =>
      Effect.clockWith((clock) => {
        if (binding === undefined) return Effect.fail(new NotFresh({ reason: "Unbound" }))
        // A negative age (a clock moved back) is no freshness either: fresh means within [0, maxAge].
        const age = clock.unsafeCurrentTimeMillis() - binding.authenticatedAt
        return age >= 0 && age <= limit
          ? Effect.succeed(toSessionUser(binding))
          : Effect.fail(new NotFresh({ reason: "Stale" }))
      }))
  }

  get save(): Effect.Effect<void, SessionError> {
    return Effect.mapError(this.commit, (e) => sessionError(e.reason === "Encode" ? "Encode" : "Store", e))
  }

  // ---------------------------------------------------------------------------
  // commit
  // ---------------------------------------------------------------------------

  private snapshot(): Snapshot {
    return {
      flushed: this.flushed,
      changes: this.changes.size === 0 ? NO_CHANGES : new Map(this.changes),
      cleared: this.cleared,
      expiry: this.expiryChange,
      cycle: this.cycled,
      user: this.userChange,
      clearGen: this.clearGen,
      flushGen: this.flushGen
    }
  }

  /** `consume` forgets the changes a successful commit wrote (not those made while it ran). */
  private consume(snapshot: Snapshot): void {
    for (const [k, c] of snapshot.changes) {
      if (this.changes.get(k) === c) this.changes.delete(k)
    }
    if (this.clearGen === snapshot.clearGen) this.cleared = false
    if (this.expiryChange === snapshot.expiry) this.expiryChange = undefined
    if (snapshot.cycle) this.cycled = false
    if (this.userChange === snapshot.user) this.userChange = undefined
    if (this.flushGen === snapshot.flushGen) this.flushed = false
  }

  /** `takeIn` records a commit's outcome: what the token reaches now, the token, and the cookie to send. */
  private takeIn(outcome: Commit.Outcome, snapshot: Snapshot): void {
    this.base = outcome.base
    if (outcome.token !== undefined) this.token = outcome.token
    if (outcome.base._tag === "Absent") this.token = undefined
    this.consume(snapshot)
    const cookie = outcome.cookie
    if (cookie._tag === "Remove") {
      this.cookie = REMOVE_COOKIE
      this.reissue = false
    } else if (cookie._tag === "Set" && this.token !== undefined) {
      this.cookie = { _tag: "Set", token: this.token, maxAge: cookie.maxAge }
      this.reissue = false
    }
  }

  private get commit(): Effect.Effect<void, StoreError.StoreError> {
    return Mutex.withLockOf(() => this.commitMutex(), () => this.commitLoaded())
  }

  private commitMutex(): Mutex {
    return this.mutex ?? (this.mutex = new Mutex())
  }

  private commitLoaded(): Effect.Effect<void, StoreError.StoreError> {
    if (this.phase === "idle" && this.untouchedNeedsNothing()) return Effect.void
    return Effect.flatMap(
      this.load(),
      () => Effect.clockWith((clock) => this.commitAt(clock.unsafeCurrentTimeMillis()))
    )
  }

  /** `commitAt` decides the commit at `now` and runs it; a plan with nothing to write takes no effect at all. */
  private commitAt(now: number): Effect.Effect<void, StoreError.StoreError> {
    const work = this.prepare(now)
    return work === undefined ? Effect.void : Effect.map(work.run, (outcome) => this.takeIn(outcome, work.snapshot))
  }

  /**
   * `prepare` decides the commit at `now`: `undefined` when there is nothing to write (the cookie decision is
   * taken in at once), else the effect that writes it, whose outcome is for `takeIn`.
   */
  private prepare(now: number): {
    readonly snapshot: Snapshot
    readonly run: Effect.Effect<Commit.Outcome, StoreError.StoreError>
  } | undefined {
    const snapshot = this.snapshot()
    const base = this.base
    const incoming = this.incoming
    const plan = this.config.decide(base, snapshot, now, this.config, incoming)
    if (plan.end === undefined && plan.write._tag === "None") {
      this.takeIn({ base, token: undefined, cookie: plan.cookie }, snapshot)
      return undefined
    }
    return { snapshot, run: Commit.run(this.config, plan, base, snapshot, now, incoming) }
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
    this.finished = true
    if (this.phase === "loaded" && !(this.mutex?.locked ?? false)) {
      // Loaded and no commit running: decide now, in this step; most requests have nothing to write.
      return Effect.clockWith((clock) => {
        let work: ReturnType<RequestSession["prepare"]>
        try {
          work = this.prepare(clock.unsafeCurrentTimeMillis())
        } catch (defect) {
          return this.respondAfter(Effect.die(defect), response)
        }
        if (work === undefined) return Effect.succeed(this.applyCookie(response))
        // Something to write: the request's lock is taken in the step that decided it and released by the one
        // match that takes in the outcome (the hot path; `Mutex.withLockOf` would add a match of its own).
        const mutex = this.commitMutex()
        mutex.acquireFree()
        const { run, snapshot } = work
        return Effect.matchCauseEffect(run, {
          onSuccess: (outcome) => {
            mutex.releaseHeld()
            this.takeIn(outcome, snapshot)
            return Effect.succeed(this.applyCookie(response))
          },
          onFailure: (cause) => {
            mutex.releaseHeld()
            return this.failed500(cause)
          }
        })
      })
    }
    if (this.phase === "idle" && this.untouchedNeedsNothing()) {
      return Effect.succeed(response)
    }
    return this.respondAfter(this.commit, response)
  }

  private respondAfter(
    commit: Effect.Effect<void, StoreError.StoreError>,
    response: HttpServerResponse.HttpServerResponse
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> {
    return Effect.matchCauseEffect(commit, {
      onSuccess: () => Effect.succeed(this.applyCookie(response)),
      onFailure: (cause) => this.failed500(cause)
    })
  }

  /** A failed commit: an empty 500, logged by reason and method only. */
  private failed500(cause: Cause.Cause<StoreError.StoreError>): Effect.Effect<HttpServerResponse.HttpServerResponse> {
    this.failed = true
    const failure = Cause.failureOption(cause)
    const log = Option.isSome(failure)
      ? Effect.logError("effect-sessions: session commit failed; responding 500").pipe(
        Effect.annotateLogs({ reason: failure.value.reason, method: failure.value.method })
      )
      : Effect.logError("effect-sessions: session commit died; responding 500")
    return Effect.as(log, HttpServerResponse.empty({ status: 500 }))
  }
}
