/**
 * Session middleware for `@effect/platform` HTTP apps: it provides `Session` to the handlers it wraps
 * and commits the session's changes through a pre-response handler, so the cookie is set before the
 * response leaves — also when a handler fails into a 4xx, never on a 5xx.
 *
 * - `HttpApp` / `HttpRouter`: `SessionMiddleware.middleware` with `SessionMiddleware.layer(options)`, or
 *   `(yield* SessionMiddleware.make(options)).apply(app)`. Apply it to the app or router itself, last
 *   (`HttpRouter.use` wraps only the routes that exist when it is called) — not as the `middleware`
 *   argument of `HttpServer.serve`, which runs after the response is written and cannot set a cookie.
 * - `HttpLayerRouter`: `Layer.provide(SessionMiddleware.layerRouter(options))` on the routes.
 * - `HttpApi`: add `SessionMiddleware.HttpApiSession` to the API or a group and provide
 *   `SessionMiddleware.layerHttpApi(options)`; its declared failure is the opaque `SessionError`.
 *
 * Every constructor needs a `SessionStore`. A configuration browsers would drop (a `__Host-` cookie with a
 * domain, a path other than `/` or without `Secure`; `SameSite=None` or `Partitioned` without `Secure`)
 * is refused with a `SessionConfigError` when the middleware is built.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Expiry, MemoryStore, Session, SessionMiddleware } from "effect-sessions"
 * import { Effect, Layer, Option, Schema } from "effect"
 * import { createServer } from "node:http"
 *
 * const Visits = Session.key("visits", Schema.Number)
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", Effect.gen(function*() {
 *     const n = Option.getOrElse(yield* Visits, () => 0) + 1
 *     yield* Visits.set(n)
 *     return HttpServerResponse.text(`visit ${n}`)
 *   })),
 *   HttpRouter.use(SessionMiddleware.middleware)
 * )
 *
 * const Main = HttpServer.serve(app).pipe(
 *   Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("30 minutes") })),
 *   Layer.provide(MemoryStore.layer()),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CookieSigner from "./CookieSigner.js"
import * as Csrf from "./Csrf.js"
import * as Expiry from "./Expiry.js"
import * as internalCookie from "./internal/cookie.js"
import * as Plan from "./internal/plan.js"
import * as internal from "./internal/session.js"
import { TaggedError } from "./internal/taggedError.js"
import { Session, SessionError } from "./Session.js"
import type * as SessionStoreModule from "./SessionStore.js"
import { SessionStore } from "./SessionStore.js"

/**
 * Options of the session cookie. Defaults: name `__Host-session`, `Path=/`, no `Domain`, `Secure`, `HttpOnly`,
 * `SameSite=Lax`, not `Partitioned`.
 *
 * @since 0.1.0
 */
export interface CookieOptions extends internalCookie.CookieOptions {}

/**
 * Options of the middleware; every field is optional.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The cookie (see `CookieOptions`). */
  readonly cookie?: CookieOptions | undefined
  /**
   * When sessions end, unless a session sets its own with `Session.setExpiry`. Default `Expiry.OnSessionEnd`
   * (a browser-session cookie; the store keeps the record for `sessionEndLifetime`, refreshed as requests arrive).
   */
  readonly expiry?: Expiry.Expiry | undefined
  /** How long the store keeps an `OnSessionEnd` session after its last refresh. Default 14 days. */
  readonly sessionEndLifetime?: Duration.DurationInput | undefined
  /**
   * A read-only request refreshes a sliding session (`OnInactivity`, `OnSessionEnd`) only when its remaining
   * life has fallen below this. Default half the session's sliding lifetime.
   */
  readonly refreshAfter?: Duration.DurationInput | undefined
  /** A cap on every session's life, counted from its creation, whatever its expiry. Default none. */
  readonly absoluteLifetime?: Duration.DurationInput | undefined
  /** How long a commit keeps merging after `Conflict`s before the request fails as a store error. Default 2 seconds. */
  readonly mergeDeadline?: Duration.DurationInput | undefined
  /**
   * After `Session.cycleId` moves a session to a new token, how long a request still carrying the old token is
   * told nothing: it gets no removal cookie (which could undo the login's new cookie), no data and no new token,
   * and writes nothing. Afterwards the old token is simply unknown. Default 10 seconds.
   */
  readonly cycleGrace?: Duration.DurationInput | undefined
  /**
   * `Session.cycleId` drops the session's CSRF secret, so the next `Csrf.token` draws a new one (OWASP advises a
   * new token at login). Default `true`; `false` keeps the secret across the move.
   */
  readonly rotateCsrfOnCycle?: boolean | undefined
  /** Cap on a session's encoded JSON in UTF-8 bytes, checked before the store is called. Default: the store's own cap (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /**
   * Sign cookies with this signer. Default: the `CookieSigner` service when the context of `make` / `layer`
   * holds one, else unsigned. A cookie that fails verification is no session, before any store lookup;
   * one verified under an older key is re-issued under the first.
   */
  readonly signer?: CookieSigner.Signer | undefined
  /**
   * The device details `Session.bindUser` keeps when the app passes none: the request's `User-Agent` (default
   * `true`; printable ASCII, at most 256 characters) and its remote address (default `false`: an IP address is
   * personal data; behind a proxy it is the proxy's, so pass `device.ip` yourself from a header you trust).
   */
  readonly device?: { readonly userAgent?: boolean | undefined; readonly ip?: boolean | undefined } | undefined
}

