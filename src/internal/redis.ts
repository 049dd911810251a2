/**
 * RedisStore internals: the stored value's layout, the server-side scripts, and the mapping of
 * ioredis failures to `StoreError`.
 *
 * A session is one Redis string `"<version>:<expiresAt>:<json>"`: `load` is a single `GET`, and the
 * scripts read only the head of the value (`GETRANGE key 0 40`), so they never copy or parse the JSON.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Redis } from "ioredis"
import * as SessionData from "../SessionData.js"
import type { SessionId } from "../SessionId.js"
import type * as SessionRecord from "../SessionRecord.js"
import * as StoreError from "../StoreError.js"

/**
 * Longest possible head: 16 digits, `:`, a sign and 16 digits, `:`, then a user key (43 characters) and `:`.
 * `GETRANGE 0 HEAD_BYTES - 1` always covers it.
 */
export const HEAD_BYTES = 80

/**
 * `encodeValue` lays a record out as the stored string: `version:expiresAt:json`, or
 * `version:expiresAt:userKey:json` for a session bound to a user, so a script reads whom a record belongs to
 * from its head. JSON data is an object (it starts with `{`) and a user key is base64url, so the two layouts never
 * read as each other, and values written before the index existed read as unbound.
 */
export const encodeValue = (version: number, expiresAt: number, json: string, userKey?: string): string =>
  userKey === undefined ? `${version}:${expiresAt}:${json}` : `${version}:${expiresAt}:${userKey}:${json}`

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

/** The rule a stored value breaks, as `decodeValue` reports it. */
export class Malformed {
  constructor(readonly rule: string) {}
}

const NO_HEAD = new Malformed("stored value has no version:expiresAt head")

/**
 * `decodeValue` reads a stored string back for `id` (the id the key was built from): the record, `undefined`
 * when it has expired at `now` (its JSON never parsed), or the rule it breaks. The live record is returned bare,
 * not wrapped, since this runs on every load.
 */
