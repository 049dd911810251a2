/**
 * A session store on Redis (6.2 or newer) through ioredis, standalone or Redis Cluster.
 *
 * Each session is one string key, `<keyPrefix><SessionId>` (default prefix `session:`), holding
 * `"<version>:<expiresAt>:<json>"`, with a Redis TTL set relative to the app's `Clock`
 * (`PX expiresAt - now`), so expired sessions vanish without a cleanup job and a skewed clock cannot make
 * Redis drop fresh keys. `load` is one `GET` and still judges expiry by the `Clock`. `create` and the
 * compare-and-set `save` are server-side scripts registered with `defineCommand`. Nothing here ever sends `KEYS`.
 *
 * The store keeps a per-user index and provides `SessionIndex`: a sorted set per user,
 * `<keyPrefix>user:<userKey>` (the digest of `SessionIndex.userKey`, never the user id), of the ids of the user's
 * sessions, whose TTL is raised to the longest record TTL filed in it (each filing drops members filed longer ago
 * than that, so the set stays bounded without a listing); a bound session's value names its user key
 * (`"<version>:<expiresAt>:<userKey>:<json>"`). On a standalone Redis one script writes a record and its user's set
 * together (and `delete` is a script that takes the id out of the set). On a Cluster the two keys lie in different
 * slots and every command touches one key: a create or save files the id under its user first, then writes the
 * record, so a live session is always listed; a stale member (a failed create, a moved, deleted or expired
 * session) is skipped by `list` and `revoke`, which prune it (past `PRUNE_GRACE` when its record is missing or
 * someone else's, in case a write is in flight).
 *
 * Connections the store opens itself (`layer`, `layerCluster`, `layerConfig`) run with the offline queue
 * off, no replay of unanswered commands after a reconnect, a `commandTimeout` and the same deadline on every
 * operation: during an outage (server down or frozen) each operation fails with `Unavailable` within the
 * command timeout instead of waiting, and no write is replayed later behind the app's back. A write that
 * timed out on a frozen server had been sent: it may still be applied when the server resumes. These
 * connections batch writes (commands issued in one turn of the event loop go out in one write: on a standalone
 * connection the store holds the socket's writes until the end of the turn, on a Cluster ioredis auto-pipelines),
 * reconnect on their own and are closed when the layer's scope ends.
 *
 * @example
 * ```ts
 * import { RedisStore } from "effect-sessions/RedisStore"
 * import { Config } from "effect"
 *
 * const StoreLive = RedisStore.layerConfig({
 *   url: Config.redacted("REDIS_URL"),
 *   keyPrefix: Config.succeed("myapp:session:")
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
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions as IoClusterOptions, RedisOptions } from "ioredis"
import * as Binding from "./internal/binding.js"
import * as IndexService from "./internal/indexService.js"
import * as InvalidationCore from "./internal/invalidation.js"
import * as InvalidationRedis from "./internal/invalidationRedis.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as Internal from "./internal/redis.js"
import * as Invalidation from "./Invalidation.js"
import type { SessionId } from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import type * as SessionRecord from "./SessionRecord.js"
import * as SessionStore from "./SessionStore.js"
import * as StoreError from "./StoreError.js"

/**
 * Options that shape the store over any client.
 *
 * @since 0.1.0
 */
export interface StoreOptions {
  /** Prepended to every session id to make the key. Default `"session:"`. */
  readonly keyPrefix?: string | undefined
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /** Wrap each operation in a span. Default `true`. */
  readonly spans?: boolean | undefined
  /**
   * A deadline on each operation, enforced by the store whatever the client does: past it the operation fails
   * with `Unavailable` (operations started within a few milliseconds of each other share one timer, so one may
   * fail that much early). Default: none over a client you pass in, `commandTimeout` over a connection the store
   * opens. On a client that queues commands while disconnected, a write that missed its deadline can still
   * reach Redis later.
   */
  readonly operationTimeout?: Duration.DurationInput | undefined
}

/**
 * Options of the connections the store opens itself.
 *
 * @since 0.1.0
 */
export interface ConnectionOptions extends StoreOptions {
  /** How long one command (and so one operation) may take before it fails with `Unavailable`. Default 2 seconds. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long connecting may take. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Send the commands issued in one turn of the event loop in one write: fewer writes and wake-ups under
   * concurrency. Default `true`. A standalone connection holds its socket's writes for the rest of the turn (the
   * app's own commands on a `connect`ed client too); a Cluster uses ioredis `enableAutoPipelining`. Operations
   * still fail within `commandTimeout` (the store's own deadline), even when a command waits behind an unanswered
   * pipeline.
   */
  readonly autoPipelining?: boolean | undefined
}

