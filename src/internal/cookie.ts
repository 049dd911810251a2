/**
 * The session cookie: options, their validation, and writing the cookie onto a response.
 *
 * @internal
 */
import * as Cookies from "@effect/platform/Cookies"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

/** Cookie options of the session middleware (documented on `SessionMiddleware.CookieOptions`). */
export type { CookieOptions } from "../SessionMiddleware.js"
import type { CookieOptions } from "../SessionMiddleware.js"

/** The resolved cookie: its name and the attributes every cookie we send carries (no `Max-Age`). */
export interface ResolvedCookie {
  readonly name: string
  /** The attributes as they follow `Max-Age` in a `Set-Cookie` header, in `@effect/platform`'s order. */
  readonly suffix: string
  readonly attributes: {
    readonly path: string
    readonly domain?: string | undefined
    readonly secure: boolean
    readonly httpOnly: boolean
    readonly sameSite: "lax" | "strict" | "none"
    readonly partitioned?: boolean | undefined
  }
}

export const DEFAULT_NAME = "__Host-session"

const namePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const pathPattern = /^\/[\u0021-\u003a\u003c-\u007e]*$/
const domainPattern =
  /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/**
 * `resolve` applies the defaults (`__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`)
 * and refuses configurations browsers would drop, with a message saying why.
 */
export const resolve = (options: CookieOptions | undefined): Either.Either<ResolvedCookie, string> => {
  const name = options?.name ?? DEFAULT_NAME
  const path = options?.path ?? "/"
  const domain = options?.domain
  const secure = options?.secure ?? true
  const httpOnly = options?.httpOnly ?? true
  const sameSite = options?.sameSite ?? "lax"
  const partitioned = options?.partitioned ?? false

  if (name.length === 0 || !namePattern.test(name)) {
    return Either.left(`session cookie name ${JSON.stringify(name)} is not a valid cookie name (RFC 6265 token)`)
  }
  if (!pathPattern.test(path)) {
    return Either.left(
      `session cookie path ${JSON.stringify(path)} must start with "/" and hold no ";" or control characters`
    )
  }
  if (domain !== undefined && !domainPattern.test(domain)) {
    return Either.left(`session cookie domain ${JSON.stringify(domain)} is not a valid domain`)
  }
  if (sameSite !== "lax" && sameSite !== "strict" && sameSite !== "none") {
    return Either.left(`session cookie sameSite must be "lax", "strict" or "none"`)
  }
  const lower = name.toLowerCase()
  if (lower.startsWith("__host-")) {
    if (!secure) {
      return Either.left(
        `session cookie ${name}: a "__Host-" cookie requires secure: true (browsers drop it otherwise)`
      )
    }
    if (domain !== undefined) {
      return Either.left(
        `session cookie ${name}: a "__Host-" cookie must not have a domain (browsers drop it otherwise)`
      )
    }
    if (path !== "/") {
      return Either.left(`session cookie ${name}: a "__Host-" cookie requires path "/" (browsers drop it otherwise)`)
    }
  }
  if (lower.startsWith("__secure-") && !secure) {
    return Either.left(
      `session cookie ${name}: a "__Secure-" cookie requires secure: true (browsers drop it otherwise)`
    )
  }
  if (sameSite === "none" && !secure) {
    return Either.left(`session cookie ${name}: sameSite "none" requires secure: true (browsers drop it otherwise)`)
  }
  if (partitioned && !secure) {
    return Either.left(`session cookie ${name}: partitioned requires secure: true (browsers drop it otherwise)`)
  }
  const suffix = (domain !== undefined ? `; Domain=${domain}` : "") + `; Path=${path}` +
    (httpOnly ? "; HttpOnly" : "") +
    (secure ? "; Secure" : "") + (partitioned ? "; Partitioned" : "") +
    (sameSite === "lax" ? "; SameSite=Lax" : sameSite === "strict" ? "; SameSite=Strict" : "; SameSite=None")
  return Either.right({
    name,
    suffix,
    attributes: {
      path,
      ...(domain !== undefined ? { domain } : {}),
      secure,
      httpOnly,
      sameSite,
      ...(partitioned ? { partitioned: true } : {})
    }
  })
}

/**
 * `set` adds the session cookie with `value` to the response, with `Max-Age` when `maxAgeSeconds` is given
 * (a browser-session cookie otherwise). Never `Expires`.
 *
 * When the response has no `Set-Cookie` header yet, the cookie is written there as a ready string (the
 * servers of `@effect/platform` send it beside any cookies the handler set), which skips building and
 * serialising a `Cookies` value per response; otherwise it goes through `Cookies` as usual.
 */
export const set = (
  response: HttpServerResponse.HttpServerResponse,
  cookie: ResolvedCookie,
  value: string,
  maxAgeSeconds: number | undefined
): HttpServerResponse.HttpServerResponse => {
  const maxAge = maxAgeSeconds === undefined ? undefined : Math.max(0, Math.floor(maxAgeSeconds))
  if (response.headers["set-cookie"] === undefined) {
    const header = `${cookie.name}=${encodeURIComponent(value)}` + (maxAge === undefined ? "" : `; Max-Age=${maxAge}`) +
      cookie.suffix
    return HttpServerResponse.setHeader(response, "set-cookie", header)
  }
  const made = Cookies.makeCookie(
    cookie.name,
    value,
    maxAge === undefined ? cookie.attributes : { ...cookie.attributes, maxAge: Duration.seconds(maxAge) }
  )
  // The name and attributes were checked when the middleware was built and values are base64url:
  // `makeCookie` cannot refuse them.
  return Either.isRight(made)
    ? HttpServerResponse.updateCookies(response, Cookies.setCookie(made.right))
    : response
}

/** `remove` adds the removal cookie: same name, path, domain and flags, empty value, `Max-Age=0`. */
export const remove = (
  response: HttpServerResponse.HttpServerResponse,
  cookie: ResolvedCookie
): HttpServerResponse.HttpServerResponse => set(response, cookie, "", 0)