export const decodeValue = (
  id: SessionId,
  value: string,
  now: number
): SessionRecord.SessionRecord | undefined | Malformed => {
  const first = value.indexOf(":")
  const second = first < 0 ? -1 : value.indexOf(":", first + 1)
  const version = first < 0 ? undefined : parseInteger(value, 0, first)
  const expiresAt = second < 0 ? undefined : parseInteger(value, first + 1, second)
  if (version === undefined || version < 1 || expiresAt === undefined) return NO_HEAD
  if (expiresAt <= now) return undefined
  // A bound session's head carries the user key before the JSON object.
  const third = value.charCodeAt(second + 1) === 123 ? second : value.indexOf(":", second + 1) // "{"
  const data = SessionData.decode(value.slice(third + 1))
  return Either.isRight(data) ? { id, data: data.right, expiresAt, version } : new Malformed(data.left)
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

/** Reads the head of KEYS[1]: `v` the version, `e` the expiry, `u` the user key (`''` when unbound). */
const readHead = `
local head = redis.call('GETRANGE', KEYS[1], 0, ${HEAD_BYTES - 1})
local v, e, u
if head ~= '' then
  v, e, u = string.match(head, '^(%d+):(%-?%d+):([%w_%-]*)')
  if not v then return ${Reply.Malformed} end
end
`

/**
 * How long after a member's last filing its record may still be unwritten (a create files first on a Cluster), or
 * an app instance's clock may lag another's: no member is pruned as missing or someone else's before that.
 */
export const PRUNE_GRACE_MS = 5 * 60 * 1000

/**
 * The member of a user's set that holds, as minus its score, the longest TTL ever filed in the set: never a
 * session id (those are base64url).
 */
export const MAX_TTL_MEMBER = "!"

/**
 * Files member `id` in the user's sorted set `key` at score `now`, raises the longest TTL the set has seen and its
 * own TTL to at least `ttl`, and drops members filed longer ago than that longest TTL (and the grace): every write
 * of a bound session files it again, so such a member's record has expired. Sets of users who never list nor
 * revoke stay bounded by the sessions filed within one longest TTL.
 */
const file = (key: string, id: string, now: string, ttl: string) => `
redis.call('ZADD', ${key}, ${now}, ${id})
local longest = -tonumber(redis.call('ZSCORE', ${key}, '${MAX_TTL_MEMBER}') or '0')
if longest < tonumber(${ttl}) then
  longest = tonumber(${ttl})
  redis.call('ZADD', ${key}, -longest, '${MAX_TTL_MEMBER}')
end
redis.call('ZREMRANGEBYSCORE', ${key}, 0, tonumber(${now}) - longest - ${PRUNE_GRACE_MS})
if redis.call('PTTL', ${key}) < tonumber(${ttl}) then redis.call('PEXPIRE', ${key}, ${ttl}) end
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

/**
 * Standalone `create`, the record and its user's set in one step: KEYS[1] the key, KEYS[2] the user's set;
 * ARGV[1] the value, ARGV[2] now, ARGV[3] the TTL, ARGV[4] the user key (`''` when unbound: KEYS[2] untouched),
 * ARGV[5] the session id. A script on one server may touch both keys, so the set never lags the record.
 */
export const createIndexedScript = `${readHead}
if v and tonumber(e) > tonumber(ARGV[2]) then return ${Reply.Taken} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if ARGV[4] ~= '' then ${file("KEYS[2]", "ARGV[5]", "ARGV[2]", "ARGV[3]")} end
return ${Reply.Written}
`

/**
 * Standalone `save`: KEYS[1] the key, KEYS[2] the new user's set; ARGV[1] the value, ARGV[2] the expected
 * version, ARGV[3] now, ARGV[4] the TTL, ARGV[5] the new user key (or `''`), ARGV[6] the session id, ARGV[7]
 * the prefix of set keys. Files the session under its new user and takes it out of its old user's set, with the
 * write.
 */
export const saveIndexedScript = `${readHead}
if not v or tonumber(e) <= tonumber(ARGV[3]) then return ${Reply.Gone} end
if v ~= ARGV[2] then return ${Reply.Taken} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
if u ~= '' and u ~= ARGV[5] then redis.call('ZREM', ARGV[7] .. u, ARGV[6]) end
if ARGV[5] ~= '' then ${file("KEYS[2]", "ARGV[6]", "ARGV[3]", "ARGV[4]")} end
return ${Reply.Written}
`

/**
 * Standalone `delete`: KEYS[1] the key; ARGV[1] the session id, ARGV[2] the prefix of set keys. Like the standalone
 * `save`, it touches the old user's set, a key it learns from the record: a standalone server allows it, and no
 * Cluster runs these scripts.
 */
export const deleteIndexedScript = `
local head = redis.call('GETRANGE', KEYS[1], 0, ${HEAD_BYTES - 1})
local u = string.match(head, '^%d+:%-?%d+:([%w_%-]+):')
redis.call('UNLINK', KEYS[1])
if u then redis.call('ZREM', ARGV[2] .. u, ARGV[1]) end
return ${Reply.Written}
`

/** Cluster filing, the step before a record write: KEYS[1] the user's set; ARGV[1] the id, ARGV[2] now, ARGV[3] the TTL. */
export const fileScript = `${file("KEYS[1]", "ARGV[1]", "ARGV[2]", "ARGV[3]")}
return ${Reply.Written}
`

/** Replies of the revoke script. */
export const Revoked = {
  /** No record. */
  Missing: 0,
  /** The user's live record, deleted. */
  Live: 1,
  /** The user's expired record, deleted. */
  Expired: 2,
  /** The record belongs to someone else (or no one): untouched. */
  Foreign: 3
} as const

/**
 * `revoke` of one record: KEYS[1] the key; ARGV[1] the user key, ARGV[2] now. Deletes the record only if it
 * still belongs to that user, checked in the step that deletes it.
 */
export const revokeScript = `${readHead}
if not v then return ${Revoked.Missing} end
if u ~= ARGV[1] then return ${Revoked.Foreign} end
redis.call('UNLINK', KEYS[1])
if tonumber(e) > tonumber(ARGV[2]) then return ${Revoked.Live} end
return ${Revoked.Expired}
`

/**
 * Cluster pruning: KEYS[1] the user's set; ARGV[1] the member, ARGV[2] the score it had when its record was read.
 * Removes it only if no filing has happened since (a filing rewrites the score).
 */
export const pruneIfScript = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`

/**
 * Standalone pruning: KEYS[1] the record's key, KEYS[2] the user's set; ARGV[1] the member, ARGV[2] the user key,
 * ARGV[3] now. Removes the member unless the record is live and belongs to that user, judged in the same step.
 */
export const pruneCheckedScript = `
local head = redis.call('GETRANGE', KEYS[1], 0, ${HEAD_BYTES - 1})
local v, e, u = string.match(head, '^(%d+):(%-?%d+):([%w_%-]*)')
if v and u == ARGV[2] and tonumber(e) > tonumber(ARGV[3]) then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
`

/** The names the scripts are registered under with `defineCommand` (namespaced, to stay clear of an app's own). */
export const CREATE_COMMAND = "effectSessionsCreate"
export const SAVE_COMMAND = "effectSessionsSave"
export const CREATE_INDEXED_COMMAND = "effectSessionsCreateIndexed"
export const SAVE_INDEXED_COMMAND = "effectSessionsSaveIndexed"
export const DELETE_INDEXED_COMMAND = "effectSessionsDeleteIndexed"
export const FILE_COMMAND = "effectSessionsFile"
export const REVOKE_COMMAND = "effectSessionsRevoke"
export const PRUNE_IF_COMMAND = "effectSessionsPruneIf"
export const PRUNE_CHECKED_COMMAND = "effectSessionsPruneChecked"

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

/** Longest span of start times that share one timer. */
const MAX_WINDOW_MS = 10

/** Operations whose start times lie within one window: one timer, cleared when the last of them settles. */
class Batch {
  open = 0
  readonly pending: Array<Pending> = []
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  constructor(readonly startedAt: number) {}
}

/** One operation under a deadline, until `settle` or its batch's timer. */
export class Pending {
  settled = false
  constructor(
    readonly batch: Batch,
    readonly method: StoreError.Method,
    readonly resume: (failure: Effect.Effect<never, StoreError.StoreError>) => void
  ) {}
}

/** What `makeDeadlines` returns. */
export interface Deadlines {
  /** `start` puts an operation under the deadline; past it, `resume` gets the `Unavailable` error of `method`. */
  readonly start: (
    method: StoreError.Method,
    resume: (failure: Effect.Effect<never, StoreError.StoreError>) => void
  ) => Pending
  /** `settle` takes the operation off the clock; `false` when its deadline has already failed it. */
  readonly settle: (pending: Pending) => boolean
}

/**
 * `makeDeadlines(ms)` fails each operation with `Unavailable` once it has waited `ms`, with one timer per batch of
 * operations started within a few milliseconds of each other (a timer per operation costs more than the
 * operation's own work): the batch's timer fires `ms` after its first operation started, so a later one of the
 * batch fails up to that window early, never late.
 */
export const makeDeadlines = (ms: number): Deadlines => {
  const window = Math.min(MAX_WINDOW_MS, ms / 10)
  let current: Batch | undefined
  const fire = (batch: Batch) => {
    batch.timer = undefined
    if (current === batch) current = undefined
    for (const pending of batch.pending) {
      if (pending.settled) continue
      pending.settled = true
      pending.resume(Effect.fail(deadlineError(pending.method)))
    }
  }
  return {
    start: (method, resume) => {
      const now = performance.now()
      let batch = current
      if (batch === undefined || now - batch.startedAt >= window) {
        batch = new Batch(now)
        batch.timer = setTimeout(fire, ms, batch)
        current = batch
      }
      batch.open++
      const pending = new Pending(batch, method, resume)
      batch.pending.push(pending)
      return pending
    },
    settle: (pending) => {
      if (pending.settled) return false
      pending.settled = true
      const batch = pending.batch
      if (--batch.open === 0) {
        clearTimeout(batch.timer)
        batch.timer = undefined
        if (current === batch) current = undefined
      }
      return true
    }
  }
}

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

/**
 * Most commands one write carries: past it the held commands are written, so Redis works on them while the
 * rest of the turn's commands are issued instead of waiting for the whole turn (client and server then take
 * turns rather than overlap).
 */
export const MAX_BATCH = 16

/**
 * `writeBatcher(client)` is called before each command is sent: the first call of a tick corks the connection's
 * socket and the end of the tick uncorks it, so the commands of one tick leave in writes of up to `MAX_BATCH`,
 * as with ioredis's auto-pipelining, without the pipeline object and the extra promises per command that
 * auto-pipelining costs.
 */
export const writeBatcher = (client: Redis): () => void => {
  let corked: Redis["stream"] | undefined
  let held = 0
  const flush = () => {
    const stream = corked
    corked = undefined
    stream?.uncork()
  }
  return () => {
    if (corked === undefined) {
      if (client.status !== "ready") return
      corked = client.stream
      corked.cork()
      held = 0
      process.nextTick(flush)
    } else if (held === MAX_BATCH) {
      corked.uncork()
      corked.cork()
      held = 0
    }
    held++
  }
}
