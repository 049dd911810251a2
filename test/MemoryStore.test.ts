import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Option, TestClock } from "effect"
import { MemoryStore, SessionData, type SessionRecord, SessionStore } from "effect-sessions"
import { runContractSuite } from "effect-sessions/testing"
import { freshId } from "./support/services.js"

runContractSuite("MemoryStore contract", MemoryStore.layer())

/** Creates `n` sessions expiring `lifetime` ms from now. */
const createMany = (n: number, lifetime: number) =>
  Effect.gen(function*() {
    const store = yield* SessionStore.SessionStore
    const now = yield* Clock.currentTimeMillis
    const created: Array<SessionRecord.SessionRecord> = []
    for (let i = 0; i < n; i++) {
      created.push(
        yield* store.create({
          id: freshId(),
          data: SessionData.fromEntries([["i", i]]),
          expiresAt: now + lifetime,
          version: 1
        })
      )
    }
    return created
  })

/** Lets other fibers run until `size` is `expected`, at most `rounds` times. */
const settle = (expected: number, rounds = 10_000) =>
  Effect.gen(function*() {
    let size = yield* MemoryStore.size
    for (let i = 0; i < rounds && size !== expected; i++) {
      yield* Effect.yieldNow()
      size = yield* MemoryStore.size
    }
    return size
  })

describe("MemoryStore", () => {
  it.effect(
    "sheds 100,000 expired sessions on its own once the sweep interval has passed",
    () =>
      Effect.gen(function*() {
        yield* createMany(100_000, 1_000)
        assert.strictEqual(yield* MemoryStore.size, 100_000)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* MemoryStore.size, 100_000, "nothing is swept before the interval")
        yield* TestClock.adjust("60 seconds")
        assert.strictEqual(yield* settle(0), 0)
      }).pipe(Effect.provide(MemoryStore.layer({ spans: false }))),
    60_000
  ) // spans only slow the 100,000 creates

  it.effect("the sweep keeps live sessions, and follows sweepInterval", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      yield* createMany(2_500, 1_000)
      const live = yield* createMany(10, 60_000)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* settle(10), 10)
      for (const record of live) {
        const found = yield* store.load(record.id)
        assert.isTrue(Option.isSome(found) && SessionData.equals(found.value.data, record.data))
      }
    }).pipe(Effect.provide(MemoryStore.layer({ sweepInterval: "5 seconds", batchSize: 100 }))))

  it.effect("creates shed expired sessions between sweeps", () =>
    Effect.gen(function*() {
      yield* createMany(10, 1_000)
      yield* TestClock.adjust("2 seconds")
      yield* createMany(10, 60_000)
      assert.strictEqual(yield* MemoryStore.size, 10)
    }).pipe(Effect.provide(MemoryStore.layer({ sweepInterval: "1 hour" }))))

  it.effect("deleteExpired removes the expired sessions in batches and returns the count", () =>
    Effect.gen(function*() {
      const deletion = yield* SessionStore.ExpiredDeletion
      yield* createMany(2_345, 1_000)
      yield* createMany(7, 60_000)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* deletion.deleteExpired({ batchSize: 100 }), 2_345)
      assert.strictEqual(yield* MemoryStore.size, 7)
      assert.strictEqual(yield* deletion.deleteExpired(), 0)
    }).pipe(Effect.provide(MemoryStore.layer({ sweepInterval: "1 hour" }))))

  it.effect("keeps the JSON, not the caller's object: later mutations on either side never leak in", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const user: Record<string, SessionData.JsonValue> = { name: "Ada", roles: ["admin"] }
      const data = SessionData.fromEntries([["user", user]])
      const id = freshId()
      yield* store.create({ id, data, expiresAt: now + 60_000, version: 1 })
      user.name = "Mallory"
      ;(data as Record<string, SessionData.JsonValue>).extra = true
      const first = yield* store.load(id)
      assert.isTrue(Option.isSome(first))
      if (Option.isNone(first)) return
      assert.isTrue(SessionData.equals(first.value.data, { user: { name: "Ada", roles: ["admin"] } }))
      ;((first.value.data.user as Record<string, SessionData.JsonValue>).roles as Array<string>).push("root")
      const second = yield* store.load(id)
      assert.isTrue(
        Option.isSome(second) && SessionData.equals(second.value.data, { user: { name: "Ada", roles: ["admin"] } })
      )
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.effect("size counts held entries, expired ones not yet swept included", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      assert.strictEqual(yield* MemoryStore.size, 0)
      const [a] = yield* createMany(3, 1_000)
      assert.strictEqual(yield* MemoryStore.size, 3)
      yield* store.delete(a.id)
      assert.strictEqual(yield* MemoryStore.size, 2)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* MemoryStore.size, 2)
      const service = yield* MemoryStore.MemoryStore
      assert.strictEqual(yield* service.size, 2)
    }).pipe(Effect.provide(MemoryStore.layer({ sweepInterval: "1 hour" }))))

  it.scoped("make works without the layer, with its sweep bound to the scope", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make({ sweepInterval: "1 second" })
      const now = yield* Clock.currentTimeMillis
      const id = freshId()
      yield* memory.store.create({ id, data: SessionData.empty(), expiresAt: now + 500, version: 1 })
      assert.strictEqual(yield* memory.size, 1)
      yield* TestClock.adjust("1 second")
      let size = yield* memory.size
      for (let i = 0; i < 100 && size !== 0; i++) {
        yield* Effect.yieldNow()
        size = yield* memory.size
      }
      assert.strictEqual(size, 0)
    }))
})
