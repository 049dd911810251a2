import { afterAll, assert, beforeAll, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import type { StoreError } from "effect-sessions"
import { SessionData, SessionIndex, SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { Redis } from "ioredis"
import { checkIndexRace } from "./support/indexRace.js"
import {
  boundData,
  deletePrefix,
  freshRecord,
  freshUser,
  race,
  shiftedClock,
  uniquePrefix,
  unreachable
} from "./support/redis.js"
import { describeService, env } from "./support/services.js"

const url = `redis://${env.redisHost}:${env.redisPort}`

await describeService("RedisStore (standalone)", env.redisHost, env.redisPort, () => {
  const prefix = uniquePrefix("redis")
  let raw: Redis
  beforeAll(() => {
    raw = new Redis(url)
  })
  afterAll(async () => {
    await deletePrefix(raw, prefix)
    await raw.quit()
  })

  const StoreLive = RedisStore.layer({ url: Redacted.make(url), keyPrefix: prefix })

  runContractSuite("contract", StoreLive, { live: true })
  runIndexContractSuite("index contract", StoreLive, { live: true })
  const withStore = <A, E>(f: (store: SessionStore.Service) => Effect.Effect<A, E>) =>
    Effect.flatMap(SessionStore.SessionStore, f).pipe(Effect.provide(StoreLive))

  it.live("create stores version:expiresAt:json with a Redis TTL matching the expiry within 1 s", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const record = freshRecord({ user: "ada", n: 1 }, 120_000)
        const created = yield* store.create(record)
        assert.deepStrictEqual(created, record)
        const key = prefix + record.id
        const value = yield* Effect.promise(() => raw.get(key))
        assert.strictEqual(value, `1:${record.expiresAt}:{"user":"ada","n":1}`)
        const pttl = yield* Effect.promise(() => raw.pttl(key))
        assert.isAtMost(Math.abs(pttl - (record.expiresAt - Date.now())), 1_000)
        const loaded = yield* store.load(record.id)
        assert.isTrue(Option.isSome(loaded))
        assert.deepStrictEqual(Option.getOrThrow(loaded), record)

        const saved = yield* store.save({ ...record, expiresAt: record.expiresAt + 600_000 })
        assert.strictEqual(saved.version, 2)
        const pttlAfterSave = yield* Effect.promise(() => raw.pttl(key))
        assert.isAtMost(Math.abs(pttlAfterSave - (saved.expiresAt - Date.now())), 1_000)
      })
    ))

  it.live("1,000 concurrent creates of one id give exactly one success", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const base = freshRecord({})
        const { reasons, winners } = yield* race(
          1_000,
          (i) => store.create({ ...base, data: SessionData.fromEntries([["writer", i]]) })
        )
        assert.strictEqual(winners.length, 1)
        assert.deepStrictEqual(reasons, ["Collision"])
        const stored = Option.getOrThrow(yield* store.load(base.id))
        assert.strictEqual(stored.data.writer, winners[0])
        assert.strictEqual(stored.version, 1)
      })
    ))

  it.live("50 concurrent compare-and-set saves of one version give one winner", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const record = yield* store.create(freshRecord({ writer: -1 }))
        const { reasons, winners } = yield* race(
          50,
          (i) => store.save({ ...record, data: SessionData.fromEntries([["writer", i]]) })
        )
        assert.strictEqual(winners.length, 1)
        assert.deepStrictEqual(reasons, ["Conflict"])
        const stored = Option.getOrThrow(yield* store.load(record.id))
        assert.strictEqual(stored.version, 2)
        assert.strictEqual(stored.data.writer, winners[0])
      })
    ))

  it.live("with the Clock shifted past the expiry, load returns none although Redis still holds the key", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const record = yield* store.create(freshRecord({ user: "ada" }, 60_000))
        const key = prefix + record.id
        const later = shiftedClock(61_000)

        const loaded = yield* store.load(record.id).pipe(Effect.withClock(later))
        assert.isTrue(Option.isNone(loaded))
        assert.strictEqual(yield* Effect.promise(() => raw.exists(key)), 1)

        // save judges by the same clock: the record is gone for it, and nothing is written
        const saved = yield* Effect.flip(store.save(record).pipe(Effect.withClock(later)))
        assert.strictEqual(saved.reason, "Gone")
        assert.strictEqual(yield* Effect.promise(() => raw.get(key)), `1:${record.expiresAt}:{"user":"ada"}`)

        // ... while create may replace the expired record
        const replacement = {
          ...record,
          data: SessionData.fromEntries([["user", "bob"]]),
          expiresAt: record.expiresAt + 120_000
        }
        yield* store.create(replacement).pipe(Effect.withClock(later))
        const reloaded = yield* store.load(record.id).pipe(Effect.withClock(later))
        assert.strictEqual(Option.getOrThrow(reloaded).data.user, "bob")
        // the TTL was set relative to the shifted clock: about 60 s ahead of the real one, not 121 s
        const pttl = yield* Effect.promise(() => raw.pttl(key))
        assert.isAtMost(Math.abs(pttl - (replacement.expiresAt - Date.now() - 61_000)), 1_000)
      })
    ))

  it.live("a record past its Redis TTL vanishes without any cleanup job", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const record = yield* store.create(freshRecord({ user: "ada" }, 300))
        assert.strictEqual(yield* Effect.promise(() => raw.exists(prefix + record.id)), 1)
        yield* Effect.sleep("600 millis")
        assert.strictEqual(yield* Effect.promise(() => raw.exists(prefix + record.id)), 0)
        assert.isTrue(Option.isNone(yield* store.load(record.id)))
      })
    ))

  it.live("save never inserts: Gone after delete, and delete is idempotent", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const record = yield* store.create(freshRecord({ user: "ada" }))
        yield* store.delete(record.id)
        yield* store.delete(record.id)
        const error = yield* Effect.flip(store.save(record))
        assert.strictEqual(error.reason, "Gone")
        assert.strictEqual(yield* Effect.promise(() => raw.exists(prefix + record.id)), 0)
        assert.isTrue(Option.isNone(yield* store.load(record.id)))
      })
    ))

  it.live("a malformed or foreign value is Decode for that session only, and errors name no id or data", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const garbage = freshRecord({})
        const wrongType = freshRecord({})
        const badJson = freshRecord({})
        const good = yield* store.create(freshRecord({ secret: "s3cr3t-value" }))
        yield* Effect.promise(() => raw.set(prefix + garbage.id, "not a session", "PX", 60_000))
        yield* Effect.promise(() => raw.hset(prefix + wrongType.id, "v", "1"))
        yield* Effect.promise(() => raw.pexpire(prefix + wrongType.id, 60_000))
        yield* Effect.promise(() => raw.set(prefix + badJson.id, `1:${badJson.expiresAt}:{oops`, "PX", 60_000))

        const errors: Array<StoreError.StoreError> = []
        for (const id of [garbage.id, wrongType.id, badJson.id]) {
          errors.push(yield* Effect.flip(store.load(id)))
        }
        errors.push(yield* Effect.flip(store.save(garbage)))
        errors.push(yield* Effect.flip(store.create(garbage)))
        errors.push(yield* Effect.flip(store.save(wrongType)))
        errors.push(yield* Effect.flip(store.create(wrongType)))
        for (const error of errors) {
          assert.strictEqual(error.reason, "Decode")
        }
        // nothing was overwritten
        assert.strictEqual(yield* Effect.promise(() => raw.get(prefix + garbage.id)), "not a session")
        assert.strictEqual(yield* Effect.promise(() => raw.type(prefix + wrongType.id)), "hash")
        // other sessions are unaffected
        assert.isTrue(Option.isSome(yield* store.load(good.id)))

        const collision = yield* Effect.flip(store.create(good))
        assert.strictEqual(collision.reason, "Collision")
        for (const error of [...errors, collision]) {
          const text = `${error.message} ${String(error.cause)} ${JSON.stringify(error.cause)}`
          for (const secret of [garbage.id, wrongType.id, badJson.id, good.id, prefix, "s3cr3t-value", "oops"]) {
            assert.notInclude(text, secret)
          }
        }
      })
    ))

  it.live("layerClient serves over the app's own client and leaves it open on release", () =>
    Effect.gen(function*() {
      const client = new Redis(url)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
      const record = freshRecord({ user: "ada" })
      yield* Effect.flatMap(SessionStore.SessionStore, (store) => store.create(record)).pipe(
        Effect.provide(RedisStore.layerClient(client, { keyPrefix: prefix }))
      )
      assert.strictEqual(client.status, "ready")
      const loaded = yield* Effect.flatMap(SessionStore.SessionStore, (store) => store.load(record.id)).pipe(
        Effect.provide(RedisStore.layerClient(client, { keyPrefix: prefix }))
      )
      assert.deepStrictEqual(Option.getOrThrow(loaded), record)
    }).pipe(Effect.scoped))

  it.live("layerConfig reads the URL as a redacted config value", () =>
    Effect.gen(function*() {
      const record = freshRecord({ user: "ada" })
      const Live = RedisStore.layerConfig({
        url: Config.redacted("REDIS_URL"),
        keyPrefix: Config.string("REDIS_PREFIX")
      }).pipe(
        Layer.provide(
          Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", url], ["REDIS_PREFIX", prefix]])))
        )
      )
      yield* Effect.flatMap(SessionStore.SessionStore, (store) => store.create(record)).pipe(Effect.provide(Live))
      assert.strictEqual(yield* Effect.promise(() => raw.exists(prefix + record.id)), 1)
    }))

  it.live("the connection is closed when the layer is released", () =>
    Effect.gen(function*() {
      const client = yield* Effect.scoped(RedisStore.connect({ url: Redacted.make(url) }))
      assert.strictEqual(client.status, "end")
    }))

  it.live("an unreachable Redis fails construction with Unavailable, within the timeouts", () =>
    unreachable((port) =>
      RedisStore.layer({
        url: Redacted.make(`redis://127.0.0.1:${port}`),
        connectTimeout: "1 second",
        commandTimeout: "1 second"
      })
    ))

  it.live("a bound session's value names its user key; its user's set follows create, save and delete", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const index = yield* SessionIndex.SessionIndex
      const u = freshUser()
      const v = freshUser()
      const setKey = (userId: string) => `${prefix}user:${SessionIndex.userKey(userId)}`
      // the set's own bookkeeping member ("!", the longest TTL filed) is no session
      const members = (userId: string) =>
        Effect.map(Effect.promise(() => raw.zrange(setKey(userId), 0, -1)), (ids) => ids.filter((m) => m !== "!"))
      const record = { ...freshRecord({}, 120_000), data: boundData(u) }
      yield* store.create(record)
      const value = yield* Effect.promise(() => raw.get(prefix + record.id))
      assert.isTrue(value!.startsWith(`1:${record.expiresAt}:${SessionIndex.userKey(u)}:{`))
      assert.deepStrictEqual(yield* members(u), [record.id])
      const pttl = yield* Effect.promise(() => raw.pttl(setKey(u)))
      assert.isAtLeast(pttl, 110_000)
      // standalone, one script moves the member with the write
      const saved = yield* store.save({ ...record, data: boundData(v) })
      assert.deepStrictEqual(yield* members(u), [])
      assert.deepStrictEqual(yield* members(v), [record.id])
      yield* store.save({ ...saved, data: SessionData.fromEntries([["n", 1]]) })
      assert.deepStrictEqual(yield* members(v), [])
      const other = yield* store.create({ ...freshRecord({}, 120_000), data: boundData(u) })
      yield* store.delete(other.id)
      assert.deepStrictEqual(yield* members(u), [])
      assert.deepStrictEqual(yield* index.list(u), [])
      yield* store.delete(record.id)
    }).pipe(Effect.provide(StoreLive)))

  it.live("a member whose record vanished or is corrupt is skipped by list and pruned at once", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const index = yield* SessionIndex.SessionIndex
      const u = freshUser()
      const setKey = `${prefix}user:${SessionIndex.userKey(u)}`
      const kept = yield* store.create({ ...freshRecord({}, 120_000), data: boundData(u) })
      const vanished = yield* store.create({ ...freshRecord({}, 120_000), data: boundData(u) })
      const corrupt = yield* store.create({ ...freshRecord({}, 120_000), data: boundData(u) })
      yield* Effect.promise(() => raw.unlink(prefix + vanished.id))
      yield* Effect.promise(() => raw.set(prefix + corrupt.id, "not a record"))
      assert.deepStrictEqual((yield* index.list(u)).map((e) => e.id), [kept.id])
      assert.deepStrictEqual(yield* Effect.promise(() => raw.zrange(setKey, 0, -1)), ["!", kept.id])
      yield* Effect.promise(() => raw.unlink(prefix + corrupt.id))
      yield* store.delete(kept.id)
    }).pipe(Effect.provide(StoreLive)))

  it.live(
    "racing creates, failing creates, saves, deletes, lists and revokes never leave a live session unlisted",
    () => checkIndexRace("standalone").pipe(Effect.provide(StoreLive)),
    60_000
  )
})
