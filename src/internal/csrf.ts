/**
 * CSRF: the session-bound secret, its per-response masking, and the Origin /
 * `Sec-Fetch-Site` decision for a request.
 */
import { timingSafeEqual } from "node:crypto"

/** The session key holding the CSRF secret (`Csrf.TOKEN_KEY`; `cycleId` drops it to rotate the secret). @internal */
export const TOKEN_KEY = "effect-sessions:csrf"

/** Bytes in the secret a session keeps. */
const SECRET_BYTES = 32

/** Characters in a secret, base64url (32 bytes). */
const SECRET_LENGTH = 43

/** Characters in a masked token, base64url (a 32-byte pad and the 32-byte masked secret). */
const TOKEN_LENGTH = 86

const base64url = /^[A-Za-z0-9_-]+$/

const randomBytes = (n: number): Buffer => {
  const bytes = new Uint8Array(n)
  globalThis.crypto.getRandomValues(bytes)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A fresh session secret: 32 bytes from `crypto.getRandomValues`, base64url. @internal */
export const generateSecret = (): string => randomBytes(SECRET_BYTES).toString("base64url")

/** `isSecret` is true for a well-formed stored secret. @internal */
export const isSecret = (u: unknown): u is string =>
  typeof u === "string" && u.length === SECRET_LENGTH && base64url.test(u) &&
  Buffer.from(u, "base64url").length === SECRET_BYTES

const xor = (a: Buffer, b: Buffer): Buffer => {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i]
  return out
}

/**
 * `mask` turns the secret into a token for one response: a fresh random pad and the secret XOR the
 * pad. Every page gets a different string for the same secret, so compression side channels
 * (BREACH) learn nothing from repeated responses. @internal
 */
export const mask = (secret: string): string => {
  const pad = randomBytes(SECRET_BYTES)
  return Buffer.concat([pad, xor(pad, Buffer.from(secret, "base64url"))]).toString("base64url")
}

/** `matches` is true when `candidate` is a token `mask` made from `secret`; constant-time. @internal */
export const matches = (secret: string, candidate: string): boolean => {
  if (candidate.length !== TOKEN_LENGTH || !base64url.test(candidate)) return false
  const bytes = Buffer.from(candidate, "base64url")
  if (bytes.length !== 2 * SECRET_BYTES) return false
  const unmasked = xor(bytes.subarray(0, SECRET_BYTES), bytes.subarray(SECRET_BYTES))
  const expected = Buffer.from(secret, "base64url")
  return expected.length === unmasked.length && timingSafeEqual(expected, unmasked)
}

/**
 * `isUnsafeMethod` is true for every method but GET, HEAD, OPTIONS and TRACE (the methods that must not
 * change state): PROPFIND, MKCOL, PURGE or any other extension method is checked. @internal
 */
export const isUnsafeMethod = (method: string): boolean =>
  method !== "GET" && method !== "HEAD" && method !== "OPTIONS" && method !== "TRACE"

/** The default cap on a url-encoded body read for the token: 64 KiB. @internal */
export const DEFAULT_MAX_BODY_BYTES = 65_536

/**
 * `declaredLength` is the body length a `Content-Length` header declares, or `undefined` when there is none
 * or it is not one plain decimal (chunked, or malformed). @internal
 */
export const declaredLength = (header: string | undefined): number | undefined => {
  if (header === undefined || header.length === 0 || header.length > 15 || !/^[0-9]+$/.test(header)) return undefined
  return Number(header)
}

/** `appOrigin` is the origin the request was sent to as the platform sees it: `Host`, and `https` only when `X-Forwarded-Proto` says so. @internal */
export const appOrigin = (headers: { readonly [name: string]: string | undefined }): string | undefined => {
  const host = headers["host"]?.trim().toLowerCase()
  if (host === undefined || host === "") return undefined
  const proto = headers["x-forwarded-proto"]?.split(",")[0].trim().toLowerCase()
  return normalizeOrigin(`${proto === "https" ? "https" : "http"}://${host}`)
}

/** What the request's headers say about where it came from. @internal */
export type OriginVerdict = "SameOrigin" | "CrossOrigin" | "NoSignal"

const normalizeOrigin = (origin: string): string | undefined => {
  try {
    const url = new URL(origin)
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : undefined
  } catch {
    return undefined
  }
}

/** `normalizeOrigins` parses configured origins; `undefined` entries mark the ones that are not http(s) origins. @internal */
export const normalizeOrigins = (origins: ReadonlyArray<string>): ReadonlyArray<string | undefined> =>
  origins.map(normalizeOrigin)

/**
 * `judgeOrigin` decides from `Sec-Fetch-Site`, then `Origin`:
 * - `Sec-Fetch-Site: same-origin` or `none` (typed by the user): same origin;
 * - an `Origin` in `allowedOrigins` (scheme, host and port): same origin;
 * - `Sec-Fetch-Site: same-site` or `cross-site`: cross origin;
 * - an `Origin` (without `allowedOrigins`) equal to the request's own origin (`appOrigin`, scheme included): same origin;
 * - any other `Origin`, including `null`: cross origin;
 * - neither header (an old browser or a non-browser client): no signal.
 * @internal
 */
export const judgeOrigin = (
  headers: { readonly [name: string]: string | undefined },
  allowedOrigins: ReadonlySet<string> | undefined
): OriginVerdict => {
  const site = headers["sec-fetch-site"]?.trim().toLowerCase()
  if (site === "same-origin" || site === "none") return "SameOrigin"
  const rawOrigin = headers["origin"]?.trim()
  const origin = rawOrigin === undefined || rawOrigin === "" ? undefined : normalizeOrigin(rawOrigin)
  if (origin !== undefined && allowedOrigins !== undefined && allowedOrigins.has(origin)) return "SameOrigin"
  if (site === "same-site" || site === "cross-site") return "CrossOrigin"
  if (rawOrigin === undefined || rawOrigin === "") return "NoSignal"
  if (origin === undefined || allowedOrigins !== undefined) return "CrossOrigin"
  return origin === appOrigin(headers) ? "SameOrigin" : "CrossOrigin"
}

/**
 * `withRedactedNames(names, extra)` is `names` with `extra` added (lower-cased, each once), for the platform's
 * list of header names redacted in spans and logs. @internal
 */
export const withRedactedNames = (
  names: ReadonlyArray<string | RegExp>,
  extra: ReadonlyArray<string>
): ReadonlyArray<string | RegExp> => {
  const missing = extra.map((n) => n.toLowerCase()).filter((n, i, all) =>
    all.indexOf(n) === i && !names.some((m) => typeof m === "string" && m.toLowerCase() === n)
  )
  return missing.length === 0 ? names : [...names, ...missing]
}
