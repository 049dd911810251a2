/**
 * A cache store in front of a persistent store, itself a `SessionStore` (tower-sessions'
 * `CachingSessionStore`): typically an in-process `LruStore` over a SQL or Redis store shared by
 * many app instances, so that most loads never leave the process.
 *
 * - `load`: a fresh cache hit never touches the store. A miss, or an entry filled more than
 *   `maxStaleness` ago (default 5 seconds, by the `Clock`), reads the store and refills the cache.
 * - `create` / `save` go to the store first (the authority), then put the store's record (with the
 *   store's version) into the cache, so a later compare-and-set `save` through this layer carries
 *   the right version (after a `save`: one compare-and-set `save` on the cache, falling back to a
 *   delete and a create when the cache does not hold the previous version). Any failure of the store's `save` (`Conflict`, `Gone`, or another) evicts the entry.
 * - `delete` deletes from the store, then evicts. Once it returns, this instance never serves that
 *   session from its cache again, even when a `load` that read the store before the delete refills
 *   the cache after it.
 *
 * **Revocation latency.** Without a channel, another instance's `save` or `delete` is seen here only when the
 * entry goes stale: `maxStaleness` bounds how long this instance may serve a session that was changed or
 * revoked elsewhere. With one instance (or with `maxStaleness` 0) there is no such window. With an
 * `invalidation` channel (`RedisStore.layerInvalidation`, `SqlStore.layerInvalidation`) every write through
 * this layer is announced once the store has it, and the other instances' announcements evict their sessions
 * here at once (a load begun before an announcement never refills the old record); while the channel is
 * disconnected the cache is bypassed, and once it is back the cache starts empty. `maxStaleness` stays the
 * bound whatever happens to the channel.
 *
 * **A failing cache never serves stale data.** The layer keeps, beside the cache, the version, expiry
 * and read time of every entry it filled within `maxStaleness`, and serves a cached record only when it
 * matches them. A cache error on `load` falls through to the store; a cache error while filling or
 * evicting drops that bookkeeping, so the next `load` reads the store. Cache errors never fail a call:
 * they are logged at debug level (reason and method only) and the store answers. Store errors are the
 * caller's errors. A session the cache refuses (say, larger than an `LruStore`'s `maxBytes`) is simply
 * read from the store every time.
 *
 * The result provides everything the `store` layer provides, with its `SessionStore` replaced by the
 * caching one, and its `SessionIndex` (when it has one) wrapped so that what a revoke deleted is evicted from
 * this instance's cache before the revoke returns; of the `cache` layer only its `SessionStore` is used. A passed-through `ExpiredDeletion`
 * (SQL, memory) makes the cache forget its entries after each run (one store read per active session
 * per run), so a record it removed is never served from the cache.
 *
 * @example
 * ```ts
 * import { CachingStore, LruStore, MemoryStore } from "effect-sessions"
 *
 * // `MemoryStore.layer()` stands in for a shared store, e.g. `SqlStore.layer(...)`
 * const layer = CachingStore.layer({
 *   cache: LruStore.layer({ maxEntries: 50_000 }),
 *   store: MemoryStore.layer(),
 *   maxStaleness: "5 seconds"
 * }) // Layer<SessionStore | ExpiredDeletion | MemoryStore>
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as OptionChecks from "./internal/optionChecks.js"
import { builtInTracer, withAppSpan } from "./internal/tracing.js"
import * as Invalidation from "./Invalidation.js"
import type { SessionId } from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import type * as SessionRecord from "./SessionRecord.js"
import * as SessionStore from "./SessionStore.js"
import type * as StoreError from "./StoreError.js"

/**
 * The default `maxStaleness`: 5 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_STALENESS: Duration.Duration = Duration.seconds(5)

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface MakeOptions {
  /** The cache, e.g. an `LruStore`. */
  readonly cache: SessionStore.Service
  /** The persistent store, the authority. */
  readonly store: SessionStore.Service
  /**
   * How long a cached entry is served without reading the store. Default 5 seconds.
   * Warning: this is how long this instance may serve a session another instance changed or revoked.
   * It should be finite: the layer keeps a few bytes per entry filled within the last `maxStaleness`.
   */
  readonly maxStaleness?: Duration.DurationInput | undefined
  /** Wrap each operation in a span (`CachingStore.load` etc.). Default `true`. */
  readonly spans?: boolean | undefined
}

/**
 * Options of `layer`: `make`'s options with layers for the cache and the store.
 *
 * @since 0.1.0
 */