/**
 * A configuration the middleware refuses; `message` says what and why.
 *
 * @since 0.1.0
 */
export class SessionConfigError extends TaggedError("SessionConfigError")<{
  readonly message: string
}>() {}

/**
 * The built middleware.
 *
 * @since 0.1.0
 */
export interface Service {
  /** `apply(app)` provides `Session` to `app` and commits it before the response leaves. */
  readonly apply: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, Exclude<R, Session>>
  /** `session` makes the session of the current request and registers its commit (used by the `HttpApi` middleware). */
  readonly session: Effect.Effect<Context.Tag.Service<Session>, never, HttpServerRequest.HttpServerRequest>
}

/**
 * The middleware as a service (see `layer`).
 *
 * @since 0.1.0
 */
export class SessionMiddleware extends Context.Tag("effect-sessions/SessionMiddleware")<SessionMiddleware, Service>() {}

const DEFAULT_MERGE_DEADLINE = Duration.seconds(2)
const DEFAULT_CYCLE_GRACE = Duration.seconds(10)

const positiveMillis = (
  name: string,
  input: Duration.DurationInput | undefined,
  allowZero: boolean
): Either.Either<number | undefined, string> => {
  if (input === undefined) return Either.right(undefined)
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return Either.left(`session ${name} must be a finite duration`)
  }
  const ms = Duration.toMillis(decoded.value)
  if (ms < 0 || (!allowZero && ms === 0)) {
    return Either.left(`session ${name} must be ${allowZero ? "zero or more" : "positive"}`)
  }
  return Either.right(ms)
}

const checkExpiry = (expiry: Expiry.Expiry): string | undefined => {
  if (expiry._tag === "OnInactivity") {
    const ms = Duration.toMillis(expiry.duration)
    if (!Number.isFinite(ms) || ms <= 0) return "session expiry OnInactivity needs a positive, finite duration"
  }
  if (expiry._tag === "AtDateTime" && !Number.isSafeInteger(Math.floor(expiry.at))) {
    return "session expiry AtDateTime needs a valid instant"
  }
  return undefined
}

/** `resolveConfig` checks the options and fills in the defaults. */
const resolveConfig = (
  options: Options | undefined,
  store: SessionStoreModule.Service,
  contextSigner: Option.Option<CookieSigner.Signer>,
  decide: typeof Plan.decide
): Either.Either<internal.Config, SessionConfigError> =>
  Either.gen(function*() {
    const fail = (message: string) => Either.left(new SessionConfigError({ message }))
    const cookie = internalCookie.resolve(options?.cookie)
    if (Either.isLeft(cookie)) return yield* fail(cookie.left)
    const expiry = options?.expiry ?? Expiry.OnSessionEnd
    const expiryProblem = checkExpiry(expiry)
    if (expiryProblem !== undefined) return yield* fail(expiryProblem)
    const durations = {
      sessionEndLifetime: positiveMillis("sessionEndLifetime", options?.sessionEndLifetime, false),
      refreshAfter: positiveMillis("refreshAfter", options?.refreshAfter, true),
      absoluteLifetime: positiveMillis("absoluteLifetime", options?.absoluteLifetime, false),
      mergeDeadline: positiveMillis("mergeDeadline", options?.mergeDeadline, true),
      cycleGrace: positiveMillis("cycleGrace", options?.cycleGrace, true)
    }
    for (const d of Object.values(durations)) if (Either.isLeft(d)) return yield* fail(d.left)
    const get = (e: Either.Either<number | undefined, string>) => (Either.isRight(e) ? e.right : undefined)
    const maxDataBytes = options?.maxDataBytes
    if (maxDataBytes !== undefined && !(Number.isSafeInteger(maxDataBytes) && maxDataBytes > 0)) {
      return yield* fail("session maxDataBytes must be a positive integer")
    }
    const rotateCsrfOnCycle = options?.rotateCsrfOnCycle ?? true
    if (typeof rotateCsrfOnCycle !== "boolean") return yield* fail("session rotateCsrfOnCycle must be a boolean")
    const device = { userAgent: options?.device?.userAgent ?? true, ip: options?.device?.ip ?? false }
    if (typeof device.userAgent !== "boolean" || typeof device.ip !== "boolean") {
      return yield* fail("session device.userAgent and device.ip must be booleans")
    }
    return {
      store,
      cookie: cookie.right,
      signer: options?.signer ?? Option.getOrUndefined(contextSigner),
      expiry,
      sessionEndLifetimeMs: get(durations.sessionEndLifetime) ?? Duration.toMillis(Expiry.DEFAULT_SESSION_END_LIFETIME),
      refreshAfterMs: get(durations.refreshAfter),
      absoluteLifetimeMs: get(durations.absoluteLifetime),
      mergeDeadlineMs: get(durations.mergeDeadline) ?? Duration.toMillis(DEFAULT_MERGE_DEADLINE),
      cycleGraceMs: get(durations.cycleGrace) ?? Duration.toMillis(DEFAULT_CYCLE_GRACE),
      rotateCsrfOnCycle,
      device,
      maxDataBytes,
      locks: new internal.CommitLocks(),
      decide
    }
  })

