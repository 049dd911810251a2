/**
 * The session store contract, as a service.
 *
 * - `create(record)` inserts the record as given if no live record has its id
 *   (an expired one may be replaced), atomically; otherwise it fails with
 *   `Collision` and writes nothing. Never an overwrite.
 * - `save(record)` is a compare-and-set: it succeeds only if a live record is
 *   stored with `version === record.version`, stores the record with
 *   `version + 1` and returns it. Another version: `Conflict`. No live record:
 *   `Gone`. Either way nothing is written; `save` never inserts.
 * - `load(id)` succeeds with `Option.none()` for a missing or expired record.
 *   Expiry is judged by the application's `Clock`.
 * - `delete(id)` is idempotent.
 *
 * Every failure is a `StoreError`. A backend is written as a `Backend` and
 * turned into the service by `make`, which applies the session data rules
 * (an `Encode` error before the backend is called), filters expired records by
 * the `Clock`, and adds spans.
 *
 * @example
 * ```ts
 * import { MemoryStore, SessionStore } from "effect-sessions"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* SessionStore.SessionStore
 *   // store.create / store.save / store.load / store.delete
 * }).pipe(Effect.provide(MemoryStore.layer()))
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
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { withClockAndSpan } from "./internal/tracing.js"
import * as SessionData from "./SessionData.js"
import type { SessionId } from "./SessionId.js"
import * as SessionRecord from "./SessionRecord.js"
import * as StoreError from "./StoreError.js"

/**
 * The service a store provides.
 *
 * @since 0.1.0
 */
export interface Service {
  /** `create` inserts the record as given, or fails with `Collision` when a live record has its id. */
  readonly create: (
    record: SessionRecord.SessionRecord
  ) => Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError>
  /** `save` stores the record with `version + 1` if the live stored version equals `record.version`; else `Conflict` or `Gone`. */
  readonly save: (
    record: SessionRecord.SessionRecord
  ) => Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError>
  /** `load` succeeds with `Option.none()` when the session does not exist or has expired. */
  readonly load: (id: SessionId) => Effect.Effect<Option.Option<SessionRecord.SessionRecord>, StoreError.StoreError>
  /** `delete` removes the session; deleting a missing session succeeds. */
  readonly delete: (id: SessionId) => Effect.Effect<void, StoreError.StoreError>
}

/**
 * The session store.
 *
 * @since 0.1.0
 */
export class SessionStore extends Context.Tag("effect-sessions/SessionStore")<SessionStore, Service>() {}

/**
 * What a backend implements; `make` turns it into a `SessionStore` service.
 * Each method receives `now` (epoch ms, read from the `Clock`) and, for writes, the data already
 * checked and encoded as JSON text.
 *
 * @since 0.1.0
 */