/**
 * Options of `layer`: a standalone Redis.
 *
 * @since 0.1.0
 */
export interface Options extends ConnectionOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Default `redis://127.0.0.1:6379`.
   * Redacted: it may carry a password.
   */
  readonly url?: Redacted.Redacted | undefined
}

/**
 * Options of `layerCluster`: a Redis Cluster.
 *
 * @since 0.1.0
 */
export interface ClusterOptions extends ConnectionOptions {
  /** Some of the cluster's nodes; the rest are discovered. */
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
}

/**
 * The default key prefix.
 *
 * @since 0.1.0
 */
export const DEFAULT_KEY_PREFIX = "session:"

/**
 * The default command timeout of connections the store opens: 2 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_COMMAND_TIMEOUT: Duration.Duration = Duration.seconds(2)

/**
 * The default connect timeout of connections the store opens: 5 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)

type Script = (...args: ReadonlyArray<string>) => Promise<number>

interface Scripts {
  readonly [Internal.CREATE_COMMAND]: Script
  readonly [Internal.SAVE_COMMAND]: Script
  readonly [Internal.CREATE_INDEXED_COMMAND]: Script
  readonly [Internal.SAVE_INDEXED_COMMAND]: Script
  readonly [Internal.DELETE_INDEXED_COMMAND]: Script
  readonly [Internal.FILE_COMMAND]: Script
  readonly [Internal.REVOKE_COMMAND]: Script
  readonly [Internal.PRUNE_IF_COMMAND]: Script
  readonly [Internal.PRUNE_CHECKED_COMMAND]: Script
}

/** How a store sends: the deadline of its operations, and what runs before each command goes out. */
interface Sender {
  readonly deadlines: Internal.Deadlines | undefined
  readonly beforeSend: (() => void) | undefined
}

/**
 * Runs one ioredis call; a rejection (or a throw) becomes a `StoreError` for `method`. Under a deadline, the
 * operation fails with `Unavailable` once it has waited that long, whatever the client still does with the
 * command (the reply, if one comes, is dropped).
 */
const call = <A, B>(
  sender: Sender,
  method: StoreError.Method,
  run: () => Promise<A>,
  onReply: (reply: A) => Effect.Effect<B, StoreError.StoreError>
): Effect.Effect<B, StoreError.StoreError> =>
  Effect.async<B, StoreError.StoreError>((resume) => {
    const deadlines = sender.deadlines
    let promise: Promise<A>
    try {
      sender.beforeSend?.()
      promise = run()
    } catch (error) {
      resume(Effect.fail(Internal.toStoreError(method, error)))
      return
    }
    if (deadlines === undefined) {
      promise.then(
        (reply) => resume(onReply(reply)),
        (error) => resume(Effect.fail(Internal.toStoreError(method, error)))
      )
      return
    }
    const pending = deadlines.start(method, resume)
    promise.then(
      (reply) => {
        if (deadlines.settle(pending)) resume(onReply(reply))
      },
      (error) => {
        if (deadlines.settle(pending)) resume(Effect.fail(Internal.toStoreError(method, error)))
      }
    )
  })

/** The reply of a load that found no live record, made once. */
const NOT_FOUND: Effect.Effect<Option.Option<never>> = Effect.succeed(Option.none())

const scriptFailure = (method: "create" | "save", reply: number): StoreError.StoreError => {
  switch (reply) {
    case Internal.Reply.Taken:
      return StoreError.make(method === "create" ? "Collision" : "Conflict", method)
    case Internal.Reply.Gone:
      return StoreError.make("Gone", method)
    case Internal.Reply.Malformed:
      return StoreError.rule("Decode", method, "stored value has no version:expiresAt head")
    default:
      return StoreError.rule("Decode", method, "unexpected script reply")
  }
}

/**
 * `make` builds the store over a client the caller owns, standalone or `Cluster`, registering its
 * scripts on it with `defineCommand` (the store keeps its per-user index either way: see `makeWithIndex`). The store never closes that client. Over a client from `connect` (with
 * `autoPipelining`), the commands the store issues in one turn of the event loop leave in one write.
 *
 * Warning: ioredis's defaults queue commands while disconnected and replay unanswered ones after a
 * reconnect. On such a client an outage makes operations wait (up to `maxRetriesPerRequest` reconnects)
 * instead of failing, and a write the app already saw fail can still land later. For fail-fast behaviour
 * give the client `enableOfflineQueue: false`, `autoResendUnfulfilledCommands: false` and a
 * `commandTimeout` (what `layer` does) and pass `operationTimeout`, or let the store open its own connection.
 * It fails with `StoreConfigError` (`InvalidOption`) on a refused option (see `checkOptions`).
 *
 * @since 0.1.0
 */
