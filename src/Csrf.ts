/**
 * CSRF protection for session-backed apps: a session-bound token for forms, and an
 * `Origin` / `Sec-Fetch-Site` check for unsafe methods (every method but GET, HEAD, OPTIONS and TRACE).
 *
 * `SameSite=Lax` keeps the session cookie off cross-site POSTs, but still sends it on
 * top-level GET navigations and from sibling subdomains (same-site). So:
 *
 * - `Csrf.token` gives the page a token to put into its forms (`<input name="_csrf">`) or
 *   send as the `x-csrf-token` header. The secret behind it lives in the session under
 *   `Csrf.TOKEN_KEY`, created on first use; every call masks it with a fresh pad, so no
 *   two responses carry the same string (no BREACH-style leak through compression).
 * - An unsafe request passes the origin check when `Sec-Fetch-Site` is `same-origin` or
 *   `none`, or its `Origin` is one of `allowedOrigins` (scheme, host and port compared), or,
 *   without `allowedOrigins`, the request's own origin: its `Host` with the scheme `https` when
 *   `X-Forwarded-Proto: https`, else `http`. `same-site`, `cross-site`, a foreign `Origin` and
 *   `Origin: null` are refused. With neither header (old browsers, non-browser clients) the
 *   origin check has no signal and the token alone decides.
 * - Behind a TLS-terminating proxy the app sees plain HTTP: have the proxy send
 *   `X-Forwarded-Proto: https`, or list the public origin in `allowedOrigins`. Otherwise an
 *   `https://` `Origin` is refused as cross-origin (browsers that send `Sec-Fetch-Site` are not
 *   affected: `same-origin` passes before `Origin` is looked at).
 * - The token is looked for in the header first. Only when it must come from an
 *   `application/x-www-form-urlencoded` body is the body read, and only after everything the
 *   headers decide: a request whose session holds no secret (no session cookie) is refused
 *   unread, and so is a body declared over `maxBodyBytes` (default 64 KiB); one of unknown length is read up to it.
 * - Safe methods (GET, HEAD, OPTIONS, TRACE) are never checked: keep them free of side effects.
 *
 * A failure is a `CsrfError`, which responds 403 with an opaque body. Its `reason` is for
 * the server's logs only.
 *
 * Use `Csrf.middleware()` inside the session middleware (`HttpRouter.use` it before
 * `SessionMiddleware.middleware`), or call `Csrf.verifyRequest()` / `Csrf.verifyToken` in
 * a handler. `Session.clear` and `Session.flush` drop the secret (a new one comes with the
 * next `Csrf.token`). `Session.cycleId` (login) rotates it by default, so a token that leaked
 * before login is worthless after it; `SessionMiddleware.layer({ rotateCsrfOnCycle: false })`
 * keeps it.
 *
 * The token must not reach traces: the session middleware adds the default header
 * (`x-csrf-token`), `cookie` and `set-cookie` to the header names the platform redacts in its
 * `http.server` spans; with another `headerName`, provide `Csrf.layerRedaction({ headerName })`
 * to the server layer as well.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Csrf, Session, SessionMiddleware } from "effect-sessions"
 * import { Effect } from "effect"
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", Effect.map(Csrf.token, (token) =>
 *     HttpServerResponse.html(`<form method="post" action="/logout">
 *       <input type="hidden" name="_csrf" value="${token}"><button>Log out</button></form>`))),
 *   HttpRouter.post("/logout", Effect.as(Session.flush, HttpServerResponse.redirect("/", { status: 303 }))),
 *   HttpRouter.use(Csrf.middleware()),
 *   HttpRouter.use(SessionMiddleware.middleware)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as internal from "./internal/csrf.js"
import * as Session from "./Session.js"

/**
 * The session key holding the CSRF secret.
 *
 * @since 0.1.0
 */
export const TOKEN_KEY: typeof internal.TOKEN_KEY = internal.TOKEN_KEY

/**
 * The default request header carrying the token.
 *
 * @since 0.1.0
 */
