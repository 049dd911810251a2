/**
 * A bounded in-process session store on `lru-cache` (tower-sessions' Moka store): for a single
 * instance, or as the `cache` of a `CachingStore` in front of a shared store.
 *
 * It holds at most `maxEntries` sessions (default 10,000) and, when `maxBytes` is set, at most that
 * many bytes, an entry counting as its data's JSON in UTF-8 bytes plus 64 bytes for its id, expiry
 * and version. When full it evicts the least recently used session: an evicted session then loads as
 * `Option.none()` and saves as `Gone`, as if it had ended. Use it as the only store only where losing
 * a session under memory pressure is acceptable.
 *
 * Time is the application's `Clock`: the cache reads the `now` of the current call (never
 * `performance.now()`), each entry lives for `expiresAt - now`, an already-expired record is never
 * inserted, and every read judges expiry again. Each entry holds the session's JSON text, so a
 * caller's later mutation never leaks into the store.
 *
 * @example
 * ```ts
 * import { LruStore, SessionData, SessionId, SessionStore, SessionToken } from "effect-sessions"
 * import { Clock, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* SessionStore.SessionStore
 *   const id = SessionId.fromToken(SessionToken.unsafeGenerate())
 *   const now = yield* Clock.currentTimeMillis
 *   yield* store.create({ id, data: SessionData.fromEntries([["user", "ada"]]), expiresAt: now + 60_000, version: 1 })
 *   const found = yield* store.load(id) // Option.some(record), unless evicted
 *   const held = yield* LruStore.size
 * })
 *
 * program.pipe(Effect.provide(LruStore.layer({ maxEntries: 50_000, maxBytes: 64 * 1024 * 1024 })))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LRUCache } from "lru-cache"
import { type InProcessService, type JsonEntry, makeEntryBackend, sizeOf } from "./internal/memoryBackend.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as SessionData from "./SessionData.js"
import * as SessionStore from "./SessionStore.js"
import * as StoreError from "./StoreError.js"

/**
 * What an LRU store offers besides the `SessionStore` contract.
 *
 * @since 0.1.0
 */
export interface Service extends InProcessService {}

/**
 * The LRU store's own service, provided by `layer` beside `SessionStore`.
 *
 * @since 0.1.0
 */
export class LruStore extends Context.Tag("effect-sessions/LruStore")<LruStore, Service>() {}

/**
 * `size` succeeds with the number of entries the provided LRU store holds, expired ones not yet evicted included.
 *
 * @since 0.1.0
 */
export const size: Effect.Effect<number, never, LruStore> = sizeOf(LruStore)

/**
 * Options of `make` and `layer`.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Most sessions held at once; the least recently used is evicted beyond it. Default 10,000. */
  readonly maxEntries?: number | undefined
  /**
   * Most bytes held at once (data JSON in UTF-8 plus 64 bytes per entry); the least recently used
   * sessions are evicted beyond it. A session that could never fit is refused with `Encode`.
   * Default: no byte limit (only `maxEntries`).
   */
  readonly maxBytes?: number | undefined
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB), lowered to fit `maxBytes`. */
  readonly maxDataBytes?: number | undefined
  /** Wrap each operation in a span. Default `true`. */
  readonly spans?: boolean | undefined
}

/**
 * The default `maxEntries`: 10,000 sessions.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_ENTRIES = 10_000

/**
 * Bytes an entry counts beyond its data's JSON: its id, expiry and version.
 *
 * @since 0.1.0
 */
export const ENTRY_OVERHEAD_BYTES = 64

const entrySize = (entry: JsonEntry): number => Buffer.byteLength(entry.json, "utf8") + ENTRY_OVERHEAD_BYTES

/** The smallest `maxBytes` that holds an entry: the overhead and an empty object's JSON. */
const MIN_MAX_BYTES = ENTRY_OVERHEAD_BYTES + 3

/**
 * `make` builds an LRU store; it fails with `StoreConfigError` (`InvalidOption`) when `maxEntries`, `maxBytes`
 * or `maxDataBytes` is not a positive integer, or `maxBytes` cannot hold a single entry.
 *
 * @since 0.1.0
 */
export const make = (options?: Options): Effect.Effect<Service, StoreError.StoreConfigError> =>
  Effect.suspend(() => {
    const maxEntries = options?.maxEntries ?? DEFAULT_MAX_ENTRIES
    const maxBytes = options?.maxBytes
    const maxDataBytes = options?.maxDataBytes ?? SessionData.DEFAULT_MAX_BYTES
    const problem = OptionChecks.first([
      OptionChecks.positiveInteger("LruStore", "maxEntries", maxEntries),
      OptionChecks.positiveInteger("LruStore", "maxDataBytes", maxDataBytes),
      maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_MAX_BYTES)
        ? StoreError.invalidOption("LruStore", "maxBytes", `maxBytes must be an integer of at least ${MIN_MAX_BYTES}`)
        : undefined
    ])
    if (problem !== undefined) return Effect.fail(problem)

    // The cache's clock is the `now` of the call in progress, shifted by one because lru-cache reads
    // a start time of 0 as "no TTL" (and TestClock starts at 0).
    let current = 0
    const perf = { now: () => current + 1 }
    const cache = new LRUCache<string, JsonEntry>({
      max: maxEntries,
      perf,
      ttlResolution: 0,
      ...(maxBytes !== undefined ? { maxSize: maxBytes, sizeCalculation: entrySize } : {})
    })

    // `current` is set before each synchronous use of the cache: lru-cache reads the time of the call.
    const backend = makeEntryBackend("LruStore", {
      get: (id, now) => {
        current = now
        return cache.get(id)
      },
      put: (id, entry, now) => {
        current = now
        if (entry.expiresAt <= now) cache.delete(id) // lru-cache reads `ttl: 0` as "forever"
        else cache.set(id, entry, { ttl: entry.expiresAt - now })
      },
      remove: (id, now) => {
        current = now
        cache.delete(id)
      }
    })

    const fitting = maxBytes !== undefined ? Math.min(maxDataBytes, maxBytes - ENTRY_OVERHEAD_BYTES) : maxDataBytes
    return Effect.succeed<Service>({
      store: SessionStore.make(backend, { maxDataBytes: fitting, spans: options?.spans }),
      size: Effect.sync(() => cache.size)
    })
  })

/**
 * `layer` provides an LRU store as `SessionStore` and `LruStore`; it fails as `make` does on a refused option.
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<SessionStore.SessionStore | LruStore, StoreError.StoreConfigError> =>
  Layer.effectContext(
    Effect.map(make(options), (service) =>
      Context.make(LruStore, service).pipe(Context.add(SessionStore.SessionStore, service.store)))
  )