export const make = (
  client: Redis | Cluster,
  options?: StoreOptions
): Effect.Effect<SessionStore.Service, StoreError.StoreConfigError> =>
  Effect.map(makeWithIndex(client, options), (services) => services.store)

/**
 * `checkOptions` fails with `StoreConfigError` (`InvalidOption`) when `keyPrefix` is not a string,
 * `maxDataBytes` is not a positive integer, or a timeout is not a positive, finite duration; the layers run
 * it before they connect.
 *
 * @since 0.1.0
 */
export const checkOptions = (
  options?: ConnectionOptions & { readonly nodes?: ClusterOptions["nodes"] | undefined }
): Effect.Effect<void, StoreError.StoreConfigError> =>
  OptionChecks.check([
    OptionChecks.string("RedisStore", "keyPrefix", options?.keyPrefix, { empty: true }),
    OptionChecks.positiveInteger("RedisStore", "maxDataBytes", options?.maxDataBytes),
    OptionChecks.duration("RedisStore", "operationTimeout", options?.operationTimeout),
    OptionChecks.duration("RedisStore", "commandTimeout", options?.commandTimeout),
    OptionChecks.duration("RedisStore", "connectTimeout", options?.connectTimeout),
    options?.nodes !== undefined && options.nodes.length === 0
      ? StoreError.invalidOption("RedisStore", "nodes", "nodes must name at least one node of the cluster")
      : undefined
  ])

/**
 * The store and its per-user index over one client.
 *
 * @since 0.3.0
 */
export interface Services {
  readonly store: SessionStore.Service
  readonly index: SessionIndex.Service
}

/**
 * `makeWithIndex` is `make` with the store's per-user index beside it (see the module documentation of the
 * index's layout and, on a Cluster, the order of its writes).
 *
 * @since 0.3.0
 */
export const makeWithIndex = (
  client: Redis | Cluster,
  options?: StoreOptions
): Effect.Effect<Services, StoreError.StoreConfigError> =>
  Effect.zipRight(checkOptions(options), makeChecked(client, options))

/**
 * How long a Cluster keeps a member of a user's set whose record is missing or belongs to someone else before
 * `list` or `revoke` prunes it: far longer than a create or save takes between filing a session under its user
 * and writing its record (a create's member exists before its record does, and must not be pruned meanwhile).
 * A standalone store prunes at once (its writes file and write in one step).
 *
 * @since 0.3.0
 */
export const PRUNE_GRACE: Duration.Duration = Duration.millis(Internal.PRUNE_GRACE_MS)

const PRUNE_GRACE_MS = Internal.PRUNE_GRACE_MS

/** The reply `list` reads for a key of another type. */
const CORRUPT = Symbol("corrupt")

/** Records read per batch by `list` and `revoke`. */
const INDEX_BATCH = 128

const SPAN = { kind: "client", captureStackTrace: false } as const

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** A member of a user's set: the session id and the score of its last filing, as Redis wrote it. */
interface Member {
  readonly id: SessionId
  readonly score: string
}

