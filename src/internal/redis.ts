/**
 * RedisStore internals: the stored value's layout, the server-side scripts, and the mapping of
 * ioredis failures to `StoreError`.
 *
 * A session is one Redis string `"<version>:<expiresAt>:<json>"`: `load` is a single `GET`, and the
 * scripts read only the head of the value (`GETRANGE key 0 40`), so they never copy or parse the JSON.
 */
import * as Either from "effect/Either"
import * as SessionData from "../SessionData.js"
import type { SessionId } from "../SessionId.js"
import type * as SessionRecord from "../SessionRecord.js"
import * as StoreError from "../StoreError.js"

/** Longest possible head: 16 digits, `:`, a sign and 16 digits, `:`. `GETRANGE 0 40` always covers it. */
export const HEAD_BYTES = 41

/** `encodeValue` lays a record out as the stored string. */
export const encodeValue = (version: number, expiresAt: number, json: string): string =>
  `${version}:${expiresAt}:${json}`

/** What `decodeValue` found: a record, an expired record (its JSON never parsed), or the broken rule. */
export type Decoded =
  | { readonly _tag: "Live"; readonly record: SessionRecord.SessionRecord }
  | { readonly _tag: "Expired" }
  | { readonly _tag: "Malformed"; readonly rule: string }

const EXPIRED: Decoded = { _tag: "Expired" }

/** The integer written in `value[from, to)` (decimal digits, an optional leading `-`), or `undefined`. */
const parseInteger = (value: string, from: number, to: number): number | undefined => {
  const negative = value.charCodeAt(from) === 45 // "-"
  const start = negative ? from + 1 : from
  if (to - start < 1 || to - start > 16) return undefined
  let n = 0
  for (let i = start; i < to; i++) {
    const digit = value.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return undefined
    n = n * 10 + digit
  }
  return Number.isSafeInteger(n) ? (negative ? -n : n) : undefined
}

/**
 * `decodeValue` reads a stored string back for `id` (the id the key was built from). The JSON of a record
 * expired at `now` is never parsed.
 */
export const decodeValue = (id: SessionId, value: string, now: number): Decoded => {
  const first = value.indexOf(":")
  const second = first < 0 ? -1 : value.indexOf(":", first + 1)
  const version = first < 0 ? undefined : parseInteger(value, 0, first)
  const expiresAt = second < 0 ? undefined : parseInteger(value, first + 1, second)
  if (version === undefined || version < 1 || expiresAt === undefined) {
    return { _tag: "Malformed", rule: "stored value has no version:expiresAt head" }
  }
  if (expiresAt <= now) return EXPIRED
  const data = SessionData.decode(value.slice(second + 1))
  return Either.isRight(data)
    ? { _tag: "Live", record: { id, data: data.right, expiresAt, version } }
    : { _tag: "Malformed", rule: data.left }
}

/** Replies of both scripts. */
export const Reply = {
  Written: 1,
  /** `create`: a live record holds the id. `save`: the live record has another version. */
  Taken: 2,
  /** `save`: no live record. */
  Gone: 0,
  /** The stored head is not `version:expiresAt:`. */
  Malformed: -1
} as const

const readHead = `
local head = redis.call('GETRANGE', KEYS[1], 0, ${HEAD_BYTES - 1})
local v, e
if head ~= '' then
  v, e = string.match(head, '^(%d+):(%-?%d+):')
  if not v then return ${Reply.Malformed} end
end
`

/**
 * `create`: KEYS[1] the key; ARGV[1] the value, ARGV[2] now (app clock, epoch ms), ARGV[3] the TTL in ms.
 * Writes when the key is absent or its stored expiresAt <= now; otherwise `Taken`.
 */
export const createScript = `${readHead}
if v and tonumber(e) > tonumber(ARGV[2]) then return ${Reply.Taken} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return ${Reply.Written}
`

/**
 * `save` (compare-and-set): KEYS[1] the key; ARGV[1] the new value, ARGV[2] the expected version,
 * ARGV[3] now, ARGV[4] the TTL in ms. `Gone` when absent or expired by now, `Taken` when the version
 * differs, else written.
 */
export const saveScript = `${readHead}
if not v or tonumber(e) <= tonumber(ARGV[3]) then return ${Reply.Gone} end
if v ~= ARGV[2] then return ${Reply.Taken} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return ${Reply.Written}
`

/** The names the scripts are registered under with `defineCommand` (namespaced, to stay clear of an app's own). */
export const CREATE_COMMAND = "effectSessionsCreate"
export const SAVE_COMMAND = "effectSessionsSave"

/**
 * `ttlMillis` is the relative TTL Redis gets: `expiresAt - now` by the app clock, at least 1 ms. Never `PXAT`:
 * a skewed or test clock would make Redis drop a fresh key at once.
 */
export const ttlMillis = (expiresAt: number, now: number): number => Math.max(1, expiresAt - now)

/** Redis error replies start with an upper-case code (`WRONGTYPE`, `NOSCRIPT`, `OOM`, `READONLY`, ...). */
const replyCode = (message: string): string | undefined => {
  const match = /^([A-Z][A-Z_]{1,30})\b/.exec(message)
  return match === null ? undefined : match[1]
}

const clientCode = (message: string): string | undefined => {
  if (message === "Command timed out") return "COMMAND_TIMEOUT"
  if (message.startsWith("Stream isn't writeable")) return "NOT_CONNECTED"
  if (message.startsWith("Cluster isn't ready")) return "CLUSTER_NOT_READY"
  if (message === "Connection is closed.") return "CONNECTION_CLOSED"
  return undefined
}

/** The `Unavailable` error of an operation that outlived its deadline. */
export const deadlineError = (method: StoreError.Method): StoreError.StoreError =>
  StoreError.make(
    "Unavailable",
    method,
    new StoreError.RedactedCause({ name: "Timeout", code: "DEADLINE", rule: undefined })
  )

/**
 * `toStoreError` maps an ioredis failure to a `StoreError`: a value of the wrong type is `Decode`, anything
 * else (connection, timeout, server error) `Unavailable`. The cause keeps only the error's name and a code.
 */
export const toStoreError = (method: StoreError.Method, error: unknown): StoreError.StoreError => {
  if (error instanceof Error) {
    const code = typeof (error as { code?: unknown }).code === "string"
      ? undefined
      : error.name === "ReplyError"
      ? replyCode(error.message)
      : clientCode(error.message)
    if (code === "WRONGTYPE") return StoreError.rule("Decode", method, "stored value is not a Redis string")
    if (code !== undefined) {
      return StoreError.make(
        "Unavailable",
        method,
        new StoreError.RedactedCause({ name: error.name, code, rule: undefined })
      )
    }
  }
  return StoreError.make("Unavailable", method, error)
}