export interface Backend {
  /** Name used for spans, e.g. `"MemoryStore"`. */
  readonly name: string
  /** OpenTelemetry `db.system.name`, e.g. `"postgresql"`, when there is a database. */
  readonly system?: string | undefined
  readonly create: (
    record: SessionRecord.SessionRecord,
    json: string,
    now: number
  ) => Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError>
  readonly save: (
    record: SessionRecord.SessionRecord,
    json: string,
    now: number
  ) => Effect.Effect<SessionRecord.SessionRecord, StoreError.StoreError>
  readonly load: (
    id: SessionId,
    now: number
  ) => Effect.Effect<Option.Option<SessionRecord.SessionRecord>, StoreError.StoreError>
  readonly delete: (id: SessionId, now: number) => Effect.Effect<void, StoreError.StoreError>
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface MakeOptions {
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /**
   * Wrap each operation in a span when the app has installed a tracer (Effect's built-in tracer exports
   * nothing, so no span is made for it). Default `true`.
   */
  readonly spans?: boolean | undefined
}

const checkNumbers = (record: SessionRecord.SessionRecord): string | undefined => {
  if (!Number.isSafeInteger(record.expiresAt)) return "expiresAt is not an integer"
  if (!Number.isSafeInteger(record.version) || record.version < 1) return "version is not a positive integer"
  return undefined
}

/**
 * `encodeRecord` applies the session data rules and the size cap, failing with `Encode` (method as given).
 *
 * @since 0.1.0
 */
export const encodeRecord = (
  record: SessionRecord.SessionRecord,
  method: StoreError.Method,
  maxDataBytes: number = SessionData.DEFAULT_MAX_BYTES
): Effect.Effect<string, StoreError.StoreError> => {
  const bad = checkNumbers(record)
  if (bad !== undefined) return Effect.fail(StoreError.rule("Encode", method, bad))
  const encoded = SessionData.encode(record.data, maxDataBytes)
  return Either.isRight(encoded)
    ? Effect.succeed(encoded.right)
    : Effect.fail(StoreError.rule("Encode", method, encoded.left))
}

/**
 * `make` builds the service from a backend: writes are checked against the data rules before the backend
 * is called, `load` never returns a record expired by the `Clock`, and every operation gets a span (`<name>.<method>`,
 * with `db.system.name`) whenever the app has installed a tracer.
 *
 * @since 0.1.0
 */
export const make = (backend: Backend, options?: MakeOptions): Service => {
  const maxDataBytes = options?.maxDataBytes ?? SessionData.DEFAULT_MAX_BYTES
  const withSpans = options?.spans ?? true
  const attributes = backend.system !== undefined ? { "db.system.name": backend.system } : {}
  // Spans only under an app's tracer: Effect's built-in tracer exports nothing, so its spans are CPU for no reader.
  const spanOptions = { kind: "client", attributes, captureStackTrace: false } as const
  const names = {
    create: `${backend.name}.create`,
    save: `${backend.name}.save`,
    load: `${backend.name}.load`,
    delete: `${backend.name}.delete`
  }
  const op = <A>(
    method: keyof typeof names,
    body: (now: number) => Effect.Effect<A, StoreError.StoreError>
  ): Effect.Effect<A, StoreError.StoreError> => withClockAndSpan(body, withSpans, names[method], spanOptions)

  return SessionStore.of({
    create: (record) =>
      op(
        "create",
        (now) =>
          Effect.flatMap(encodeRecord(record, "create", maxDataBytes), (json) => backend.create(record, json, now))
      ),
    save: (record) =>
      op(
        "save",
        (now) => Effect.flatMap(encodeRecord(record, "save", maxDataBytes), (json) => backend.save(record, json, now))
      ),
    load: (id) =>
      op(
        "load",
        (now) =>
          Effect.map(backend.load(id, now), (found) =>
            Option.isSome(found) && SessionRecord.isExpired(found.value, now) ? Option.none() : found)
      ),
    delete: (id) => op("delete", (now) => backend.delete(id, now))
  })
}

/**
 * Removal of expired records, provided by every store that keeps them until someone removes them
 * (Memory, SQL, Mongo).
 *
 * @since 0.1.0
 */
export class ExpiredDeletion extends Context.Tag("effect-sessions/ExpiredDeletion")<ExpiredDeletion, {
  /** `deleteExpired` removes every record expired by the `Clock`, in bounded batches, and succeeds with the count. */
  readonly deleteExpired: (options?: {
    /** Records per batch (per statement). Default 1,000. */
    readonly batchSize?: number | undefined
  }) => Effect.Effect<number, StoreError.StoreError>
}>() {}

/**
 * A store that keeps expired records until someone removes them (Memory, SQL, Mongo): its `SessionStore`
 * service and its `ExpiredDeletion`, as its `make` builds them.
 *
 * @since 0.1.0
 */
export interface WithExpiredDeletion {
  /** The `SessionStore` service of this store. */
  readonly store: Service
  /** The `ExpiredDeletion` service of this store. */
  readonly expiredDeletion: Context.Tag.Service<ExpiredDeletion>
}

/**
 * `expiredDeletionContext(stores)` is what a layer of such a store provides: its `SessionStore` and its
 * `ExpiredDeletion`.
 *
 * @since 0.1.0
 */
export const expiredDeletionContext = (stores: WithExpiredDeletion): Context.Context<SessionStore | ExpiredDeletion> =>
  Context.make(SessionStore, stores.store).pipe(Context.add(ExpiredDeletion, stores.expiredDeletion))

/**
 * `expiredDeletionInBatches(batch)` is an `ExpiredDeletion` whose `deleteExpired` runs `batch(limit, now)`
 * through `deleteInBatches`; `batch` removes at most `limit` records expired at `now` and succeeds with the count.
 *
 * @since 0.1.0
 */
export const expiredDeletionInBatches = (
  batch: (limit: number, now: number) => Effect.Effect<number, StoreError.StoreError>
): Context.Tag.Service<ExpiredDeletion> =>
  ExpiredDeletion.of({ deleteExpired: (options) => deleteInBatches(batch, options?.batchSize) })

/**
 * The default batch size of `deleteExpired`.
 *
 * @since 0.1.0
 */
export const DEFAULT_BATCH_SIZE = 1_000

/**
 * `deleteInBatches` runs `batch(limit, now)` until a batch removes fewer than `limit` records and sums the counts.
 * `now` is read once from the `Clock`, so records expiring during the run wait for the next one.
 *
 * @since 0.1.0
 */
export const deleteInBatches = <R>(
  batch: (limit: number, now: number) => Effect.Effect<number, StoreError.StoreError, R>,
  batchSize: number | undefined
): Effect.Effect<number, StoreError.StoreError, R> => {
  const limit = Math.max(1, Math.floor(batchSize ?? DEFAULT_BATCH_SIZE))
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const loop = (total: number): Effect.Effect<number, StoreError.StoreError, R> =>
      Effect.flatMap(batch(limit, now), (n) => (n < limit ? Effect.succeed(total + n) : loop(total + n)))
    return loop(0)
  })
}

/**
 * Options of the background cleanup layer.
 *
 * @since 0.1.0
 */
export interface ExpiredDeletionOptions {
  /** Time between runs. Default 60 seconds. Ignored when `schedule` is given. */
  readonly interval?: Duration.DurationInput | undefined
  /** A custom schedule for the runs. */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** Records per batch. Default 1,000. */
  readonly batchSize?: number | undefined
}

/**
 * `layerExpiredDeletion` runs `deleteExpired` in the background on a schedule for as long as the layer lives.
 * A failed run is logged (reason and method only) and the schedule goes on.
 *
 * @since 0.1.0
 */
export const layerExpiredDeletion = (
  options?: ExpiredDeletionOptions
): Layer.Layer<never, never, ExpiredDeletion> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const deletion = yield* ExpiredDeletion
      const schedule = options?.schedule ?? Schedule.spaced(options?.interval ?? Duration.seconds(60))
      const run = deletion.deleteExpired({ batchSize: options?.batchSize }).pipe(
        Effect.tap((n) =>
          Effect.logDebug("effect-sessions: expired sessions deleted").pipe(Effect.annotateLogs("count", n))
        ),
        Effect.catchAll((error) =>
          Effect.logWarning("effect-sessions: expired session cleanup failed").pipe(
            Effect.annotateLogs({ reason: error.reason, method: error.method })
          )
        ),
        Effect.catchAllDefect(() => Effect.logError("effect-sessions: expired session cleanup died"))
      )
      yield* Effect.forkScoped(Effect.repeat(run, schedule))
    })
  )