export const DEFAULT_HEADER = "x-csrf-token"

/**
 * The default form field (`application/x-www-form-urlencoded`) carrying the token.
 *
 * @since 0.1.0
 */
export const DEFAULT_FIELD = "_csrf"

/**
 * The default cap on the url-encoded body read for the token field: 64 KiB.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_BODY_BYTES = internal.DEFAULT_MAX_BODY_BYTES

/**
 * Options of the checks; every field is optional.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The header carrying the token. Default `"x-csrf-token"`. */
  readonly headerName?: string | undefined
  /** The url-encoded form field carrying the token. Default `"_csrf"`. Multipart bodies are not read: send the header. */
  readonly fieldName?: string | undefined
  /**
   * The largest url-encoded body read to find the token field, in bytes. Default 64 KiB. A body whose
   * `Content-Length` is larger is refused (reason `BodyTooLarge`) without being read; one of unknown length
   * (chunked, HTTP/2, a Web handler's `Request`) is read up to the cap, and reading stops once it is passed (on
   * Node the connection is closed). Send larger forms with the token in the header. A positive integer; anything
   * else refuses every unsafe request (`InvalidOptions`).
   */
  readonly maxBodyBytes?: number | undefined
  /**
   * Origins (`https://app.example.com`) allowed to send unsafe requests, compared in full (scheme, host, port):
   * list the app's public origin here. Default: the request's own origin (its `Host`, `https` only with
   * `X-Forwarded-Proto: https`).
   * Warning: when set, the own-origin fallback is off, so list the app's own public origin too. An entry that is
   * not an http(s) origin refuses every unsafe request (reason `InvalidOptions`) rather than guess.
   */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
  /**
   * Default `true`: unsafe requests must carry the session's token. `false` relies on the origin check alone,
   * and then also refuses unsafe requests without `Sec-Fetch-Site` and `Origin`.
   */
  readonly requireToken?: boolean | undefined
}

/**
 * `token` succeeds with a token for the current session's forms, creating the session's secret on first use.
 * Each call returns a different string (the secret masked with a fresh pad); all of them verify.
 *
 * @since 0.1.0
 */
export const token: Effect.Effect<string, Session.SessionError, Session.Session> = Effect.gen(function*() {
  const stored = yield* Session.get(TOKEN_KEY)
  if (Option.isSome(stored) && internal.isSecret(stored.value)) return internal.mask(stored.value)
  const secret = internal.generateSecret()
  yield* Session.insert(TOKEN_KEY, secret)
  return internal.mask(secret)
})

/** The session's CSRF secret, if it holds one; never creates one. */
const storedSecret: Effect.Effect<string | undefined, Session.SessionError, Session.Session> = Effect.map(
  Session.get(TOKEN_KEY),
  (stored) => Option.isSome(stored) && internal.isSecret(stored.value) ? stored.value : undefined
)

const judge = (secret: string | undefined, candidate: string | undefined): Effect.Effect<void, CsrfError> =>
  candidate === undefined || candidate === ""
    ? Effect.fail(csrfError("MissingToken"))
    : secret !== undefined && internal.matches(secret, candidate)
    ? Effect.void
    : Effect.fail(csrfError("InvalidToken"))

/**
 * `verifyToken(candidate)` succeeds when `candidate` is a token of the current session (constant-time);
 * otherwise it fails with a `CsrfError` (`MissingToken` for an empty candidate, else `InvalidToken`).
 * It never creates a secret.
 *
 * @since 0.1.0
 */
export const verifyToken = (
  candidate: string | undefined
): Effect.Effect<void, CsrfError | Session.SessionError, Session.Session> =>
  candidate === undefined || candidate === ""
    ? Effect.fail(csrfError("MissingToken"))
    : Effect.flatMap(storedSecret, (secret) => judge(secret, candidate))

