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
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Binding from "./internal/binding.js"
import * as IndexService from "./internal/indexService.js"
import { type InProcessService, type JsonEntry, makeEntryBackend, sizeOf } from "./internal/memoryBackend.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as SessionData from "./SessionData.js"
import type { SessionId } from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import * as SessionStore from "./SessionStore.js"
import type * as StoreError from "./StoreError.js"

/**
 * What a memory store offers besides the `SessionStore` contract.
 *
 * @since 0.1.0
 */
export interface Service extends InProcessService, SessionStore.WithExpiredDeletion {
  /** The per-user index of this store. */
  readonly index: SessionIndex.Service
}

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

const SPAN = { kind: "internal", captureStackTrace: false } as const

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
    // The index: user key → ids of the sessions bound to that user, kept in the step that changes `entries`.
    const byUser = new Map<string, Set<string>>()
    const unfile = (id: string, entry: JsonEntry): void => {
      if (entry.user === undefined) return
      const ids = byUser.get(entry.user)
      if (ids === undefined) return
      ids.delete(id)
      if (ids.size === 0) byUser.delete(entry.user)
    }
    const drop = (id: string, entry: JsonEntry): void => {
      unfile(id, entry)
      entries.delete(id)
    }
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
        if (next.value[1].expiresAt <= now) drop(next.value[0], next.value[1])
      }
    }

    const backend = makeEntryBackend("MemoryStore", {
      get: (id) => entries.get(id),
      put: (id, entry, now) => {
        const old = entries.get(id)
        // Only a create adds an entry: let it examine a few others on the way.
        if (old === undefined) step(now)
        else unfile(id, old)
        entries.set(id, entry)
        if (entry.user !== undefined) {
          const ids = byUser.get(entry.user)
          if (ids === undefined) byUser.set(entry.user, new Set([id]))
          else ids.add(id)
        }
      },
      remove: (id) => {
        const old = entries.get(id)
        if (old !== undefined) drop(id, old)
      }
    }, { indexed: true })

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
              drop(next.value[0], next.value[1])
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

    // Each call runs in one synchronous step: atomic with respect to every write of the store.
    const index = IndexService.make("MemoryStore", { spans: options?.spans ?? true, span: SPAN }, {
      list: (userId, userKey, now) =>
        Effect.sync(() => {
          const out: Array<SessionIndex.Entry> = []
          for (const id of byUser.get(userKey) ?? []) {
            const entry = entries.get(id)!
            if (entry.expiresAt <= now) continue
            const data = SessionData.decode(entry.json)
            if (Either.isLeft(data)) continue
            const listed = Binding.entryOf(id as SessionId, data.right, entry.expiresAt, userId)
            if (listed !== undefined) out.push(listed)
          }
          return out
        }),
      revokeIds: (userKey, except, now) =>
        Effect.sync(() => {
          const revoked: Array<SessionId> = []
          for (const id of Array.from(byUser.get(userKey) ?? [])) {
            if (id === except) continue
            const entry = entries.get(id)!
            if (entry.expiresAt > now) revoked.push(id as SessionId)
            drop(id, entry)
          }
          return revoked
        })
    })

    return {
      store: SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans }),
      expiredDeletion,
      index,
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
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex | MemoryStore,
  StoreError.StoreConfigError
> =>
  Layer.scopedContext(
    Effect.map(
      make(options),
      (service) =>
        SessionStore.expiredDeletionContext(service).pipe(
          Context.add(SessionIndex.SessionIndex, service.index),
          Context.add(MemoryStore, service)
        )
    )
  )
