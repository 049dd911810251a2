/**
 * One app instance for the cross-process invalidation tests, in its own process
 * (`node --import tsx test/support/instance.ts`, started by `instances.ts`): a `CachingStore` (an `LruStore`
 * over the persistent store) with an invalidation channel, each with its own connections to the real servers.
 *
 * Configuration, from the environment: `INSTANCE_STORE` (`redis` or `pg`), `INSTANCE_CHANNEL` (`redis` or
 * `pg`), `INSTANCE_REDIS_URL` (the channel's Redis), `INSTANCE_KEY_PREFIX` / `INSTANCE_TABLE` (the store's),
 * `INSTANCE_CHANNEL_NAME`, `INSTANCE_MAX_STALENESS_MS`.
 *
 * Over IPC it answers `{ type: "op", n, op, ... }` with `{ type: "result", n, ... }` (plus the count of loads
 * that reached the persistent store), and reports every event of its channel as `{ type: "event", tag, ids }`,
 * after the caching store has applied it: the parent waits on these receipts, never on a timer.
 */
import { PgClient } from "@effect/sql-pg"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as CachingStore from "../../src/CachingStore.js"
import * as Invalidation from "../../src/Invalidation.js"
import * as LruStore from "../../src/LruStore.js"
import * as RedisStore from "../../src/RedisStore.js"
import * as SessionData from "../../src/SessionData.js"
import type { SessionId } from "../../src/SessionId.js"
import type { SessionRecord } from "../../src/SessionRecord.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SqlStore from "../../src/SqlStore.js"
import type * as StoreError from "../../src/StoreError.js"

/** A record as it crosses the IPC channel. */
export interface WireRecord {
  readonly id: string
  readonly data: Record<string, unknown>
  readonly expiresAt: number
  readonly version: number
}

export type Op =
  | { readonly op: "create" | "save"; readonly record: WireRecord }
  | { readonly op: "load" | "delete"; readonly id: string }

export interface Result {
  readonly type: "result"
  readonly n: number
  /** The record a create, save or load returned (`null` for none or for a delete). */
  readonly record: WireRecord | null
  /** The failure's reason, if the operation failed. */
  readonly error: string | null
  /** Loads that reached the persistent store since the instance started. */
  readonly storeLoads: number
}

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

const toWire = (record: SessionRecord): WireRecord => ({
  id: record.id,
  data: { ...record.data },
  expiresAt: record.expiresAt,
  version: record.version
})

const fromWire = (record: WireRecord): SessionRecord => ({
  id: record.id as SessionId,
  data: SessionData.fromEntries(Object.entries(record.data) as Array<[string, SessionData.JsonValue]>),
  expiresAt: record.expiresAt,
  version: record.version
})

const send = (message: object): void => {
  process.send?.(message)
}

const main = async () => {
  const pg = PgClient.layer({
    host: process.env.PGHOST ?? "127.0.0.1",
    port: Number(process.env.PGPORT ?? 5432),
    username: process.env.PGUSER ?? "postgres",
    database: process.env.PGDATABASE ?? "test",
    maxConnections: 4
  })
  const redisUrl = Redacted.make(
    `redis://${process.env.REDIS_HOST ?? "127.0.0.1"}:${process.env.REDIS_PORT ?? 6379}`
  )
  const persistent: Layer.Layer<SessionStore.SessionStore, unknown> = env("INSTANCE_STORE") === "redis"
    ? RedisStore.layer({ url: redisUrl, keyPrefix: env("INSTANCE_KEY_PREFIX") })
    : SqlStore.layer({ table: env("INSTANCE_TABLE") }).pipe(Layer.provide(pg))
  const channelName = env("INSTANCE_CHANNEL_NAME")
  const fast = { heartbeat: "100 millis", heartbeatTimeout: "600 millis" } as const
  const channel: Layer.Layer<Invalidation.Invalidation, unknown> = env("INSTANCE_CHANNEL") === "redis"
    ? RedisStore.layerInvalidation({
      url: Redacted.make(env("INSTANCE_REDIS_URL")),
      channel: channelName,
      ...fast
    })
    : SqlStore.layerInvalidation({ channel: channelName, ...fast }).pipe(Layer.provide(pg))

  let storeLoads = 0
  const counted = Layer.map(persistent, (context) => {
    const store = Context.get(context, SessionStore.SessionStore)
    return Context.make(SessionStore.SessionStore, {
      ...store,
      load: (id) =>
        Effect.suspend(() => {
          storeLoads++
          return store.load(id)
        })
    })
  })
  const caching = CachingStore.layer({
    cache: LruStore.layer(),
    store: counted,
    maxStaleness: Number(env("INSTANCE_MAX_STALENESS_MS")),
    invalidation: channel
  })

  const scope = Effect.runSync(Scope.make())
  // `channel` appears twice in one build: the caching store and this process share one channel instance
  const context = await Effect.runPromise(Layer.buildWithScope(Layer.merge(caching, channel), scope))
  const store = Context.get(context, SessionStore.SessionStore)
  const invalidation = Context.get(context, Invalidation.Invalidation)
  // subscribed after the caching store: when this listener hears an event, the caching store has applied it
  await Effect.runPromise(Scope.extend(
    invalidation.subscribe((event) =>
      send({ type: "event", tag: event._tag, ids: event._tag === "Invalidated" ? event.ids : [] })
    ),
    scope
  ))

  const run = (op: Op): Effect.Effect<SessionRecord | null, StoreError.StoreError> => {
    switch (op.op) {
      case "create":
        return store.create(fromWire(op.record))
      case "save":
        return store.save(fromWire(op.record))
      case "load":
        return Effect.map(store.load(op.id as SessionId), Option.getOrNull)
      case "delete":
        return Effect.as(store.delete(op.id as SessionId), null)
    }
  }

  process.on("message", (raw) => {
    const message = raw as { readonly type: string; readonly n: number } & Op
    if (message.type === "stop") {
      void Effect.runPromise(Scope.close(scope, Exit.void)).finally(() => process.exit(0))
      return
    }
    if (message.type !== "op") return
    void Effect.runPromiseExit(run(message)).then((exit) => {
      const result: Result = {
        type: "result",
        n: message.n,
        record: Exit.isSuccess(exit) && exit.value !== null ? toWire(exit.value) : null,
        error: Exit.isSuccess(exit)
          ? null
          : Option.match(Cause.failureOption(exit.cause), {
            onNone: () => "defect",
            onSome: (e) => e.reason
          }),
        storeLoads
      }
      send(result)
    })
  })
  send({ type: "ready", instanceId: invalidation.instanceId })
}

main().catch((error: unknown) =>
  Effect.runPromise(Effect.logError("instance failed to start", Cause.die(error))).finally(() => process.exit(1))
)
