/**
 * RedisStore on a real Redis Cluster: three `redis-server --cluster-enabled yes` masters on loopback,
 * started for this file and torn down after it.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SessionData, SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { runContractSuite } from "effect-sessions/testing"
import { Cluster } from "ioredis"
import { countPrefix, freshRecord, race, shiftedClock, startCluster, uniquePrefix } from "./support/redis.js"

const cluster = await startCluster()
afterAll(() => cluster.stop())

const prefix = uniquePrefix("cluster")
const StoreLive = RedisStore.layerCluster({ nodes: cluster.nodes, keyPrefix: prefix, commandTimeout: "2 seconds" })

describe("RedisStore on a 3-master Redis Cluster", () => {
  runContractSuite("contract", RedisStore.layerCluster({ nodes: cluster.nodes }), { live: true })

  it.live("sessions spread over every master, and each one loads back", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const records = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => freshRecord({ i })),
        (r) => store.create(r),
        { concurrency: 16 }
      )
      for (const record of records) {
        assert.deepStrictEqual(Option.getOrThrow(yield* store.load(record.id)), record)
      }
      const client = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })))
      const perMaster = yield* Effect.promise(async () => {
        await new Promise<void>((resolve) => client.once("ready", () => resolve()))
        const counts = await Promise.all(client.nodes("master").map((node) => countPrefix(node, prefix)))
        await client.quit()
        return counts
      })
      assert.strictEqual(perMaster.length, 3)
      assert.strictEqual(perMaster.reduce((a, b) => a + b, 0), 60)
      for (const count of perMaster) assert.isAbove(count, 0)
      yield* Effect.forEach(records, (r) => store.delete(r.id), { discard: true })
    }).pipe(Effect.provide(StoreLive)))

  it.live("100 concurrent creates of one id, then 50 concurrent saves: one winner each", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const base = freshRecord({})
      const creates = yield* race(100, (i) => store.create({ ...base, data: SessionData.fromEntries([["writer", i]]) }))
      assert.strictEqual(creates.winners.length, 1)
      assert.deepStrictEqual(creates.reasons, ["Collision"])
      const created = Option.getOrThrow(yield* store.load(base.id))
      const saves = yield* race(50, (i) => store.save({ ...created, data: SessionData.fromEntries([["saver", i]]) }))
      assert.strictEqual(saves.winners.length, 1)
      assert.deepStrictEqual(saves.reasons, ["Conflict"])
      const stored = Option.getOrThrow(yield* store.load(base.id))
      assert.strictEqual(stored.version, 2)
      assert.strictEqual(stored.data.saver, saves.winners[0])
      // a shifted Clock judges expiry on the cluster as well
      const later = shiftedClock(base.expiresAt - Date.now() + 1_000)
      assert.isTrue(Option.isNone(yield* store.load(base.id).pipe(Effect.withClock(later))))
      yield* store.delete(base.id)
      assert.isTrue(Option.isNone(yield* store.load(base.id)))
    }).pipe(Effect.provide(StoreLive)))
})