export interface Options<ROut, E1, R1, E2, R2, E3 = never, R3 = never> extends Omit<MakeOptions, "cache" | "store"> {
  /** A layer providing the cache as `SessionStore`, e.g. `LruStore.layer()`. */
  readonly cache: Layer.Layer<SessionStore.SessionStore, E1, R1>
  /** A layer providing the persistent store as `SessionStore`; whatever else it provides passes through. */
  readonly store: Layer.Layer<ROut | SessionStore.SessionStore, E2, R2>
  /**
   * An invalidation channel shared with the other instances, e.g. `RedisStore.layerInvalidation()` or
   * `SqlStore.layerInvalidation()`: every write through this layer is announced once the store has it, and the
   * other instances' announcements evict their sessions here. While the channel is disconnected the cache is
   * bypassed. Default: none (other instances' writes are seen within `maxStaleness`).
   */
  readonly invalidation?: Layer.Layer<Invalidation.Invalidation, E3, R3> | undefined
}

/** What the layer knows of an entry it filled: the record's version and expiry, and when the store was read. */
interface Filled {
  readonly version: number
  readonly expiresAt: number
  readonly readAt: number
}

/** Operations in flight on one id; any write bumps `generation`, so a fill begun before it is not trusted. */
interface Flight {
  generation: number
  users: number
}

interface Ticket {
  readonly flight: Flight
  readonly generation: number
}

const logCacheError = (error: StoreError.StoreError): Effect.Effect<void> =>
  Effect.logDebug("effect-sessions: CachingStore cache call failed; the store answers").pipe(
    Effect.annotateLogs({ reason: error.reason, method: error.method })
  )

interface Instance {
  readonly service: SessionStore.Service
  /** Stops serving every entry from the cache until it is filled again. */
  readonly forgetAll: () => void
  /** Applies an event of the invalidation channel. */
  readonly onEvent: (event: Invalidation.Event) => void
  /**
   * After sessions were removed or changed in the store by other means than this layer's methods (a revocation):
   * stops serving them here and announces them to the other instances.
   */
  readonly invalidated: (ids: ReadonlyArray<SessionId>) => Effect.Effect<void>
  /** After `deleteExpired` removed `count` records: forgets every entry here, and elsewhere when it removed any. */
  readonly deletedExpired: (count: number) => Effect.Effect<void>
}

/** Refuses a `maxStaleness` that is not a duration or is infinite (the layer keeps an entry per fill within it). */
const checkOptions = (options: { readonly maxStaleness?: Duration.DurationInput | undefined }) =>
  OptionChecks.check([OptionChecks.duration("CachingStore", "maxStaleness", options.maxStaleness, { zero: true })])

