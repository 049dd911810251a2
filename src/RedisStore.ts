/**
 * A session store on Redis (6.2 or newer) through ioredis, standalone or Redis Cluster.
 *
 * Each session is one string key, `<keyPrefix><SessionId>` (default prefix `session:`), holding
 * `"<version>:<expiresAt>:<json>"`, with a Redis TTL set relative to the app's `Clock`
 * (`PX expiresAt - now`), so expired sessions vanish without a cleanup job and a skewed clock cannot make
 * Redis drop fresh keys. `load` is one `GET` and still judges expiry by the `Clock`. `create` and the
 * compare-and-set `save` are server-side scripts registered with `defineCommand`; `delete` is `UNLINK`.
 * Every command touches one key, so the store works unchanged on `ioredis.Cluster`. Nothing here ever
 * sends `KEYS`.
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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions as IoClusterOptions, RedisOptions } from "ioredis"
import * as InvalidationCore from "./internal/invalidation.js"
import * as InvalidationRedis from "./internal/invalidationRedis.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as Internal from "./internal/redis.js"
import * as Invalidation from "./Invalidation.js"
import type { SessionId } from "./SessionId.js"
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

interface Scripts {
  readonly [Internal.CREATE_COMMAND]: (key: string, value: string, now: string, ttl: string) => Promise<number>
  readonly [Internal.SAVE_COMMAND]: (
    key: string,
    value: string,
    version: string,
    now: string,
    ttl: string
  ) => Promise<number>
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
 * `make` builds the store over a client the caller owns, standalone or `Cluster`, registering its two
 * scripts on it with `defineCommand`. The store never closes that client. Over a client from `connect` (with
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
  Effect.zipRight(checkOptions(options), makeChecked(client, options))

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

const makeChecked = (client: Redis | Cluster, options?: StoreOptions): Effect.Effect<SessionStore.Service> =>
  Effect.sync(() => {
    const prefix = options?.keyPrefix ?? DEFAULT_KEY_PREFIX
    const sender: Sender = {
      deadlines: options?.operationTimeout === undefined
        ? undefined
        : Internal.makeDeadlines(millis(options.operationTimeout, DEFAULT_COMMAND_TIMEOUT)),
      beforeSend: client instanceof Redis && batchedWrites.has(client) ? Internal.writeBatcher(client) : undefined
    }
    client.defineCommand(Internal.CREATE_COMMAND, { numberOfKeys: 1, lua: Internal.createScript })
    client.defineCommand(Internal.SAVE_COMMAND, { numberOfKeys: 1, lua: Internal.saveScript })
    const scripts = client as unknown as Scripts

    const backend: SessionStore.Backend = {
      name: "RedisStore",
      system: "redis",
      create: (record, json, now) =>
        call(
          sender,
          "create",
          () =>
            scripts[Internal.CREATE_COMMAND](
              prefix + record.id,
              Internal.encodeValue(record.version, record.expiresAt, json),
              String(now),
              String(Internal.ttlMillis(record.expiresAt, now))
            ),
          (reply) =>
            reply === Internal.Reply.Written ? Effect.succeed(record) : Effect.fail(scriptFailure("create", reply))
        ),
      save: (record, json, now) =>
        call(
          sender,
          "save",
          () =>
            scripts[Internal.SAVE_COMMAND](
              prefix + record.id,
              Internal.encodeValue(record.version + 1, record.expiresAt, json),
              String(record.version),
              String(now),
              String(Internal.ttlMillis(record.expiresAt, now))
            ),
          (reply) =>
            reply === Internal.Reply.Written
              ? Effect.succeed({
                id: record.id,
                data: record.data,
                expiresAt: record.expiresAt,
                version: record.version + 1
              })
              : Effect.fail(scriptFailure("save", reply))
        ),
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
      delete: (id: SessionId) => call(sender, "delete", () => client.unlink(prefix + id), () => Effect.void)
    }
    return SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans })
  })

/**
 * `layerClient` provides the store over a client the app owns and closes itself. See `make` for the
 * retry-queue risk of ioredis's defaults.
 *
 * @since 0.1.0
 */
export const layerClient = (
  client: Redis | Cluster,
  options?: StoreOptions
): Layer.Layer<SessionStore.SessionStore, StoreError.StoreConfigError> =>
  Layer.effect(SessionStore.SessionStore, make(client, options))

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
 * `layer` connects to a standalone Redis and provides the store; the connection is closed when the layer is
 * released. Construction fails with `StoreConfigError` on a refused option (before connecting) and with
 * `Unavailable` when Redis cannot be reached.
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<SessionStore.SessionStore, StoreError.StoreError | StoreError.StoreConfigError> =>
  Layer.scoped(
    SessionStore.SessionStore,
    Effect.zipRight(
      checkOptions(options),
      Effect.flatMap(connect(options), (client) => make(client, withDeadline(options ?? {})))
    )
  )

/**
 * `layerCluster` connects to a Redis Cluster and provides the store; the client is closed when the layer is
 * released. Construction fails with `StoreConfigError` on a refused option, before connecting.
 *
 * @since 0.1.0
 */
export const layerCluster = (
  options: ClusterOptions
): Layer.Layer<SessionStore.SessionStore, StoreError.StoreError | StoreError.StoreConfigError> =>
  Layer.scoped(
    SessionStore.SessionStore,
    Effect.zipRight(
      checkOptions(options),
      Effect.flatMap(connectCluster(options), (client) => make(client, withDeadline(options)))
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
  SessionStore.SessionStore,
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
