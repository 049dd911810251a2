import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Option, TestClock } from "effect"
import type { StoreError } from "effect-sessions"
import { LruStore, SessionData, SessionStore } from "effect-sessions"
import { runContractSuite } from "effect-sessions/testing"
import { assertRefused, freshId } from "./support/services.js"

runContractSuite("LruStore contract", LruStore.layer())

const newRecord = (now: number, data: SessionData.SessionData = SessionData.fromEntries([["n", 1]]), ttl = 60_000) => ({
  id: freshId(),
  data,
  expiresAt: now + ttl,
  version: 1
})

const reasonOf = <A>(exit: Exit.Exit<A, StoreError.StoreError>): string | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => e.reason)) : undefined

describe("LruStore", () => {
  it.effect("judges expiry by the Clock, at exactly expiresAt, from a clock that starts at 0", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      assert.strictEqual(now, 0)
      const record = yield* store.create(newRecord(now, undefined, 1_000))
      yield* TestClock.adjust(999)
      assert.isTrue(Option.isSome(yield* store.load(record.id)))
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* store.load(record.id)))
      assert.strictEqual(reasonOf(yield* Effect.exit(store.save(record))), "Gone")
      // an expired record may be replaced by `create`
      const again = yield* store.create({ ...record, expiresAt: 5_000 })
      assert.deepStrictEqual(
        (yield* store.load(record.id)).pipe(Option.map((r) => r.version)),
        Option.some(again.version)
      )
      assert.strictEqual(yield* LruStore.size, 1)
    }).pipe(Effect.provide(LruStore.layer())))

  it.effect("never holds a record that is already expired (lru-cache reads ttl 0 as forever)", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      yield* TestClock.adjust(10_000)
      const now = yield* Clock.currentTimeMillis
      const atNow = yield* store.create(newRecord(now, undefined, 0))
      yield* store.create(newRecord(now, undefined, -5_000))
      assert.strictEqual(yield* LruStore.size, 0)
      assert.isTrue(Option.isNone(yield* store.load(atNow.id)))
      // a save that moves expiry into the past ends the session
      const live = yield* store.create(newRecord(now))
      yield* store.save({ ...live, expiresAt: now })
      assert.isTrue(Option.isNone(yield* store.load(live.id)))
      assert.strictEqual(yield* LruStore.size, 0)
    }).pipe(Effect.provide(LruStore.layer())))

  it.effect("ages entries by the Clock only: real time passing does not expire them", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const record = yield* store.create(newRecord(now, undefined, 20))
      // 60 ms of real time; the TestClock stands still, so the session is still live
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 60)))
      assert.isTrue(Option.isSome(yield* store.load(record.id)))
      yield* TestClock.adjust(20)
      assert.isTrue(Option.isNone(yield* store.load(record.id)))
    }).pipe(Effect.provide(LruStore.layer())))

  it.effect("keeps a far-future session across a year of Clock time", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const record = yield* store.create(newRecord(now, undefined, 10 * 365 * 86_400_000))
      yield* TestClock.adjust("365 days")
      assert.isTrue(Option.isSome(yield* store.load(record.id)))
    }).pipe(Effect.provide(LruStore.layer())))

  it.effect("evicts the least recently used session beyond maxEntries: it loads as none and saves as Gone", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const a = yield* store.create(newRecord(now))
      const b = yield* store.create(newRecord(now))
      yield* store.load(a.id) // a is now more recently used than b
      const c = yield* store.create(newRecord(now))
      assert.strictEqual(yield* LruStore.size, 2)
      assert.isTrue(Option.isNone(yield* store.load(b.id)))
      assert.strictEqual(reasonOf(yield* Effect.exit(store.save(b))), "Gone")
      assert.isTrue(Option.isSome(yield* store.load(a.id)))
      assert.isTrue(Option.isSome(yield* store.load(c.id)))
    }).pipe(Effect.provide(LruStore.layer({ maxEntries: 2 }))))

  it.effect("evicts by bytes beyond maxBytes and refuses a session that could never fit with Encode", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      // each entry: JSON {"s":"xxx…"} of 100 bytes + 64 bytes overhead = 164 bytes; 3 fit in 500
      const data = (fill: string) => SessionData.fromEntries([["s", fill.repeat(92)]])
      assert.strictEqual(JSON.stringify(data("x")).length, 100)
      const records = []
      for (const fill of ["a", "b", "c"]) records.push(yield* store.create(newRecord(now, data(fill))))
      assert.strictEqual(yield* LruStore.size, 3)
      const d = yield* store.create(newRecord(now, data("d")))
      assert.strictEqual(yield* LruStore.size, 3)
      assert.isTrue(Option.isNone(yield* store.load(records[0]!.id)))
      assert.isTrue(Option.isSome(yield* store.load(d.id)))
      // 437 bytes of JSON + 64 > 500: refused, and the stored version is untouched
      const huge = SessionData.fromEntries([["s", "z".repeat(429)]])
      assert.strictEqual(reasonOf(yield* Effect.exit(store.create(newRecord(now, huge)))), "Encode")
      assert.strictEqual(reasonOf(yield* Effect.exit(store.save({ ...d, data: huge }))), "Encode")
      const kept = yield* store.load(d.id)
      assert.isTrue(Option.isSome(kept) && kept.value.version === 1 && SessionData.equals(kept.value.data, data("d")))
      // 436 + 64 = 500 fits exactly
      const exact = SessionData.fromEntries([["s", "z".repeat(428)]])
      const big = yield* store.create(newRecord(now, exact))
      assert.isTrue(Option.isSome(yield* store.load(big.id)))
      assert.strictEqual(yield* LruStore.size, 1)
    }).pipe(Effect.provide(LruStore.layer({ maxBytes: 500 }))))

  it.effect("keeps its own copy of the data", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const data = SessionData.fromEntries([["list", [1, 2]]]) as Record<string, Array<number>>
      const record = yield* store.create(newRecord(now, data))
      data.list!.push(3)
      const loaded = yield* store.load(record.id)
      assert.isTrue(Option.isSome(loaded) && SessionData.equals(loaded.value.data, { list: [1, 2] }))
    }).pipe(Effect.provide(LruStore.layer())))

  it.effect("refuses options it cannot honour at construction, with a StoreConfigError", () =>
    Effect.gen(function*() {
      for (const options of [{ maxEntries: 0 }, { maxEntries: 1.5 }, { maxBytes: 10 }, { maxDataBytes: -1 }]) {
        yield* assertRefused(LruStore.make(options), "LruStore", Object.keys(options)[0])
      }
    }))
})
