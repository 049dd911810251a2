/**
 * The session cookie: options, their validation, reading it from a request's `Cookie` header, and
 * writing it onto a response.
 *
 * Reading is strict (RFC 6265 `cookie-string`): pairs are split on `;` (and the spaces after it), a name
 * matches only when it is exactly the configured one (no other byte is trimmed, so `\xa0name` or
 * `name\t` is another cookie), and no object is ever indexed by a name from the request, so names
 * like `__proto__` or `constructor` are plain names. The work per request is bounded: at most
 * `MAX_HEADER_CHARS` of the header and `MAX_VALUES` values are looked at.
 *
 * Of several cookies with the session's name (a browser sends them all, most specific path first), the
 * first that is a well-formed token — with a signer, the first that verifies — is used: a junk or
 * forged cookie tossed in front of the real one cannot blank the session out, and nothing unverified
 * ever reaches the store.
 *
 * @internal
 */
import * as Cookies from "@effect/platform/Cookies"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Signer } from "../CookieSigner.js"
import * as SessionToken from "../SessionToken.js"

/** Cookie options of the session middleware (re-exported, with its docs, as `SessionMiddleware.CookieOptions`). */
export interface CookieOptions {
  /** Cookie name. Default `"__Host-session"` (the prefix stops cookie tossing from sibling subdomains). */
  readonly name?: string | undefined
  /** Default `"/"`; a `__Host-` cookie requires `"/"`. */
  readonly path?: string | undefined
  /**
   * Default none (host-only). A `__Host-` cookie must not have one.
   * Warning: a domain shares the session with every subdomain.
   */
  readonly domain?: string | undefined
  /**
   * Default `true`. Browsers accept `Secure` cookies on http://localhost and http://127.0.0.1.
   * Warning: `false` sends the token in clear over plain HTTP.
   */
  readonly secure?: boolean | undefined
  /** Default `true`. Warning: `false` lets page scripts (and any XSS) read the token. */
  readonly httpOnly?: boolean | undefined
  /** Default `"lax"`. `"none"` requires `secure`; OAuth `form_post` callbacks need it on their route. */
  readonly sameSite?: "lax" | "strict" | "none" | undefined
  /** Default `false` (CHIPS). Requires `secure`. */
  readonly partitioned?: boolean | undefined
}

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

/** Characters of a `Cookie` header looked at; a pair that does not end within them is not read. */
export const MAX_HEADER_CHARS = 16_384

/** Values of the session cookie looked at, in header order. */
export const MAX_VALUES = 16

/** Longest cookie value looked at; anything longer is no session (a signed token is far shorter). */
export const MAX_VALUE_CHARS = 512

const NO_VALUES: ReadonlyArray<string> = []

/** Percent-decodes a value as `Cookie.set` encoded it (`encodeURIComponent`); `undefined` when it is not decodable. */
const decodeValue = (raw: string): string | undefined => {
  if (raw.indexOf("%") === -1) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

/**
 * `sessionCookieValues(header, name)` is every value of a cookie named exactly `name` in a `Cookie` header,
 * in header order, percent-decoded; at most `MAX_VALUES` of them, from the first `MAX_HEADER_CHARS`.
 */
export const sessionCookieValues = (cookieHeader: string | undefined, name: string): ReadonlyArray<string> => {
  if (typeof cookieHeader !== "string" || cookieHeader.length === 0 || name.length === 0) return NO_VALUES
  const length = cookieHeader.length
  const end = Math.min(length, MAX_HEADER_CHARS)
  let out: Array<string> | undefined
  let i = 0
  while (i < end) {
    // the space of the "; " separator (several are tolerated; nothing else is trimmed)
    while (i < end && cookieHeader.charCodeAt(i) === 0x20) i++
    let semi = cookieHeader.indexOf(";", i)
    if (semi === -1) semi = length
    // a pair cut by the cap could be a truncated value: stop instead
    if (semi > end) break
    const eq = i + name.length
    if (eq < semi && cookieHeader.charCodeAt(eq) === 0x3d && cookieHeader.startsWith(name, i)) {
      const value = decodeValue(cookieHeader.slice(eq + 1, semi))
      if (value !== undefined) {
        ;(out ??= []).push(value)
        if (out.length >= MAX_VALUES) break
      }
    }
    i = semi + 1
  }
  return out ?? NO_VALUES
}

/** The session token a request carries, and whether its cookie must be re-issued (signed under an older key). */
export interface IncomingToken {
  readonly token: SessionToken.SessionToken
  readonly reissue: boolean
}

/**
 * `selectToken(values, name, signer)` picks the request's session token from the values of its session cookies:
 * with a signer the first that verifies and holds a well-formed token, without one the first well-formed token.
 * Values longer than `MAX_VALUE_CHARS` are skipped. `undefined`: no session.
 */
export const selectToken = (
  values: ReadonlyArray<string>,
  name: string,
  signer: Signer | undefined
): IncomingToken | undefined => {
  for (let i = 0; i < values.length && i < MAX_VALUES; i++) {
    const raw = values[i]
    if (typeof raw !== "string" || raw.length === 0 || raw.length > MAX_VALUE_CHARS) continue
    if (signer === undefined) {
      if (SessionToken.isSessionToken(raw)) return { token: raw, reissue: false }
      continue
    }
    const verified = signer.verify(name, raw)
    if (Option.isSome(verified) && SessionToken.isSessionToken(verified.value.value)) {
      return { token: verified.value.value, reissue: verified.value.reissue }
    }
  }
  return undefined
}
