/**
 * An in-process session store on a `Map`: for development, tests and single-instance apps.
 * Sessions live as long as the process; they are not shared between instances.
 *
 * Each entry holds the session's JSON text (never the caller's object), its `expiresAt` and its
 * `version`, so a caller's later mutation never leaks into the store and memory follows the JSON size.
 * Expired entries are removed on their own: a background fiber sweeps the map on a schedule (every
 * 60 seconds by default, in bounded batches, for as long as the layer's scope lives), and each `create`
 * examines a couple of entries as it goes. `load` never returns an expired record, swept or not.
 *
 * @example
 * ```ts
 * import { MemoryStore, SessionData, SessionId, SessionStore, SessionToken } from "effect-sessions"
 * import { Clock, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* SessionStore.SessionStore
 *   const id = SessionId.fromToken(SessionToken.unsafeGenerate())
 *   const now = yield* Clock.currentTimeMillis
 *   yield* store.create({ id, data: SessionData.fromEntries([["user", "ada"]]), expiresAt: now + 60_000, version: 1 })
 *   const found = yield* store.load(id) // Option.some(record)
 *   const held = yield* MemoryStore.size // entries held, expired ones not yet swept included
 * })
 *
 * program.pipe(Effect.provide(MemoryStore.layer({ sweepInterval: "1 minute" })))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type InProcessService, type JsonEntry, makeEntryBackend, sizeOf } from "./internal/memoryBackend.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as SessionStore from "./SessionStore.js"
import type * as StoreError from "./StoreError.js"

/**
 * What a memory store offers besides the `SessionStore` contract.
 *
 * @since 0.1.0
 */
export interface Service extends InProcessService, SessionStore.WithExpiredDeletion {}

/**
 * The memory store's own service, provided by `layer` beside `SessionStore` and `ExpiredDeletion`.
 *
 * @since 0.1.0
 */
export class MemoryStore extends Context.Tag("effect-sessions/MemoryStore")<MemoryStore, Service>() {}

/**
 * `size` succeeds with the number of entries the provided memory store holds, expired ones not yet swept included.
 *
 * @since 0.1.0
 */
export const size: Effect.Effect<number, never, MemoryStore> = sizeOf(MemoryStore)

/**
 * Options of `make` and `layer`.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /** Time between background sweeps of expired entries. Default 60 seconds. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** Entries examined per step of a sweep before yielding to other fibers. Default 1,000. */
  readonly batchSize?: number | undefined
  /** Wrap each operation in a span. Default `true`. */
  readonly spans?: boolean | undefined
}

/** Entries a `create` examines for expiry, so a busy store sheds expired entries between sweeps. */
const CREATE_SWEEP_STEPS = 2

/**
 * `make` builds a memory store whose background sweep runs for as long as the scope lives; it fails with
 * `StoreConfigError` (`InvalidOption`) when `maxDataBytes` or `batchSize` is not a positive integer or
 * `sweepInterval` is not a positive duration.
 *
 * @since 0.1.0
 */
export const make = (options?: Options): Effect.Effect<Service, StoreError.StoreConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* OptionChecks.check([
      OptionChecks.positiveInteger("MemoryStore", "maxDataBytes", options?.maxDataBytes),
      OptionChecks.positiveInteger("MemoryStore", "batchSize", options?.batchSize),
      OptionChecks.duration("MemoryStore", "sweepInterval", options?.sweepInterval, { infinite: true })
    ])
    const entries = new Map<string, JsonEntry>()
    const defaultBatch = Math.max(1, Math.floor(options?.batchSize ?? SessionStore.DEFAULT_BATCH_SIZE))

    // Amortized sweep: a cursor that walks the map a few entries per `create`, wrapping around.
    let cursor: Iterator<[string, JsonEntry]> | undefined
    const step = (now: number): void => {
      for (let i = 0; i < CREATE_SWEEP_STEPS; i++) {
        cursor ??= entries.entries()
        const next = cursor.next()
        if (next.done === true) {
          cursor = undefined
          return
        }
        if (next.value[1].expiresAt <= now) entries.delete(next.value[0])
      }
    }

    const backend = makeEntryBackend("MemoryStore", {
      get: (id) => entries.get(id),
      put: (id, entry, now) => {
        // Only a create adds an entry: let it examine a few others on the way.
        if (!entries.has(id)) step(now)
        entries.set(id, entry)
      },
      remove: (id) => {
        entries.delete(id)
      }
    })

    // One pass over the map, `limit` entries per synchronous step, yielding between steps.
    const sweep = (limit: number, now: number): Effect.Effect<number> =>
      Effect.suspend(() => {
        const it = entries.entries()
        let removed = 0
        const loop: Effect.Effect<number> = Effect.suspend(() => {
          for (let i = 0; i < limit; i++) {
            const next = it.next()
            if (next.done === true) return Effect.succeed(removed)
            if (next.value[1].expiresAt <= now) {
              entries.delete(next.value[0])
              removed++
            }
          }
          return Effect.zipRight(Effect.yieldNow(), loop)
        })
        return loop
      })

    const expiredDeletion = SessionStore.ExpiredDeletion.of({
      deleteExpired: (deleteOptions) =>
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) =>
            sweep(
              deleteOptions?.batchSize !== undefined ? Math.max(1, Math.floor(deleteOptions.batchSize)) : defaultBatch,
              now
            )
        )
    })

    const interval = options?.sweepInterval ?? Duration.seconds(60)
    yield* Effect.forkScoped(Effect.forever(Effect.delay(expiredDeletion.deleteExpired(), interval)))

    return {
      store: SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans }),
      expiredDeletion,
      size: Effect.sync(() => entries.size)
    }
  })

/**
 * `layer` provides a memory store as `SessionStore`, `ExpiredDeletion` and `MemoryStore`; its background sweep
 * lives as long as the layer. It fails as `make` does on a refused option.
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<SessionStore.SessionStore | SessionStore.ExpiredDeletion | MemoryStore, StoreError.StoreConfigError> =>
  Layer.scopedContext(
    Effect.map(
      make(options),
      (service) => Context.add(SessionStore.expiredDeletionContext(service), MemoryStore, service)
    )
  )