const makeChecked = (client: Redis | Cluster, options?: StoreOptions): Effect.Effect<Services> =>
  Effect.sync(() => {
    const prefix = options?.keyPrefix ?? DEFAULT_KEY_PREFIX
    const setPrefix = prefix + "user:"
    // No script on a Cluster may touch a session's key and its user's set (two slots): see `fileFirst`.
    const clustered = client instanceof Cluster
    const sender: Sender = {
      deadlines: options?.operationTimeout === undefined
        ? undefined
        : Internal.makeDeadlines(millis(options.operationTimeout, DEFAULT_COMMAND_TIMEOUT)),
      beforeSend: client instanceof Redis && batchedWrites.has(client) ? Internal.writeBatcher(client) : undefined
    }
    client.defineCommand(Internal.CREATE_COMMAND, { numberOfKeys: 1, lua: Internal.createScript })
    client.defineCommand(Internal.SAVE_COMMAND, { numberOfKeys: 1, lua: Internal.saveScript })
    client.defineCommand(Internal.CREATE_INDEXED_COMMAND, { numberOfKeys: 2, lua: Internal.createIndexedScript })
    client.defineCommand(Internal.SAVE_INDEXED_COMMAND, { numberOfKeys: 2, lua: Internal.saveIndexedScript })
    client.defineCommand(Internal.DELETE_INDEXED_COMMAND, { numberOfKeys: 1, lua: Internal.deleteIndexedScript })
    client.defineCommand(Internal.FILE_COMMAND, { numberOfKeys: 1, lua: Internal.fileScript })
    client.defineCommand(Internal.REVOKE_COMMAND, { numberOfKeys: 1, lua: Internal.revokeScript })
    client.defineCommand(Internal.PRUNE_IF_COMMAND, { numberOfKeys: 1, lua: Internal.pruneIfScript })
    client.defineCommand(Internal.PRUNE_CHECKED_COMMAND, { numberOfKeys: 2, lua: Internal.pruneCheckedScript })
    const scripts = client as unknown as Scripts

    /*
     * The index: a sorted set per user, `<keyPrefix>user:<userKey>`, of the ids of the user's sessions, each
     * scored with the app-clock time it was last filed; each record's head names its user key, so a script on
     * the record's key knows whom it belongs to. The set's TTL is raised to the longest record TTL filed in it.
     *
     * Standalone, one script writes a record and its sets (files it under its user, takes it out of its old
     * user's), so the set is exact after every write, and a prune removes a member in the step that checks its
     * record. On a Cluster the two keys live in different slots, so a
     * create or save first files the id under its user (and waits for that), then writes the record:
     *
     * - Never alive and unlisted: a record becomes live, or becomes a user's, only after its id was filed in that
     *   user's set, and a member leaves a set only when pruned, which a Cluster does only to a member whose record
     *   was read expired or was deleted by this revoke (neither comes back: a save of it is `Gone`), or read
     *   missing or someone else's with its last filing older than `PRUNE_GRACE_MS` (longer than any write in
     *   flight between its filing and its record write), and in every case only if the member's score is
     *   unchanged since its record was read (a newer filing, so a write in flight, keeps it).
     * - A save that moves a session to another user or unbinds it leaves it in its old user's set (removing it
     *   there could race a save moving it back, which files first and writes after): a stale member is harmless,
     *   since list and revoke check each member against its record, and it is pruned later.
     * - Revoke: the set's members are read, then each record is deleted by a script on its key only if it still
     *   belongs to the user. Every session of the user whose write finished before revoke began was filed before
     *   that read, so it is deleted; a save of it racing the revoke either ran before the delete (and is deleted
     *   with it) or finds no record and is `Gone`.
     */
    const fileFirst = (method: "create" | "save", userKey: string, id: SessionId, now: string, ttl: string) =>
      call(
        sender,
        method,
        () => scripts[Internal.FILE_COMMAND](setPrefix + userKey, id, now, ttl),
        () => Effect.void
      )

    const created = (record: SessionRecord.SessionRecord) => (reply: number) =>
      reply === Internal.Reply.Written ? Effect.succeed(record) : Effect.fail(scriptFailure("create", reply))
    const saved = (record: SessionRecord.SessionRecord) => (reply: number) =>
      reply === Internal.Reply.Written
        ? Effect.succeed({
          id: record.id,
          data: record.data,
          expiresAt: record.expiresAt,
          version: record.version + 1
        })
        : Effect.fail(scriptFailure("save", reply))

    const backend: SessionStore.Backend = {
      name: "RedisStore",
      system: "redis",
      create: (record, json, now) => {
        const userKey = Binding.userKeyOf(record.data)
        const key = prefix + record.id
        const value = Internal.encodeValue(record.version, record.expiresAt, json, userKey)
        const at = String(now)
        const ttl = String(Internal.ttlMillis(record.expiresAt, now))
        if (!clustered) {
          return call(
            sender,
            "create",
            () =>
              scripts[Internal.CREATE_INDEXED_COMMAND](
                key,
                userKey === undefined ? key : setPrefix + userKey,
                value,
                at,
                ttl,
                userKey ?? "",
                record.id
              ),
            created(record)
          )
        }
        const write = call(
          sender,
          "create",
          () => scripts[Internal.CREATE_COMMAND](key, value, at, ttl),
          created(record)
        )
        return userKey === undefined ? write : Effect.zipRight(fileFirst("create", userKey, record.id, at, ttl), write)
      },
      save: (record, json, now) => {
        const userKey = Binding.userKeyOf(record.data)
        const key = prefix + record.id
        const value = Internal.encodeValue(record.version + 1, record.expiresAt, json, userKey)
        const at = String(now)
        const ttl = String(Internal.ttlMillis(record.expiresAt, now))
        const version = String(record.version)
        if (!clustered) {
          return call(
            sender,
            "save",
            () =>
              scripts[Internal.SAVE_INDEXED_COMMAND](
                key,
                userKey === undefined ? key : setPrefix + userKey,
                value,
                version,
                at,
                ttl,
                userKey ?? "",
                record.id,
                setPrefix
              ),
            saved(record)
          )
        }
        const write = call(
          sender,
          "save",
          () => scripts[Internal.SAVE_COMMAND](key, value, version, at, ttl),
          saved(record)
        )
        return userKey === undefined ? write : Effect.zipRight(fileFirst("save", userKey, record.id, at, ttl), write)
      },
      load: (id: SessionId, now) =>
        call(sender, "load", () => client.get(prefix + id), (value) => {
          if (value === null) return NOT_FOUND
          const decoded = Internal.decodeValue(id, value, now)
          return decoded === undefined
            ? NOT_FOUND
            : decoded instanceof Internal.Malformed
            ? Effect.fail(StoreError.rule("Decode", "load", decoded.rule))
            : Effect.succeed(Option.some(decoded))
        }),
      delete: clustered
        ? (id: SessionId) => call(sender, "delete", () => client.unlink(prefix + id), () => Effect.void)
        : (id: SessionId) =>
          call(
            sender,
            "delete",
            () => scripts[Internal.DELETE_INDEXED_COMMAND](prefix + id, id, setPrefix),
            () => Effect.void
          )
    }

    const members = (method: string, setKey: string): Effect.Effect<Array<Member>, StoreError.StoreError> =>
      call(sender, method, () => client.zrange(setKey, 0, -1, "WITHSCORES"), (reply) => {
        const out: Array<Member> = []
        for (let i = 0; i + 1 < reply.length; i += 2) {
          if (reply[i] !== Internal.MAX_TTL_MEMBER) out.push({ id: reply[i] as SessionId, score: reply[i + 1] })
        }
        return Effect.succeed(out)
      })

    /**
     * Prunes members found dead: standalone by a script that checks the record in the same step; on a Cluster
     * only if the member's score is unchanged since it was read, and, for a missing or foreign record, only past
     * the grace (see above). `settled` lists members whose record was read expired or was deleted by a revoke:
     * those need no grace.
     */
    const prune = (
      method: string,
      setKey: string,
      userKey: string,
      dead: ReadonlyArray<Member>,
      settled: ReadonlySet<SessionId>,
      now: number
    ): Effect.Effect<void, StoreError.StoreError> => {
      const at = String(now)
      const ripe = clustered
        ? dead.filter((m) => settled.has(m.id) || now - Number(m.score) > PRUNE_GRACE_MS)
        : dead
      return Effect.forEach(
        chunks(ripe, INDEX_BATCH),
        (batch) =>
          Effect.forEach(batch, (m) =>
            call(
              sender,
              method,
              () =>
                clustered
                  ? scripts[Internal.PRUNE_IF_COMMAND](setKey, m.id, m.score)
                  : scripts[Internal.PRUNE_CHECKED_COMMAND](prefix + m.id, setKey, m.id, userKey, at),
              () => Effect.void
            ), { concurrency: "unbounded", discard: true }),
        { discard: true }
      )
    }

    const spans = options?.spans ?? true
    const index = IndexService.make("RedisStore", { spans, span: SPAN }, {
      list: (userId, userKey, now) =>
        Effect.gen(function*() {
          const setKey = setPrefix + userKey
          const found = yield* members("list", setKey)
          const out: Array<SessionIndex.Entry> = []
          const dead: Array<Member> = []
          const expired = new Set<SessionId>()
          for (const batch of chunks(found, INDEX_BATCH)) {
            const values = yield* Effect.forEach(
              batch,
              (m) =>
                call(sender, "list", () => client.get(prefix + m.id), (v) => Effect.succeed(v)).pipe(
                  // A key of another type under a session's name is a corrupt record: skipped, not a failure.
                  Effect.catchIf((e) => e.reason === "Decode", () => Effect.succeed(CORRUPT))
                ),
              { concurrency: "unbounded" }
            )
            for (let i = 0; i < batch.length; i++) {
              const m = batch[i]
              const value = values[i]
              if (value === CORRUPT) {
                dead.push(m)
                continue
              }
              if (value === null) {
                dead.push(m)
                continue
              }
              const record = Internal.decodeValue(m.id, value, now)
              if (record === undefined) {
                dead.push(m)
                expired.add(m.id)
                continue
              }
              // A corrupt record is skipped, never a failure of the listing.
              const entry = record instanceof Internal.Malformed
                ? undefined
                : Binding.entryOf(m.id, record.data, record.expiresAt, userId)
              if (entry === undefined) dead.push(m)
              else out.push(entry)
            }
          }
          if (dead.length > 0) yield* prune("list", setKey, userKey, dead, expired, now)
          return out
        }),
      revokeIds: (userKey, except, now) =>
        Effect.gen(function*() {
          const setKey = setPrefix + userKey
          const at = String(now)
          const found = yield* members("revoke", setKey)
          const revoked: Array<SessionId> = []
          const dead: Array<Member> = []
          const deleted = new Set<SessionId>()
          for (const batch of chunks(found.filter((m) => m.id !== except), INDEX_BATCH)) {
            const replies = yield* Effect.forEach(
              batch,
              (m) =>
                call(
                  sender,
                  "revoke",
                  () => scripts[Internal.REVOKE_COMMAND](prefix + m.id, userKey, at),
                  (reply) => Effect.succeed(reply)
                ),
              { concurrency: "unbounded" }
            )
            for (let i = 0; i < batch.length; i++) {
              const reply = replies[i]
              if (reply === Internal.Revoked.Live) revoked.push(batch[i].id)
              // A record this revoke deleted is pruned without the grace, yet still only if nothing filed its id
              // since (a create may reuse a free id).
              if (reply === Internal.Revoked.Live || reply === Internal.Revoked.Expired) deleted.add(batch[i].id)
              dead.push(batch[i])
            }
          }
          if (dead.length > 0) yield* prune("revoke", setKey, userKey, dead, deleted, now)
          return revoked
        })
    })

    return {
      store: SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans }),
      index
    }
  })

