/**
 * One policy for bad options: every store's `make` and layers refuse them with a `StoreConfigError` of reason
 * `InvalidOption` that names the store and the option, before the store touches its backend.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Redacted } from "effect"
import { CachingStore, LruStore, MemoryStore, StoreError } from "effect-sessions"
import * as MongoStore from "effect-sessions/MongoStore"
import * as RedisStore from "effect-sessions/RedisStore"
import * as SqlStore from "effect-sessions/SqlStore"
import { Redis } from "ioredis"
import { MongoClient } from "mongodb"
import { assertLayerRefused, assertRefused } from "./support/services.js"
import { sqlite, withClient } from "./support/sql.js"

/** An address where nothing listens: a store that tried to connect would fail with `Unavailable` instead. */
const nowhere = "127.0.0.1:1"

describe("StoreConfigError", () => {
  it("invalidOption names the store, the option and why", () => {
    const error = StoreError.invalidOption("LruStore", "maxEntries", "maxEntries must be a positive integer")
    assert.strictEqual(error._tag, "StoreConfigError")
    assert.strictEqual(error.reason, "InvalidOption")
    assert.strictEqual(error.option, "maxEntries")
    assert.strictEqual(error.message, "LruStore: maxEntries must be a positive integer")
    assert.isTrue(StoreError.isStoreConfigError(error))
    assert.isFalse(StoreError.isStoreError(error))
  })

  it.scoped("MemoryStore refuses maxDataBytes, batchSize and sweepInterval it cannot honour", () =>
    Effect.gen(function*() {
      yield* assertRefused(MemoryStore.make({ maxDataBytes: 0 }), "MemoryStore", "maxDataBytes")
      yield* assertRefused(MemoryStore.make({ batchSize: 1.5 }), "MemoryStore", "batchSize")
      yield* assertRefused(MemoryStore.make({ batchSize: -1 }), "MemoryStore", "batchSize")
      yield* assertRefused(MemoryStore.make({ sweepInterval: 0 }), "MemoryStore", "sweepInterval")
      yield* assertLayerRefused(
        MemoryStore.layer({ sweepInterval: "soon" as Duration.DurationInput }),
        "MemoryStore",
        "sweepInterval"
      )
      // an infinite interval is honoured: the background sweep never runs
      yield* MemoryStore.make({ sweepInterval: Duration.infinity })
    }))

  it.effect("LruStore refuses sizes it cannot honour, through make and layer", () =>
    Effect.gen(function*() {
      yield* assertRefused(LruStore.make({ maxEntries: 0 }), "LruStore", "maxEntries")
      yield* assertRefused(LruStore.make({ maxEntries: 1.5 }), "LruStore", "maxEntries")
      yield* assertRefused(LruStore.make({ maxBytes: 10 }), "LruStore", "maxBytes")
      yield* assertRefused(LruStore.make({ maxDataBytes: -1 }), "LruStore", "maxDataBytes")
      yield* assertLayerRefused(LruStore.layer({ maxEntries: Number.NaN }), "LruStore", "maxEntries")
    }))

  it.effect("CachingStore refuses a maxStaleness that is not a finite duration, before it builds its layers", () =>
    Effect.gen(function*() {
      let built = 0
      const counted = Layer.effectDiscard(Effect.sync(() => built++))
      const cache = Layer.provideMerge(LruStore.layer(), counted)
      const store = Layer.provideMerge(MemoryStore.layer(), counted)
      const soon = "soon" as Duration.DurationInput
      yield* assertLayerRefused(
        CachingStore.layer({ cache, store, maxStaleness: soon }),
        "CachingStore",
        "maxStaleness"
      )
      yield* assertLayerRefused(
        CachingStore.layer({ cache, store, maxStaleness: Duration.infinity }),
        "CachingStore",
        "maxStaleness"
      )
      assert.strictEqual(built, 0)
      const services = yield* Effect.scoped(
        Effect.all([LruStore.make(), Effect.map(MemoryStore.make(), (m) => m.store)])
      )
      yield* assertRefused(
        CachingStore.make({ cache: services[0].store, store: services[1], maxStaleness: soon }),
        "CachingStore",
        "maxStaleness"
      )
    }))

  it.scoped("SqlStore refuses maxDataBytes it cannot honour, and its other options as before", () =>
    Effect.gen(function*() {
      const client = yield* sqlite(":memory:").client
      yield* assertRefused(withClient(client, SqlStore.make({ maxDataBytes: 0 })), "SqlStore", "maxDataBytes")
      yield* assertRefused(withClient(client, SqlStore.make({ table: "a b" })), "SqlStore", "table")
      yield* assertRefused(withClient(client, SqlStore.make({ schema: "auth" })), "SqlStore", "schema")
      yield* assertRefused(
        withClient(client, SqlStore.make({ reservedConnections: 1 })),
        "SqlStore",
        "reservedConnections"
      )
    }))

  it.effect("RedisStore refuses bad options in every layer and in make, before it connects", () =>
    Effect.gen(function*() {
      const url = Redacted.make(`redis://${nowhere}`)
      yield* assertLayerRefused(RedisStore.layer({ url, commandTimeout: 0 }), "RedisStore", "commandTimeout")
      yield* assertLayerRefused(
        RedisStore.layer({ url, connectTimeout: Duration.infinity }),
        "RedisStore",
        "connectTimeout"
      )
      yield* assertLayerRefused(
        RedisStore.layer({ url, operationTimeout: "soon" as Duration.DurationInput }),
        "RedisStore",
        "operationTimeout"
      )
      yield* assertLayerRefused(RedisStore.layer({ url, maxDataBytes: 0 }), "RedisStore", "maxDataBytes")
      yield* assertLayerRefused(
        RedisStore.layer({ url, keyPrefix: 7 as unknown as string }),
        "RedisStore",
        "keyPrefix"
      )
      yield* assertLayerRefused(RedisStore.layerCluster({ nodes: [] }), "RedisStore", "nodes")
      yield* assertLayerRefused(
        RedisStore.layerCluster({ nodes: [{ host: "127.0.0.1", port: 1 }], commandTimeout: -5 }),
        "RedisStore",
        "commandTimeout"
      )
      const client = new Redis({ lazyConnect: true, port: 1 })
      yield* assertLayerRefused(RedisStore.layerClient(client, { maxDataBytes: 2.5 }), "RedisStore", "maxDataBytes")
      yield* assertRefused(RedisStore.make(client, { operationTimeout: 0 }), "RedisStore", "operationTimeout")
      assert.strictEqual(client.status, "wait") // never asked to connect
      client.disconnect()
    }))

  it.effect("MongoStore refuses bad options in every layer and in make, before it touches the server", () =>
    Effect.gen(function*() {
      const url = Redacted.make(`mongodb://${nowhere}`)
      yield* assertLayerRefused(MongoStore.layer({ url, collection: "" }), "MongoStore", "collection")
      yield* assertLayerRefused(MongoStore.layer({ url, database: "" }), "MongoStore", "database")
      yield* assertLayerRefused(MongoStore.layer({ url, maxDataBytes: 0 }), "MongoStore", "maxDataBytes")
      yield* assertLayerRefused(
        MongoStore.layer({ url, ttlGrace: "soon" as Duration.DurationInput }),
        "MongoStore",
        "ttlGrace"
      )
      yield* assertLayerRefused(
        MongoStore.layer({ url, serverSelectionTimeout: 0 }),
        "MongoStore",
        "serverSelectionTimeout"
      )
      yield* assertLayerRefused(
        MongoStore.layer({ url, socketTimeout: Duration.infinity }),
        "MongoStore",
        "socketTimeout"
      )
      const client = new MongoClient(Redacted.value(url), { serverSelectionTimeoutMS: 500 })
      const db = client.db("test")
      yield* assertLayerRefused(
        MongoStore.layerDb(db, { collection: 5 as unknown as string }),
        "MongoStore",
        "collection"
      )
      yield* assertRefused(MongoStore.make(db, { ttlGrace: Duration.infinity }), "MongoStore", "ttlGrace")
      yield* Effect.promise(() => client.close())
    }))
})