/** Builds the caching service; `options` must have passed `checkOptions`. */
const makeInstance = (options: MakeOptions, channel?: Invalidation.Service): Effect.Effect<Instance> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const maxStaleness = Duration.toMillis(Duration.decode(options.maxStaleness ?? DEFAULT_MAX_STALENESS))
    const { cache, store } = options
    const withSpans = options.spans ?? true

    // Entries filled within `maxStaleness`, oldest first (re-filling moves an id to the end).
    const filled = new Map<SessionId, Filled>()
    const flights = new Map<SessionId, Flight>()
    // Without a channel the cache is trusted within maxStaleness; with one, only while it is connected.
    let vouched = channel === undefined
    const announce = (ids: ReadonlyArray<SessionId>): Effect.Effect<void> =>
      channel === undefined ? Effect.void : channel.announce(ids)
    const runFork = Runtime.runFork(runtime)

    const prune = (now: number): void => {
      for (const [id, entry] of filled) {
        if (now - entry.readAt < maxStaleness) return
        filled.delete(id)
      }
    }

    /** Stops serving `id` from the cache and voids every fill in flight for it. */
    const invalidate = (id: SessionId): void => {
      filled.delete(id)
      const flight = flights.get(id)
      if (flight !== undefined) flight.generation++
    }

    const withTicket = <A, E>(id: SessionId, use: (ticket: Ticket) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.acquireUseRelease(
        Effect.sync((): Ticket => {
          let flight = flights.get(id)
          if (flight === undefined) {
            flight = { generation: 0, users: 0 }
            flights.set(id, flight)
          }
          flight.users++
          return { flight, generation: flight.generation }
        }),
        use,
        (ticket) =>
          Effect.sync(() => {
            ticket.flight.users--
            if (ticket.flight.users === 0 && flights.get(id) === ticket.flight) flights.delete(id)
          })
      )

    /** Replaces whatever the cache holds for the record's id with the record. */
    const replace = (record: SessionRecord.SessionRecord): Effect.Effect<unknown, StoreError.StoreError> =>
      Effect.zipRight(cache.delete(record.id), cache.create(record))

    /**
     * Puts the store's record into the cache: after a store `save` from `previous`, one compare-and-set `save` on
     * the cache (which holds `previous` when it was filled by the last write), else a delete and a create.
     */
    const put = (
      record: SessionRecord.SessionRecord,
      previous: number | undefined
    ): Effect.Effect<unknown, StoreError.StoreError> =>
      previous === undefined
        ? replace(record)
        : cache.save({ id: record.id, data: record.data, expiresAt: record.expiresAt, version: previous }).pipe(
          Effect.matchEffect({
            onFailure: () => replace(record),
            onSuccess: (cached) => (cached.version === record.version ? Effect.void : replace(record))
          })
        )

    /** Puts the store's record into the cache; trusted only if no write on its id happened since the ticket. */
    const fill = (
      record: SessionRecord.SessionRecord,
      ticket: Ticket,
      readAt: number,
      previous?: number
    ): Effect.Effect<void> =>
      put(record, previous).pipe(
        Effect.matchEffect({
          onFailure: (error) => Effect.zipRight(Effect.sync(() => filled.delete(record.id)), logCacheError(error)),
          onSuccess: () =>
            Effect.sync(() => {
              filled.delete(record.id)
              if (!vouched || ticket.flight.generation !== ticket.generation) return
              filled.set(record.id, { version: record.version, expiresAt: record.expiresAt, readAt })
              prune(readAt)
            })
        })
      )

    /** Stops serving `id` and removes it from the cache; a cache error is logged, never returned. */
    const evict = (id: SessionId): Effect.Effect<void> =>
      Effect.zipRight(
        Effect.sync(() => invalidate(id)),
        Effect.catchAll(cache.delete(id), logCacheError)
      )

    const span = <A, E>(method: string, self: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      withSpans ? withAppSpan(self, `CachingStore.${method}`, { captureStackTrace: false }) : self

    const loadFromStore = (
      id: SessionId
    ): Effect.Effect<Option.Option<SessionRecord.SessionRecord>, StoreError.StoreError> =>
      withTicket(id, (ticket) =>
        Effect.flatMap(Clock.currentTimeMillis, (readAt) =>
          Effect.flatMap(
            store.load(id),
            (found): Effect.Effect<Option.Option<SessionRecord.SessionRecord>> =>
              Option.isSome(found) ? Effect.as(fill(found.value, ticket, readAt), found) : Effect.succeed(found)
          )))

    // Only on this layer's own span: none is made under Effect's built-in tracer.
    const annotations = {
      hit: Effect.annotateCurrentSpan("effect_sessions.cache", "hit"),
      miss: Effect.annotateCurrentSpan("effect_sessions.cache", "miss"),
      stale: Effect.annotateCurrentSpan("effect_sessions.cache", "stale")
    }
    const annotate = (outcome: "hit" | "miss" | "stale"): Effect.Effect<void> =>
      withSpans
        ? Effect.flatMap(Effect.tracer, (tracer) => (tracer === builtInTracer ? Effect.void : annotations[outcome]))
        : Effect.void

    const load = (id: SessionId): Effect.Effect<Option.Option<SessionRecord.SessionRecord>, StoreError.StoreError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = vouched ? filled.get(id) : undefined
        if (entry === undefined) return Effect.zipRight(annotate("miss"), loadFromStore(id))
        // a clock that went back is no reason to trust an entry longer
        if (now - entry.readAt >= maxStaleness || now < entry.readAt) {
          return Effect.zipRight(annotate("stale"), loadFromStore(id))
        }
        return cache.load(id).pipe(
          Effect.matchEffect({
            onFailure: (error) => Effect.zipRight(logCacheError(error), loadFromStore(id)),
            onSuccess: (found): Effect.Effect<Option.Option<SessionRecord.SessionRecord>, StoreError.StoreError> =>
              Option.isSome(found) && filled.get(id) === entry && found.value.version === entry.version &&
                found.value.expiresAt === entry.expiresAt
                ? Effect.as(annotate("hit"), found)
                : Effect.zipRight(annotate("miss"), loadFromStore(id))
          })
        )
      })

    /** A write: invalidate, call the store, then fill the cache with its answer, or evict on failure. */
    const write = (
      record: SessionRecord.SessionRecord,
      call: (record: SessionRecord.SessionRecord) => Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError>,
      previous: number | undefined
    ): Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError> =>
      Effect.suspend(() => {
        invalidate(record.id)
        return withTicket(record.id, (ticket) =>
          Effect.flatMap(Clock.currentTimeMillis, (readAt) =>
            call(record).pipe(
              Effect.tapError(() => evict(record.id)),
              Effect.tap((written) => fill(written, ticket, readAt, previous)),
              Effect.tap((written) => announce([written.id]))
            )))
      })

    const service = SessionStore.SessionStore.of({
      create: (record) => span("create", write(record, store.create, undefined)),
      save: (record) => span("save", write(record, store.save, record.version)),
      load: (id) => span("load", load(id)),
      delete: (id) =>
        span(
          "delete",
          Effect.suspend(() => {
            invalidate(id)
            return Effect.zipRight(Effect.ensuring(store.delete(id), evict(id)), announce([id]))
          })
        )
    })
    const forgetAll = (): void => {
      filled.clear()
      for (const flight of flights.values()) flight.generation++
    }
    return Effect.succeed<Instance>({
      service,
      forgetAll,
      onEvent: (event) => {
        switch (event._tag) {
          case "Invalidated": {
            for (const id of event.ids) {
              const held = filled.has(id)
              invalidate(id)
              // only the bookkeeping decides what is served; the cache's copy is removed for its memory
              if (held) runFork(Effect.catchAll(cache.delete(id), logCacheError))
            }
            return
          }
          case "InvalidatedAll":
            return forgetAll()
          case "Connected":
          case "Disconnected":
            vouched = event._tag === "Connected"
            return forgetAll()
        }
      },
      invalidated: (ids) => Effect.zipRight(Effect.forEach(ids, evict, { discard: true }), announce(ids)),
      deletedExpired: (count) =>
        Effect.suspend(() => {
          forgetAll()
          return count > 0 && channel !== undefined ? channel.announceAll : Effect.void
        })
    })
  })