interface Resolved {
  readonly headerName: string
  readonly fieldName: string
  readonly maxBodyBytes: number
  readonly allowedOrigins: ReadonlySet<string> | undefined
  readonly requireToken: boolean
  readonly invalid: boolean
}

const resolve = (options: Options | undefined): Resolved => {
  const origins = options?.allowedOrigins === undefined ? undefined : internal.normalizeOrigins(options.allowedOrigins)
  const maxBodyBytes = options?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  return {
    headerName: (options?.headerName ?? DEFAULT_HEADER).toLowerCase(),
    fieldName: options?.fieldName ?? DEFAULT_FIELD,
    maxBodyBytes,
    allowedOrigins: origins === undefined ? undefined : new Set(origins.filter((o) => o !== undefined)),
    requireToken: options?.requireToken ?? true,
    invalid: (origins !== undefined && origins.some((o) => o === undefined)) ||
      !(Number.isSafeInteger(maxBodyBytes) && maxBodyBytes > 0)
  }
}

const originCheck = (
  request: HttpServerRequest.HttpServerRequest,
  config: Resolved
): Effect.Effect<void, CsrfError> => {
  if (!internal.isUnsafeMethod(request.method)) return Effect.void
  if (config.invalid) return Effect.fail(csrfError("InvalidOptions"))
  const verdict = internal.judgeOrigin(request.headers, config.allowedOrigins)
  if (verdict === "SameOrigin") return Effect.void
  if (verdict === "NoSignal" && config.requireToken) return Effect.void
  return Effect.fail(csrfError("CrossOrigin"))
}

/**
 * `checkOrigin(options)` succeeds for safe methods and for unsafe ones whose `Sec-Fetch-Site` / `Origin` say
 * they come from the app itself (or an allowed origin); a cross-site request fails with `CrossOrigin`.
 * A request with neither header passes unless `requireToken` is `false`.
 *
 * @since 0.1.0
 */
export const checkOrigin = (
  options?: Options
): Effect.Effect<void, CsrfError, HttpServerRequest.HttpServerRequest> => {
  const config = resolve(options)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => originCheck(request, config))
}

const isForm = (request: HttpServerRequest.HttpServerRequest): boolean =>
  (request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")

/**
 * The token check of an unsafe request, deciding from the headers whatever they decide: the header token, else
 * (for a form) the session's secret before the body, and the body only when its declared length is within the cap.
 */
const tokenCheck = (
  request: HttpServerRequest.HttpServerRequest,
  config: Resolved
): Effect.Effect<void, CsrfError | Session.SessionError, Session.Session> => {
  const header = request.headers[config.headerName]
  if (header !== undefined && header !== "") return verifyToken(header)
  if (!isForm(request)) return Effect.fail(csrfError("MissingToken"))
  return Effect.flatMap(storedSecret, (secret) => {
    // no secret, no token can match: the body is not worth reading
    if (secret === undefined) return Effect.fail(csrfError("NoSession"))
    // a declared length over the cap is refused unread; an unknown one (chunked, HTTP/2, Web handlers) is read
    // under the cap, and the reading stops where the cap is passed
    const length = internal.declaredLength(request.headers["content-length"])
    if (length !== undefined && length > config.maxBodyBytes) return Effect.fail(csrfError("BodyTooLarge"))
    return request.urlParamsBody.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(config.maxBodyBytes)),
      Effect.map((params) => params.find(([name]) => name === config.fieldName)?.[1]),
      Effect.orElseSucceed(() => undefined),
      Effect.flatMap((candidate) => judge(secret, candidate))
    )
  })
}

const check = (
  config: Resolved
): Effect.Effect<void, CsrfError | Session.SessionError, HttpServerRequest.HttpServerRequest | Session.Session> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    !internal.isUnsafeMethod(request.method)
      ? Effect.void
      : config.requireToken
      ? Effect.zipRight(originCheck(request, config), tokenCheck(request, config))
      : originCheck(request, config))