/**
 * `layerClient` provides the store and its `SessionIndex` over a client the app owns and closes itself. See `make` for the
 * retry-queue risk of ioredis's defaults.
 *
 * @since 0.1.0
 */
export const layerClient = (
  client: Redis | Cluster,
  options?: StoreOptions
): Layer.Layer<SessionStore.SessionStore | SessionIndex.SessionIndex, StoreError.StoreConfigError> =>
  Layer.effectContext(Effect.map(makeWithIndex(client, options), toContext))

const toContext = (services: Services): Context.Context<SessionStore.SessionStore | SessionIndex.SessionIndex> =>
  Context.make(SessionStore.SessionStore, services.store).pipe(Context.add(SessionIndex.SessionIndex, services.index))

const millis = (d: Duration.DurationInput | undefined, fallback: Duration.Duration): number =>
  Math.max(1, Math.round(Duration.toMillis(d ?? fallback)))

/** Reconnect backoff of owned connections: 100 ms more per attempt, at most 1 s. */
const retryDelay = (attempt: number): number => Math.min(attempt * 100, 1_000)

/** What owned connections share: fail fast, never replay. */
const failFast = (options: ConnectionOptions): RedisOptions => ({
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  commandTimeout: millis(options.commandTimeout, DEFAULT_COMMAND_TIMEOUT),
  connectTimeout: millis(options.connectTimeout, DEFAULT_CONNECT_TIMEOUT),
  enableAutoPipelining: options.autoPipelining ?? true
})

