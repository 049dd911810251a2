/**
 * A session store on MongoDB through the official `mongodb` driver.
 *
 * One document per session in a collection (default `sessions`): `{ _id, data, expiresAt, version }`, with
 * `data` the session's JSON text and `expiresAt` a date. `migrate` (run by the layers unless turned off)
 * creates a TTL index on `expiresAt` that lets the server remove a document a grace period after it expired;
 * the app's `Clock` judges expiry before that, so `load` never returns an expired session, and `create` may
 * replace one. `create` is one upsert that only matches an expired document: a live one makes it a duplicate
 * key, which is `Collision`. `save` is a compare-and-set on the version (`Conflict` / `Gone`). The server's TTL
 * monitor runs about once a minute, so the store also provides `ExpiredDeletion` for a prompt cleanup.
 *
 * The store provides `SessionIndex`: a bound session's document also holds `userKey` (the digest of
 * `SessionIndex.userKey`, never the user id), written in the same update as the data, and `migrate` creates a
 * partial index on `{ userKey, expiresAt }`; `list` is one find on it, `revoke` finds the user's live ids and
 * deletes those that still name the user.
 *
 * Note: the contract suite runs against MongoStore only where `MONGODB_URL` names a MongoDB server.
 *
 * @example
 * ```ts
 * import { MongoStore } from "effect-sessions/MongoStore"
 * import { Config } from "effect"
 *
 * const StoreLive = MongoStore.layerConfig({
 *   url: Config.redacted("MONGODB_URL"),
 *   database: Config.string("MONGODB_DATABASE")
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { type Collection, type Db, MongoClient } from "mongodb"
import * as Binding from "./internal/binding.js"
import * as IndexService from "./internal/indexService.js"
import * as Internal from "./internal/mongo.js"
import * as OptionChecks from "./internal/optionChecks.js"
import type { SessionId } from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import type * as SessionRecord from "./SessionRecord.js"
import * as SessionStore from "./SessionStore.js"
import * as StoreError from "./StoreError.js"

/**
 * Options that shape the store over any database handle.
 *
 * @since 0.1.0
 */
export interface StoreOptions {
  /** The collection. Default `"sessions"`. */
  readonly collection?: string | undefined
  /**
   * How long after its `expiresAt` the server's TTL monitor may remove a document. Default 10 minutes.
   * Warning: keep it above any clock skew between the app and the database, or the server may remove
   * sessions the app still considers live.
   */
  readonly ttlGrace?: Duration.DurationInput | undefined
  /** Create (or adjust) the TTL index when the layer is built. Default `true`. */
  readonly migrate?: boolean | undefined
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /** Wrap each operation in a span. Default `true`. */
  readonly spans?: boolean | undefined
}

/**
 * Options of `layer`: the store opens (and closes) its own client.
 *
 * @since 0.1.0
 */
export interface Options extends StoreOptions {
  /** `mongodb://` or `mongodb+srv://` connection string. Redacted: it may carry a password. */
  readonly url: Redacted.Redacted
  /** The database. Default: the one named in the URL, else the driver's default. */
  readonly database?: string | undefined
  /** How long to wait for a usable server before an operation fails with `Unavailable`. Default 5 seconds. */
  readonly serverSelectionTimeout?: Duration.DurationInput | undefined
  /** How long a connection may stay silent during an operation before it fails. Default 10 seconds. */
  readonly socketTimeout?: Duration.DurationInput | undefined
}

/**
 * The default collection name.
 *
 * @since 0.1.0
 */
export const DEFAULT_COLLECTION = "sessions"

/**
 * The default grace of the TTL index: 10 minutes.
 *
 * @since 0.1.0
 */
export const DEFAULT_TTL_GRACE: Duration.Duration = Duration.minutes(10)

/**
 * What `make` builds: the store, its `ExpiredDeletion` and its per-user index.
 *
 * @since 0.1.0
 */
export interface Service extends SessionStore.WithExpiredDeletion {
  /** The per-user index of this store (since 0.3.0). */
  readonly index: SessionIndex.Service
}

const run = <A>(method: StoreError.Method, evaluate: () => Promise<A>): Effect.Effect<A, StoreError.StoreError> =>
  Effect.tryPromise({ try: evaluate, catch: (error) => Internal.toStoreError(method, error) })

const fromEither = <A>(
  method: StoreError.Method,
  reason: "Encode" | "Decode",
  either: Either.Either<A, string>
): Effect.Effect<A, StoreError.StoreError> =>
  Either.isRight(either) ? Effect.succeed(either.right) : Effect.fail(StoreError.rule(reason, method, either.left))

/** Ids a revoke finds and deletes per round trip. */
const REVOKE_BATCH = 1_000

const SPAN = { kind: "client", captureStackTrace: false } as const

const graceSeconds = (options?: StoreOptions): number => Duration.toSeconds(options?.ttlGrace ?? DEFAULT_TTL_GRACE)