/**
 * `make` builds the caching service over two store services; it fails with `StoreConfigError`
 * (`InvalidOption`) when `maxStaleness` is not a duration or is infinite.
 *
 * @since 0.1.0
 */
export const make = (options: MakeOptions): Effect.Effect<SessionStore.Service, StoreError.StoreConfigError> =>
  Effect.zipRight(checkOptions(options), Effect.map(makeInstance(options), (instance) => instance.service))

/**
 * `layer` builds `cache` and `store` and provides what `store` provides, with its `SessionStore` replaced by
 * the caching one. A passed-through `ExpiredDeletion` (of a SQL or memory store) also stops serving every
 * cached entry after each run, so a record it removed is never served from the cache. With `invalidation`, the
 * layer announces its writes (and runs of `deleteExpired` that removed records) on the channel and applies the
 * other instances' announcements; building it fails as the channel's layer does. It fails as `make` does on a
 * refused option, before it builds any layer.
 *
 * @since 0.1.0
 */
export const layer = <ROut, E1 = never, R1 = never, E2 = never, R2 = never, E3 = never, R3 = never>(
  options: Options<ROut, E1, R1, E2, R2, E3, R3>
): Layer.Layer<ROut | SessionStore.SessionStore, E1 | E2 | E3 | StoreError.StoreConfigError, R1 | R2 | R3> =>
  Layer.unwrapEffect(Effect.as(checkOptions(options), layerChecked(options)))

const layerChecked = <ROut, E1, R1, E2, R2, E3, R3>(
  options: Options<ROut, E1, R1, E2, R2, E3, R3>
): Layer.Layer<ROut | SessionStore.SessionStore, E1 | E2 | E3, R1 | R2 | R3> =>
  Layer.flatMap(options.store, (storeContext) =>
    Layer.flatMap(options.cache, (cacheContext) => {
      const build = (channel: Invalidation.Service | undefined) =>
        Layer.scopedContext(Effect.map(
          Effect.tap(
            makeInstance({
              cache: Context.get(cacheContext, SessionStore.SessionStore),
              store: Context.get(storeContext, SessionStore.SessionStore),
              maxStaleness: options.maxStaleness,
              spans: options.spans
            }, channel),
            (instance): Effect.Effect<void, never, Scope.Scope> =>
              channel === undefined ? Effect.void : channel.subscribe(instance.onEvent)
          ),
          (instance) => {
            let context = Context.add(storeContext, SessionStore.SessionStore, instance.service)
            const index = Context.getOption(storeContext, SessionIndex.SessionIndex)
            if (Option.isSome(index)) {
              // The ids a revoke deleted are evicted here before it returns (a load that read one before the
              // delete and fills the cache after it is not trusted) and announced to the other instances.
              const revokeIds: SessionIndex.Service["revokeIds"] = (userId, revokeOptions) =>
                Effect.tap(index.value.revokeIds(userId, revokeOptions), instance.invalidated)
              context = Context.add(
                context,
                SessionIndex.SessionIndex,
                SessionIndex.make({ list: index.value.list, revokeIds })
              )
            }
            const deletion = Context.getOption(storeContext, SessionStore.ExpiredDeletion)
            if (Option.isNone(deletion)) return context
            return Context.add(
              context,
              SessionStore.ExpiredDeletion,
              SessionStore.ExpiredDeletion.of({
                deleteExpired: (deleteOptions) =>
                  Effect.ensuring(
                    Effect.tap(deletion.value.deleteExpired(deleteOptions), instance.deletedExpired),
                    Effect.sync(instance.forgetAll)
                  )
              })
            )
          }
        ))
      return options.invalidation === undefined
        ? build(undefined)
        : Layer.flatMap(options.invalidation, (channel) => build(Context.get(channel, Invalidation.Invalidation)))
    }))