type Client = Redis | Cluster

/** Connections `connect` opened with `autoPipelining`: the store batches their writes itself. */
const batchedWrites = new WeakSet<Redis>()

/** The sender of `connect`, whose own time limit is the connect timeout. */
const unbounded: Sender = { deadlines: undefined, beforeSend: undefined }

/** Over a connection the store opens, each operation's deadline defaults to the command timeout. */
const withDeadline = (options: ConnectionOptions): StoreOptions => ({
  ...options,
  operationTimeout: options.operationTimeout ?? options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT
})

/**
 * Logs connection trouble of an owned client by name and code only: a warning when a working connection
 * breaks, a note when it is back, and the rest at debug level.
 */
const watch = (client: Client): Effect.Effect<void> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const log = Runtime.runFork(runtime)
    let healthy = true
    client.on("error", (error: unknown) => {
      const cause = StoreError.redact(error)
      const message = "effect-sessions: RedisStore connection error"
      const annotated = (effect: Effect.Effect<void>) =>
        effect.pipe(Effect.annotateLogs({ name: cause.name, code: cause.code ?? "none" }))
      log(annotated(healthy ? Effect.logWarning(message) : Effect.logDebug(message)))
      healthy = false
    })
    client.on("ready", () => {
      if (!healthy) log(Effect.logInfo("effect-sessions: RedisStore connection ready again"))
      healthy = true
    })
  })