/**
 * `verifyRequest(options)` is the whole check for the current request: safe methods pass; an unsafe one
 * must pass `checkOrigin` and carry the session's token in the header or the url-encoded form field.
 * It fails with a `CsrfError` (403 when left unhandled).
 *
 * @since 0.1.0
 */
export const verifyRequest = (
  options?: Options
): Effect.Effect<void, CsrfError | Session.SessionError, HttpServerRequest.HttpServerRequest | Session.Session> =>
  check(resolve(options))

/**
 * `middleware(options)` runs `verifyRequest` before the app and answers a refused request with a 403
 * (body `Forbidden`) without calling the app. It needs `Session`: apply it inside the session middleware.
 *
 * @since 0.1.0
 */
export const middleware = (options?: Options) => {
  const config = resolve(options)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E | Session.SessionError, R | Session.Session> =>
    check(config).pipe(
      Effect.zipRight(app),
      Effect.catchIf(
        (e): e is CsrfError => e instanceof CsrfError,
        (e) => Effect.as(Effect.logWarning(`effect-sessions: CSRF check refused a request (${e.reason})`), forbidden())
      )
    )
}

/**
 * `redactHeaders(options)` adds the CSRF header (`headerName`, default `x-csrf-token`), `cookie` and `set-cookie`
 * to the header names `@effect/platform` redacts in its spans and logs (`Headers.currentRedactedNames`), for the
 * running fiber and every fiber it starts afterwards, such as a server's request fibers.
 *
 * @since 0.1.0
 */
export const redactHeaders = (options?: Pick<Options, "headerName">): Effect.Effect<void> =>
  FiberRef.update(
    Headers.currentRedactedNames,
    (names) => internal.withRedactedNames(names, [options?.headerName ?? DEFAULT_HEADER, "cookie", "set-cookie"])
  )

/**
 * `layerRedaction(options)` runs `redactHeaders(options)` when it is built: provide it to `HttpServer.serve(app)`
 * (it must be built before the server starts serving) so that every request's `http.server` span redacts the
 * CSRF header. `SessionMiddleware.layer` already does this for the default header.
 *
 * @since 0.1.0
 */
export const layerRedaction = (options?: Pick<Options, "headerName">): Layer.Layer<never> =>
  Layer.effectDiscard(redactHeaders(options))

/**
 * Why a request was refused (server-side only; never sent to the client).
 *
 * @since 0.1.0
 */
export type CsrfErrorReason =
  | "CrossOrigin"
  | "MissingToken"
  | "InvalidToken"
  /** The session holds no CSRF secret (no session cookie, or no token was ever issued): refused before the body is read. */
  | "NoSession"
  /** The token would have to come from a url-encoded body declared over `maxBodyBytes`: refused unread. */
  | "BodyTooLarge"
  | "InvalidOptions"

/**
 * A refused request. It responds 403 with an opaque body; on an `HttpApi` it is declared with status 403
 * and encodes as `{ "_tag": "CsrfError" }` only. `reason` stays on the server.
 *
 * @since 0.1.0
 */
export class CsrfError extends Schema.TaggedError<CsrfError>("effect-sessions/CsrfError")(
  "CsrfError",
  {},
  HttpApiSchema.annotations({ status: 403, description: "The request failed its CSRF check." })
) implements HttpServerRespondable.Respondable {
  declare readonly reason: CsrfErrorReason
  override get message(): string {
    return `CSRF check failed: ${this.reason ?? "refused"}`
  }
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(forbidden())
  }
}

/**
 * `csrfError(reason)` builds a `CsrfError` whose `reason` is kept out of its encoding.
 *
 * @since 0.1.0
 */
export const csrfError = (reason: CsrfErrorReason): CsrfError => {
  const error = new CsrfError()
  Object.defineProperty(error, "reason", { value: reason, enumerable: false, configurable: true })
  return error
}

/**
 * `forbidden()` is the response a refused request gets: 403, body `Forbidden`.
 *
 * @since 0.1.0
 */
export const forbidden = (): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text("Forbidden", { status: 403, headers: { "cache-control": "no-store" } })