/**
 * `migrate` creates the TTL index on `expiresAt`, or sets its grace when it exists with another one, and the
 * per-user index on `{ userKey, expiresAt }` (partial: bound sessions only). It is idempotent.
 *
 * @since 0.1.0
 */
export const migrate = (db: Db, options?: StoreOptions): Effect.Effect<void, StoreError.StoreError> => {
  const name = options?.collection ?? DEFAULT_COLLECTION
  const index = Internal.ttlIndex(graceSeconds(options))
  const attempt = <A>(evaluate: () => Promise<A>) => Effect.tryPromise({ try: evaluate, catch: (error) => error })
  return attempt(() => db.collection(name).createIndex(index.key, index.options)).pipe(
    Effect.catchIf(
      Internal.isIndexConflict,
      () => attempt(() => db.command(Internal.ttlCollMod(name, graceSeconds(options))))
    ),
    // The per-user index: creating it again with the same key and options is a no-op, from any number of instances.
    Effect.zipRight(attempt(() => db.collection(name).createIndex(Internal.userIndex.key, Internal.userIndex.options))),
    Effect.mapError((error) => Internal.toStoreError("migrate", error)),
    Effect.asVoid
  )
}

/**
 * `checkOptions` fails with `StoreConfigError` (`InvalidOption`) when `collection` or `database` is not a
 * non-empty string, `maxDataBytes` is not a positive integer, `ttlGrace` is not a finite duration, or a timeout
 * is not a positive, finite duration; `make` and the layers run it before they touch the server.
 *
 * @since 0.1.0
 */
export const checkOptions = (
  options?: StoreOptions & Partial<Omit<Options, "url">>
): Effect.Effect<void, StoreError.StoreConfigError> =>
  OptionChecks.check([
    OptionChecks.string("MongoStore", "collection", options?.collection),
    OptionChecks.string("MongoStore", "database", options?.database),
    OptionChecks.positiveInteger("MongoStore", "maxDataBytes", options?.maxDataBytes),
    OptionChecks.duration("MongoStore", "ttlGrace", options?.ttlGrace, { zero: true }),
    OptionChecks.duration("MongoStore", "serverSelectionTimeout", options?.serverSelectionTimeout),
    OptionChecks.duration("MongoStore", "socketTimeout", options?.socketTimeout)
  ])

/**
 * `make` builds the store over a database handle the caller owns (and closes). It runs `migrate` first
 * unless `migrate: false`, and fails with `StoreConfigError` on a refused option (see `checkOptions`).
 *
 * @since 0.1.0
 */