/** Quits gracefully (pending replies first), or drops the connection if that fails; resolves once closed. */
const close = (client: Client): Promise<void> =>
  new Promise((resolve) => {
    if (client.status === "end") return resolve()
    client.once("end", () => resolve())
    client.quit().catch(() => client.disconnect())
  })

const open = <C extends Client>(
  build: () => C,
  options: ConnectionOptions
): Effect.Effect<C, StoreError.StoreError, Scope.Scope> => {
  const limit = millis(options.connectTimeout, DEFAULT_CONNECT_TIMEOUT) +
    millis(options.commandTimeout, DEFAULT_COMMAND_TIMEOUT)
  return Effect.acquireRelease(
    Effect.suspend(() => {
      const client = build()
      const connect = call(unbounded, "connect", () => client.connect(), () => Effect.succeed(client)).pipe(
        Effect.timeoutFail({
          duration: limit,
          onTimeout: () => Internal.deadlineError("connect")
        }),
        Effect.tapError(() => Effect.sync(() => client.disconnect()))
      )
      return Effect.zipRight(watch(client), connect)
    }),
    (client) => Effect.promise(() => close(client))
  )
}

/**
 * `connect` opens a standalone connection with the store's fail-fast settings, closed when the scope ends.
 * It fails with `Unavailable` (method `connect`) when Redis cannot be reached. Its ioredis auto-pipelining is
 * off: with `autoPipelining`, a store made over it batches the writes of each turn itself.
 *
 * @since 0.1.0
 */
export const connect = (options?: Options): Effect.Effect<Redis, StoreError.StoreError, Scope.Scope> =>
  open(
    () => {
      // ioredis's auto-pipelining costs a pipeline and extra promises per command; the store batches writes instead
      const client = new Redis(
        options?.url !== undefined ? Redacted.value(options.url) : "redis://127.0.0.1:6379",
        { ...failFast(options ?? {}), enableAutoPipelining: false, lazyConnect: true, retryStrategy: retryDelay }
      )
      if (options?.autoPipelining ?? true) batchedWrites.add(client)
      return client
    },
    options ?? {}
  )

/**
 * `connectCluster` opens a Redis Cluster client with the store's fail-fast settings, closed when the scope ends.
 *
 * @since 0.1.0
 */
export const connectCluster = (options: ClusterOptions): Effect.Effect<Cluster, StoreError.StoreError, Scope.Scope> =>
  Effect.suspend(() => {
    const clusterOptions: IoClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: options.autoPipelining ?? true,
      lazyConnect: true,
      clusterRetryStrategy: retryDelay,
      redisOptions: {
        ...failFast(options),
        ...(options.username !== undefined ? { username: options.username } : {}),
        ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {})
      }
    }
    return open(
      () => new Cluster(options.nodes.map((node) => ({ host: node.host, port: node.port })), clusterOptions),
      options
    )
  })

/**
 * `layer` connects to a standalone Redis and provides the store and its `SessionIndex`; the connection is closed when the layer is
 * released. Construction fails with `StoreConfigError` on a refused option (before connecting) and with
 * `Unavailable` when Redis cannot be reached.
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  SessionStore.SessionStore | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError
> =>
  Layer.scopedContext(
    Effect.zipRight(
      checkOptions(options),
      Effect.flatMap(connect(options), (client) =>
        Effect.map(makeWithIndex(client, withDeadline(options ?? {})), toContext))
    )
  )

/**
 * `layerCluster` connects to a Redis Cluster and provides the store and its `SessionIndex`; the client is closed when the layer is
 * released. Construction fails with `StoreConfigError` on a refused option, before connecting.
 *
 * @since 0.1.0
 */
export const layerCluster = (
  options: ClusterOptions
): Layer.Layer<
  SessionStore.SessionStore | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError
> =>
  Layer.scopedContext(
    Effect.zipRight(
      checkOptions(options),
      Effect.flatMap(connectCluster(options), (client) =>
        Effect.map(makeWithIndex(client, withDeadline(options)), toContext))
    )
  )

/**
 * `layerConfig` is `layer` with its options read from configuration, e.g. `url: Config.redacted("REDIS_URL")`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  SessionStore.SessionStore | SessionIndex.SessionIndex,
  StoreError.StoreError | StoreError.StoreConfigError | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * Options of `layerInvalidation`: a channel on a standalone Redis.
 *
 * @since 0.1.0
 */