const fromConfig = (config: internal.Config): Service => {
  const session = Effect.map(
    HttpServerRequest.HttpServerRequest,
    (request) => new internal.RequestSession(config, request.headers["cookie"], request)
  )
  return {
    apply: <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, Exclude<R, Session>> =>
      Effect.withFiberRuntime((fiber) => {
        // Registering the commit and providing `Session` take one update of the fiber's refs, and the context is
        // put back when `app` ends: what `appendPreResponseHandler` and `Effect.provideService` do, in fewer
        // operations per request.
        const context = fiber.currentContext
        const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
        const state = new internal.RequestSession(config, request.headers["cookie"], request)
        const previous = fiber.getFiberRef(HttpApp.currentPreResponseHandlers)
        const handlers = Option.some<HttpApp.PreResponseHandler>(
          previous._tag === "None"
            ? state.onResponse
            : (req, response) => Effect.flatMap(previous.value(req, response), (r) => state.onResponse(req, r))
        )
        const provided = Context.add(context, Session, state) as Context.Context<never>
        const restore = FiberRef.set(FiberRef.currentContext, context)
        return Effect.zipRight(
          Effect.updateFiberRefs((fiberId, refs) =>
            FiberRefs.updateAs(
              FiberRefs.updateAs(refs, { fiberId, fiberRef: HttpApp.currentPreResponseHandlers, value: handlers }),
              { fiberId, fiberRef: FiberRef.currentContext, value: provided }
            )
          ),
          Effect.matchCauseEffect(app as HttpApp.Default<E, Exclude<R, Session>>, {
            onSuccess: (response) => Effect.as(restore, response),
            onFailure: (cause) => Effect.zipRight(restore, Effect.failCause(cause))
          })
        )
      }),
    session: Effect.tap(session, (state) => HttpApp.appendPreResponseHandler(state.onResponse))
  }
}

/**
 * `make` builds the middleware over the `SessionStore` in context, or fails with a `SessionConfigError`
 * for a configuration browsers would drop or an invalid duration. It adds `cookie`, `set-cookie` and the
 * default CSRF header to the header names the platform redacts, for the server started after it (see `Csrf.redactHeaders`).
 *
 * @since 0.1.0
 */
export const make = (options?: Options): Effect.Effect<Service, SessionConfigError, SessionStore> =>
  Effect.flatMap(
    Effect.all([SessionStore, Effect.serviceOption(CookieSigner.CookieSigner), Plan.Decide]),
    ([store, signer, decide]) => Effect.map(resolveConfig(options, store, signer, decide), fromConfig)
  ).pipe(Effect.tap(() => Csrf.redactHeaders()))

/**
 * `layer` provides the `SessionMiddleware` service (used by `middleware`); it fails to build on a refused configuration.
 *
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<SessionMiddleware, SessionConfigError, SessionStore> =>
  Layer.effect(SessionMiddleware, make(options))

/**
 * `middleware` is an `HttpApp` middleware (for `HttpRouter.use` or to wrap any `HttpApp`) that provides
 * `Session` through the `SessionMiddleware` service in context (see `layer`).
 *
 * @since 0.1.0
 */
export const middleware = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, Exclude<R, Session> | SessionMiddleware> => Effect.flatMap(SessionMiddleware, (s) => s.apply(app))

/**
 * `layerRouter` is the `HttpLayerRouter` middleware providing `Session` to the routes it is provided to.
 *
 * @since 0.1.0
 */
export const layerRouter = (options?: Options) =>
  HttpLayerRouter.middleware<{ provides: Session }>()(
    Effect.map(make(options), (service) => service.apply)
  ).layer

/**
 * The `HttpApi` middleware providing `Session`. Its declared failure is the opaque `SessionError`
 * (`{ "_tag": "SessionError", "reason": ... }`, status 500): a store error's cause never reaches the client.
 *
 * @since 0.1.0
 */
export class HttpApiSession
  extends HttpApiMiddleware.Tag<HttpApiSession>()("effect-sessions/SessionMiddleware/HttpApiSession", {
    provides: Session,
    failure: SessionError
  })
{}

/**
 * `layerHttpApi` implements `HttpApiSession`: each request gets its `Session`, committed by the same
 * pre-response handler as the other middlewares.
 *
 * @since 0.1.0
 */
export const layerHttpApi = (options?: Options): Layer.Layer<HttpApiSession, SessionConfigError, SessionStore> =>
  Layer.effect(HttpApiSession, Effect.map(make(options), (service) => service.session))