export const make = (
  db: Db,
  options?: StoreOptions
): Effect.Effect<Service, StoreError.StoreError | StoreError.StoreConfigError> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    if (options?.migrate !== false) yield* migrate(db, options)
    const collection: Collection<Internal.SessionDocument> = db.collection(options?.collection ?? DEFAULT_COLLECTION)

    const toDocument = (method: StoreError.Method, record: SessionRecord.SessionRecord, json: string) =>
      fromEither(method, "Encode", Internal.toDocument(record, json))

    const backend: SessionStore.Backend = {
      name: "MongoStore",
      system: "mongodb",
      create: (record, json, now) =>
        Effect.flatMap(toDocument("create", record, json), (document) => {
          const op = Internal.createOperation(document, now)
          return Effect.as(run("create", () => collection.updateOne(op.filter, op.update, op.options)), record)
        }),
      save: (record, json, now) =>
        Effect.flatMap(toDocument("save", record, json), (document) => {
          const op = Internal.saveOperation(document, record.version, now)
          return Effect.flatMap(run("save", () => collection.updateOne(op.filter, op.update)), (result) =>
            result.matchedCount === 1
              ? Effect.succeed({ ...record, version: record.version + 1 })
              : Effect.flatMap(
                run(
                  "save",
                  () => collection.findOne(Internal.idFilter(record.id), { projection: Internal.missedSaveProjection })
                ),
                (found) => Effect.fail(StoreError.make(Internal.classifyMissedSave(found, now), "save"))
              ))
        }),
      load: (id, now) =>
        Effect.flatMap(run("load", () => collection.findOne(Internal.idFilter(id))), (found) => {
          if (found === null) return Effect.succeed(Option.none())
          return Effect.map(
            fromEither("load", "Decode", Internal.fromDocument(found)),
            (record) => record.expiresAt <= now ? Option.none() : Option.some(record)
          )
        }),
      delete: (id) => Effect.asVoid(run("delete", () => collection.deleteOne(Internal.idFilter(id))))
    }

    const deleteBatch = (limit: number, now: number) =>
      Effect.flatMap(
        run(
          "deleteExpired",
          () => collection.find(Internal.expiredFilter(now), { projection: { _id: 1 } }).limit(limit).toArray()
        ),
        (expired) =>
          expired.length === 0
            ? Effect.succeed(0)
            : Effect.map(
              run("deleteExpired", () =>
                collection.deleteMany({
                  _id: {
                    $in: expired.map((d) => d._id)
                  },
                  ...Internal.expiredFilter(now)
                })),
              (result) => result.deletedCount
            )
      )

    const spans = options?.spans ?? true
    const liveIds = (userKey: string, now: number, except: SessionId | undefined) =>
      run(
        "revoke",
        () =>
          collection.find(Internal.liveOfUser(userKey, now, except), { projection: { _id: 1 } }).limit(REVOKE_BATCH)
            .toArray()
      )
    /*
     * One document holds a session and its user key, so a session is listed exactly while its document is live
     * and names the user: a create racing a revoke is alive and listed, or deleted. Revoke finds the user's live
     * ids and deletes those that still name the user; every session of the user written before revoke began is
     * found, and a save of it after its deletion matches nothing and is `Gone`. Batches repeat while full, so the
     * cost stays bounded by the user's sessions.
     */
    const revokeBatch = (
      userKey: string,
      now: number,
      except: SessionId | undefined,
      revoked: Array<SessionId>
    ): Effect.Effect<Array<SessionId>, StoreError.StoreError> =>
      Effect.flatMap(liveIds(userKey, now, except), (found) => {
        if (found.length === 0) return Effect.succeed(revoked)
        const ids = found.map((d) => d._id)
        return Effect.flatMap(
          run("revoke", () => collection.deleteMany({ _id: { $in: ids }, userKey })),
          (result) =>
            Effect.flatMap(
              result.deletedCount === ids.length
                ? Effect.succeed(ids)
                : Effect.map(
                  // rebound between the find and the delete: not revoked
                  run("revoke", () => collection.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray()),
                  (kept) => {
                    const left = new Set(kept.map((d) => d._id))
                    return ids.filter((id) => !left.has(id))
                  }
                ),
              (deleted) => {
                for (const id of deleted) revoked.push(id as SessionId)
                return found.length === REVOKE_BATCH
                  ? revokeBatch(userKey, now, except, revoked)
                  : Effect.succeed(revoked)
              }
            )
        )
      })
    const index = IndexService.make("MongoStore", { spans, span: SPAN }, {
      list: (userId, userKey, now) =>
        Effect.map(run("list", () => collection.find(Internal.liveOfUser(userKey, now)).toArray()), (documents) => {
          const out: Array<SessionIndex.Entry> = []
          for (const document of documents) {
            // A corrupt document is skipped, never a failure of the listing.
            const record = Internal.fromDocument(document)
            if (Either.isLeft(record) || record.right.expiresAt <= now) continue
            const entry = Binding.entryOf(record.right.id, record.right.data, record.right.expiresAt, userId)
            if (entry !== undefined) out.push(entry)
          }
          return out
        }),
      revokeIds: (userKey, except, now) => revokeBatch(userKey, now, except, [])
    })

    return {
      store: SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans }),
      expiredDeletion: SessionStore.expiredDeletionInBatches(deleteBatch),
      index
    }
  })

const layerFrom = <E, R>(
  service: Effect.Effect<Service, E, R>
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  E,
  Exclude<R, Scope.Scope>
> =>
  Layer.scopedContext(
    Effect.map(
      service,
      (s) => Context.add(SessionStore.expiredDeletionContext(s), SessionIndex.SessionIndex, s.index)
    )
  )

/**
 * `layerDb` provides the store and its `ExpiredDeletion` over a database handle the app owns and closes.
 *
 * @since 0.1.0
 */
export const layerDb = (
  db: Db,
  options?: StoreOptions
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError
> => layerFrom(make(db, options))

/**
 * `connect` opens a client with fail-fast timeouts, closed when the scope ends; it fails with `Unavailable`
 * (method `connect`) when no server answers within the server selection timeout.
 *
 * @since 0.1.0
 */
export const connect = (options: Options): Effect.Effect<MongoClient, StoreError.StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const client = new MongoClient(Redacted.value(options.url), {
        serverSelectionTimeoutMS: Duration.toMillis(options.serverSelectionTimeout ?? Duration.seconds(5)),
        socketTimeoutMS: Duration.toMillis(options.socketTimeout ?? Duration.seconds(10))
      })
      return run("connect", () => client.connect()).pipe(
        Effect.tapError(() => Effect.promise(() => client.close().catch(() => undefined)))
      )
    }),
    (client) => Effect.promise(() => client.close().catch(() => undefined))
  )

/**
 * `layer` connects, runs `migrate` (unless `migrate: false`) and provides the store and its
 * `ExpiredDeletion`; the client is closed when the layer is released. A refused option fails it with
 * `StoreConfigError` before it connects.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError
> =>
  layerFrom(
    Effect.zipRight(
      checkOptions(options),
      Effect.flatMap(connect(options), (client) => make(client.db(options.database), options))
    )
  )

/**
 * `layerConfig` is `layer` with its options read from configuration, e.g. `url: Config.redacted("MONGODB_URL")`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