export interface InvalidationOptions extends Invalidation.ChannelOptions {
  /** As `layer`'s `url`. Default `redis://127.0.0.1:6379`. Redacted: it may carry a password. */
  readonly url?: Redacted.Redacted | undefined
  /** The pub/sub channel; every instance sharing the store must use the same. Default `"effect-sessions:invalidation"`. */
  readonly channel?: string | undefined
}

/**
 * Options of `layerInvalidationCluster`: a channel on a Redis Cluster.
 *
 * @since 0.1.0
 */
export interface ClusterInvalidationOptions extends Invalidation.ChannelOptions {
  /** Some of the cluster's nodes; the subscription connects to one of them, the next one after a loss. */
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** The pub/sub channel. Default `"effect-sessions:invalidation"`. */
  readonly channel?: string | undefined
}

const checkChannel = (options: {
  readonly channel?: string | undefined
  readonly nodes?: ClusterOptions["nodes"] | undefined
}) =>
  OptionChecks.check([
    OptionChecks.string("RedisStore", "channel", options.channel),
    options.nodes !== undefined && options.nodes.length === 0
      ? StoreError.invalidOption("RedisStore", "nodes", "nodes must name at least one node of the cluster")
      : undefined
  ])

/**
 * `layerInvalidation` provides an invalidation channel on Redis pub/sub (for `CachingStore.layer`'s
 * `invalidation`, whatever the persistent store is): publishes go out on a fail-fast connection, the
 * subscription runs on a connection of its own. Both are closed when the layer is released. Construction fails
 * with `StoreConfigError` on a refused option and with `Unavailable` when no subscription works within
 * `connectTimeout`.
 *
 * @since 0.1.0
 */
export const layerInvalidation = (
  options?: InvalidationOptions
): Layer.Layer<Invalidation.Invalidation, StoreError.StoreError | StoreError.StoreConfigError> =>
  Layer.scoped(
    Invalidation.Invalidation,
    Effect.gen(function*() {
      yield* InvalidationCore.checkOptions("RedisStore", options)
      yield* checkChannel(options ?? {})
      const url = options?.url !== undefined ? Redacted.value(options.url) : "redis://127.0.0.1:6379"
      const timeout = millis(options?.connectTimeout, Invalidation.DEFAULT_CONNECT_TIMEOUT)
      const publisher = yield* connect({
        ...(options?.url !== undefined ? { url: options.url } : {}),
        commandTimeout: options?.publishTimeout ?? Invalidation.DEFAULT_PUBLISH_TIMEOUT,
        connectTimeout: timeout
      })
      const channel = options?.channel ?? InvalidationRedis.DEFAULT_CHANNEL
      return yield* InvalidationCore.make(
        "RedisStore invalidation channel",
        InvalidationRedis.transport(publisher, channel, () =>
          new Redis(url, InvalidationRedis.subscriberOptions(timeout))),
        options
      )
    })
  )

/**
 * `layerInvalidationCluster` is `layerInvalidation` on a Redis Cluster: publishes through a Cluster client
 * (a `PUBLISH` reaches the subscribers of every node), the subscription on one node at a time.
 *
 * @since 0.1.0
 */
export const layerInvalidationCluster = (
  options: ClusterInvalidationOptions
): Layer.Layer<Invalidation.Invalidation, StoreError.StoreError | StoreError.StoreConfigError> =>
  Layer.scoped(
    Invalidation.Invalidation,
    Effect.gen(function*() {
      yield* InvalidationCore.checkOptions("RedisStore", options)
      yield* checkChannel(options)
      const timeout = millis(options.connectTimeout, Invalidation.DEFAULT_CONNECT_TIMEOUT)
      const publisher = yield* connectCluster({
        nodes: options.nodes,
        username: options.username,
        password: options.password,
        commandTimeout: options.publishTimeout ?? Invalidation.DEFAULT_PUBLISH_TIMEOUT,
        connectTimeout: timeout
      })
      const channel = options.channel ?? InvalidationRedis.DEFAULT_CHANNEL
      return yield* InvalidationCore.make(
        "RedisStore invalidation channel",
        InvalidationRedis.transport(publisher, channel, (attempt) => {
          const node = options.nodes[attempt % options.nodes.length]
          return new Redis({
            host: node.host,
            port: node.port,
            ...(options.username !== undefined ? { username: options.username } : {}),
            ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
            ...InvalidationRedis.subscriberOptions(timeout)
          })
        }),
        options
      )
    })
  )
