/**
 * RedisStore on a real Redis Cluster: three `redis-server --cluster-enabled yes` masters on loopback,
 * started for this file and torn down after it.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { SessionData, SessionIndex, SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { Cluster } from "ioredis"
import { checkIndexRace } from "./support/indexRace.js"
import {
  boundData,
  countPrefix,
  freshRecord,
  freshUser,
  race,
  shiftedClock,
  startCluster,
  uniquePrefix
} from "./support/redis.js"

const cluster = await startCluster()
afterAll(() => cluster.stop())

const prefix = uniquePrefix("cluster")
const StoreLive = RedisStore.layerCluster({ nodes: cluster.nodes, keyPrefix: prefix, commandTimeout: "2 seconds" })

describe("RedisStore on a 3-master Redis Cluster", () => {
  runContractSuite("contract", RedisStore.layerCluster({ nodes: cluster.nodes }), { live: true })
  runIndexContractSuite(
    "index contract",
    RedisStore.layerCluster({ nodes: cluster.nodes, keyPrefix: uniquePrefix("index") }),
    {
      live: true
    }
  )

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

  describe("the index's order of writes (session key and user set in different slots)", () => {
    const indexPrefix = uniquePrefix("order")
    const IndexLive = RedisStore.layerCluster({ nodes: cluster.nodes, keyPrefix: indexPrefix })
    let raw: Cluster
    beforeAll(async () => {
      raw = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })))
      await new Promise<void>((resolve) => raw.once("ready", () => resolve()))
    })
    afterAll(() => raw.quit())
    const setKey = (userId: string) => `${indexPrefix}user:${SessionIndex.userKey(userId)}`
    const score = (userId: string, id: string) => Effect.promise(() => raw.zscore(setKey(userId), id))

    it.live("a create whose record write fails after the filing leaves a member: unlisted, kept through the grace, then pruned", () =>
      Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const index = yield* SessionIndex.SessionIndex
        const u = freshUser()
        const v = freshUser()
        // the record write is refused: a live session of another user holds the id
        const held = yield* store.create({ ...freshRecord({}, 3_600_000), data: boundData(v) })
        const clash = yield* Effect.flip(store.create({ ...held, data: boundData(u) }))
        assert.strictEqual(clash.reason, "Collision")
        // the record write fails: the key holds a hash, which then vanishes (so the record is missing)
        const lost = freshRecord({}, 3_600_000)
        yield* Effect.promise(() => raw.hset(indexPrefix + lost.id, "x", "1"))
        const failed = yield* Effect.flip(store.create({ ...lost, data: boundData(u) }))
        assert.strictEqual(failed.reason, "Decode")
        // the filing came first: both ids are members of u's set, and neither is listed
        assert.isNotNull(yield* score(u, held.id))
        assert.isNotNull(yield* score(u, lost.id))
        assert.deepStrictEqual(yield* index.list(u), [])
        yield* Effect.promise(() => raw.unlink(indexPrefix + lost.id))
        // within the grace a member might belong to a write in flight: kept
        assert.deepStrictEqual(yield* index.list(u), [])
        assert.isNotNull(yield* score(u, held.id))
        assert.isNotNull(yield* score(u, lost.id))
        // past it, list prunes both, and v's session is untouched
        const later = shiftedClock(Duration.toMillis(RedisStore.PRUNE_GRACE) + 1_000)
        assert.deepStrictEqual(yield* index.list(u).pipe(Effect.withClock(later)), [])
        assert.isNull(yield* score(u, held.id))
        assert.isNull(yield* score(u, lost.id))
        assert.deepStrictEqual((yield* index.list(v)).map((e) => e.id), [held.id])
        yield* store.delete(held.id)
      }).pipe(Effect.provide(IndexLive)))

    it.live("a save that moves a session leaves a stale member in the old user's set, which list and revoke skip", () =>
      Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const index = yield* SessionIndex.SessionIndex
        const u = freshUser()
        const v = freshUser()
        const created = yield* store.create({ ...freshRecord({}, 3_600_000), data: boundData(u) })
        yield* store.save({ ...created, data: boundData(v) })
        assert.isNotNull(yield* score(u, created.id))
        assert.deepStrictEqual(yield* index.list(u), [])
        assert.strictEqual(yield* index.revoke(u), 0)
        assert.isTrue(Option.isSome(yield* store.load(created.id)))
        assert.deepStrictEqual((yield* index.list(v)).map((e) => e.id), [created.id])
        assert.strictEqual(yield* index.revoke(v), 1)
        assert.isNull(yield* score(v, created.id))
      }).pipe(Effect.provide(IndexLive)))

    it.live("a filing drops the members filed longer ago than the longest TTL the set has seen, and the grace", () =>
      Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const u = freshUser()
        const old = yield* store.create({ ...freshRecord({}, 60_000), data: boundData(u) })
        // on a Cluster a delete leaves its member behind
        yield* store.delete(old.id)
        assert.isNotNull(yield* score(u, old.id))
        const longest = Number(yield* Effect.promise(() => raw.zscore(setKey(u), "!")))
        assert.isTrue(longest <= -59_000 && longest >= -60_000, `longest TTL filed: ${-longest}`)
        const shift = 60_000 + Duration.toMillis(RedisStore.PRUNE_GRACE) + 1_000
        const later = shiftedClock(shift)
        // a filing just within the grace keeps it
        const early = shiftedClock(shift - 2_000)
        const kept = { ...freshRecord({}, shift - 2_000 + 60_000), data: boundData(u) }
        yield* store.create(kept).pipe(Effect.withClock(early))
        assert.isNotNull(yield* score(u, old.id))
        const fresh = { ...freshRecord({}, shift + 60_000), data: boundData(u) }
        yield* store.create(fresh).pipe(Effect.withClock(later))
        assert.isNull(yield* score(u, old.id))
        assert.isNotNull(yield* score(u, kept.id))
        assert.isNotNull(yield* score(u, fresh.id))
        yield* store.delete(kept.id)
        yield* store.delete(fresh.id)
      }).pipe(Effect.provide(IndexLive)))

    it.live(
      "racing creates, failing creates, saves, deletes, lists and revokes never leave a live session unlisted",
      () => checkIndexRace("cluster").pipe(Effect.provide(IndexLive)),
      60_000
    )
  })
})
