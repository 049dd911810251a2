import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import type { SessionRecord, StoreError } from "effect-sessions"
import {
  CachingStore,
  LruStore,
  MemoryStore,
  SessionData,
  SessionId,
  SessionStore,
  SessionToken
} from "effect-sessions"
import { runContractSuite } from "effect-sessions/testing"
import { counting } from "./support/countingStore.js"
import { assertLayerRefused } from "./support/services.js"

runContractSuite(
  "CachingStore (LruStore over MemoryStore) contract",
  CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer() })
)

const MAX_STALENESS = 5_000

/**
 * A caching store over a memory store, both wrapped in counters. `MemoryStore` (the backing store, unwrapped)
 * passes through, and `LruStore` (the very cache, memoized) is provided beside it.
 */
const setup = (options?: { readonly maxStaleness?: number }) => {
  const lru = LruStore.layer()
  const store = counting(MemoryStore.layer())
  const cache = counting(lru)
  const caching = CachingStore.layer({
    cache: cache.layer,
    store: store.layer,
    maxStaleness: options?.maxStaleness ?? MAX_STALENESS
  })
  return { layer: Layer.merge(lru, caching), store: store.probe, cache: cache.probe }
}

/** The cache itself, behind the caching layer's back. */
const rawCache = Effect.map(LruStore.LruStore, (l) => l.store)

type Setup = ReturnType<typeof setup>

/** `scenario(name, body)` runs `body` with the caching store of a fresh `setup` and its probes. */
const scenario = (
  name: string,
  body: (
    caching: SessionStore.Service,
    t: Setup
  ) => Effect.Effect<void, unknown, MemoryStore.MemoryStore | LruStore.LruStore>,
  options?: { readonly maxStaleness?: number }
) =>
  it.effect(name, () => {
    const t = setup(options)
    return Effect.flatMap(SessionStore.SessionStore, (caching) => body(caching, t)).pipe(Effect.provide(t.layer))
  })

/** Runs `during` while a load through `caching` is held after it read the store; then lets that load refill the cache. */
const loadAround = <A, E>(
  t: Setup,
  caching: SessionStore.Service,
  id: SessionId.SessionId,
  during: Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const held = yield* t.store.holdNextLoad
    const racing = yield* Effect.fork(caching.load(id))
    yield* Deferred.await(held.reached) // the load has read the record from the store
    const result = yield* during
    yield* Deferred.succeed(held.release, undefined) // now it refills the cache
    return { during: result, load: yield* Fiber.join(racing) }
  })

/** The backing store as another app instance sees it: writes that bypass this instance's cache. */
const elsewhere = Effect.map(MemoryStore.MemoryStore, (m) => m.store)

const newRecord = (now: number, n = 1): SessionRecord.SessionRecord => ({
  id: SessionId.fromToken(SessionToken.unsafeGenerate()),
  data: SessionData.fromEntries([["n", n]]),
  expiresAt: now + 3_600_000,
  version: 1
})

const reasonOf = <A>(exit: Exit.Exit<A, StoreError.StoreError>): string | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => e.reason)) : undefined

const version = (found: Option.Option<SessionRecord.SessionRecord>): number | undefined =>
  Option.getOrUndefined(Option.map(found, (r) => r.version))

describe("CachingStore", () => {
  scenario("a fresh hit never touches the store", (caching, t) =>
    Effect.gen(function*() {
      const record = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      t.store.reset()
      for (let i = 0; i < 3; i++) {
        const found = yield* caching.load(record.id)
        assert.isTrue(Option.isSome(found) && SessionData.equals(found.value.data, { n: 1 }))
        yield* TestClock.adjust(MAX_STALENESS / 5)
      }
      assert.deepStrictEqual(t.store.counts, { create: 0, save: 0, load: 0, delete: 0 })
    }))

  scenario(
    "a save refills the cache with one compare-and-set save; delete + create only when the cache lost the entry",
    (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        t.cache.reset()
        const saved = yield* caching.save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
        assert.deepStrictEqual(t.cache.counts, { create: 0, save: 1, load: 0, delete: 0 })
        const cached = yield* (yield* rawCache).load(created.id)
        assert.isTrue(
          Option.isSome(cached) && cached.value.version === saved.version &&
            cached.value.expiresAt === saved.expiresAt &&
            SessionData.equals(cached.value.data, { n: 2 })
        )
        // the cache lost the entry (evicted): its save is Gone, so the layer deletes and creates
        yield* (yield* rawCache).delete(created.id)
        t.cache.reset()
        t.store.reset()
        const again = yield* caching.save({ ...saved, data: SessionData.fromEntries([["n", 3]]) })
        assert.deepStrictEqual(t.cache.counts, { create: 1, save: 1, load: 0, delete: 1 })
        const hit = yield* caching.load(created.id)
        assert.isTrue(
          Option.isSome(hit) && hit.value.version === again.version && SessionData.equals(hit.value.data, { n: 3 })
        )
        assert.strictEqual(t.store.counts.load, 0)
        // the cache holds another version (written behind the layer's back): refilled all the same
        yield* (yield* rawCache).save(again)
        t.cache.reset()
        const last = yield* caching.save({ ...again, data: SessionData.fromEntries([["n", 4]]) })
        assert.deepStrictEqual(t.cache.counts, { create: 1, save: 1, load: 0, delete: 1 })
        const final = yield* caching.load(created.id)
        assert.isTrue(
          Option.isSome(final) && final.value.version === last.version && SessionData.equals(final.value.data, { n: 4 })
        )
        assert.strictEqual(t.store.counts.load, 0)
      })
  )

  scenario("a miss reads the store once and refills the cache", (caching, t) =>
    Effect.gen(function*() {
      const record = yield* (yield* elsewhere).create(newRecord(yield* Clock.currentTimeMillis))
      assert.strictEqual(version(yield* caching.load(record.id)), 1)
      assert.strictEqual(version(yield* caching.load(record.id)), 1)
      assert.strictEqual(t.store.counts.load, 1)
      // a missing session is not cached as missing: each load asks the store
      const missing = newRecord(0).id
      assert.isTrue(Option.isNone(yield* caching.load(missing)))
      assert.isTrue(Option.isNone(yield* caching.load(missing)))
      assert.strictEqual(t.store.counts.load, 3)
    }))

  scenario(
    "an entry older than maxStaleness is read again from the store: another instance's save shows",
    (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        const other = yield* (yield* elsewhere).save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
        yield* TestClock.adjust(MAX_STALENESS - 1)
        // within maxStaleness this instance may still serve its copy
        assert.strictEqual(version(yield* caching.load(created.id)), 1)
        assert.strictEqual(t.store.counts.load, 0)
        yield* TestClock.adjust(1)
        const fresh = yield* caching.load(created.id)
        assert.isTrue(
          Option.isSome(fresh) && fresh.value.version === other.version &&
            SessionData.equals(fresh.value.data, { n: 2 })
        )
        assert.strictEqual(t.store.counts.load, 1)
        // refilled: the next load is a hit
        assert.strictEqual(version(yield* caching.load(created.id)), 2)
        assert.strictEqual(t.store.counts.load, 1)
      })
  )

  scenario("another instance's delete shows after maxStaleness", (caching) =>
    Effect.gen(function*() {
      const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      yield* (yield* elsewhere).delete(created.id)
      yield* TestClock.adjust(MAX_STALENESS)
      assert.isTrue(Option.isNone(yield* caching.load(created.id)))
    }))

  scenario("maxStaleness 0 reads the store on every load", (caching, t) =>
    Effect.gen(function*() {
      const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      yield* caching.load(created.id)
      yield* caching.load(created.id)
      assert.strictEqual(t.store.counts.load, 2)
    }), { maxStaleness: 0 })

  scenario("a cached session still expires by the Clock", (caching) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const created = yield* caching.create({ ...newRecord(now), expiresAt: now + 1_000 })
      yield* TestClock.adjust(1_000)
      assert.isTrue(Option.isNone(yield* caching.load(created.id)))
    }), { maxStaleness: 3_600_000 })

  scenario("writes go to the store and keep the cache at the store's version", (caching, t) =>
    Effect.gen(function*() {
      const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      const v2 = yield* caching.save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
      assert.strictEqual(v2.version, 2)
      assert.deepStrictEqual([t.store.counts.create, t.store.counts.save], [1, 1])
      const cached = yield* caching.load(created.id)
      assert.isTrue(
        Option.isSome(cached) && cached.value.version === 2 && SessionData.equals(cached.value.data, { n: 2 })
      )
      assert.strictEqual(t.store.counts.load, 0)
      // a compare-and-set save with the version the cache served succeeds at the store
      const v3 = yield* caching.save(Option.getOrThrow(cached))
      assert.strictEqual(v3.version, 3)
      const stored = yield* (yield* elsewhere).load(created.id)
      assert.strictEqual(version(stored), 3)
    }))

  scenario(
    "Conflict from the store evicts the entry: the next load reads the store",
    (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        yield* (yield* elsewhere).save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
        assert.strictEqual(reasonOf(yield* Effect.exit(caching.save(created))), "Conflict")
        assert.strictEqual(yield* LruStore.size, 0)
        const latest = yield* caching.load(created.id)
        assert.strictEqual(version(latest), 2)
        assert.strictEqual(t.store.counts.load, 1)
        // the merge a session layer does: save on top of the latest version
        assert.strictEqual((yield* caching.save(Option.getOrThrow(latest))).version, 3)
      })
  )

  scenario(
    "Gone from the store evicts the entry: a session revoked elsewhere is not served again",
    (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        yield* (yield* elsewhere).delete(created.id)
        assert.strictEqual(reasonOf(yield* Effect.exit(caching.save(created))), "Gone")
        assert.strictEqual(yield* LruStore.size, 0)
        assert.isTrue(Option.isNone(yield* caching.load(created.id)))
        assert.strictEqual(t.store.counts.load, 1)
      })
  )

  scenario("after delete returns, the session is never served from the cache", (caching, t) =>
    Effect.gen(function*() {
      const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      assert.isTrue(Option.isSome(yield* caching.load(created.id)))
      yield* caching.delete(created.id)
      assert.strictEqual(yield* LruStore.size, 0)
      assert.isTrue(Option.isNone(yield* caching.load(created.id)))
      assert.strictEqual(t.store.counts.load, 1)
      yield* caching.delete(created.id)
    }))

  scenario(
    "a load that read the store before a delete and refills after it does not bring the session back",
    (caching, t) =>
      Effect.gen(function*() {
        const record = yield* (yield* elsewhere).create(newRecord(yield* Clock.currentTimeMillis))
        const racing = yield* loadAround(t, caching, record.id, caching.delete(record.id))
        assert.strictEqual(version(racing.load), 1) // it began before the delete
        assert.isTrue(Option.isNone(yield* caching.load(record.id)))
        yield* TestClock.adjust(MAX_STALENESS / 2)
        assert.isTrue(Option.isNone(yield* caching.load(record.id)))
        assert.strictEqual(t.store.counts.load, 3)
      })
  )

  scenario(
    "a load that read the store before a save and refills after it does not roll the cache back",
    (caching, t) =>
      Effect.gen(function*() {
        const record = yield* (yield* elsewhere).create(newRecord(yield* Clock.currentTimeMillis))
        const saved = (yield* loadAround(
          t,
          caching,
          record.id,
          caching.save({ ...record, data: SessionData.fromEntries([["n", 2]]) })
        ))
          .during
        const found = yield* caching.load(record.id)
        assert.isTrue(
          Option.isSome(found) && found.value.version === saved.version &&
            SessionData.equals(found.value.data, { n: 2 })
        )
        // and a save through the cache still carries the right version
        assert.strictEqual((yield* caching.save(Option.getOrThrow(found))).version, 3)
      })
  )

  scenario("a cache entry changed behind the layer's back is not served", (caching, t) =>
    Effect.gen(function*() {
      const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
      assert.strictEqual(t.cache.counts.create, 1)
      assert.strictEqual(yield* LruStore.size, 1) // the cache holds the store's record
      // data the store never had, at another version
      yield* (yield* rawCache).save({ ...created, data: SessionData.fromEntries([["n", 99]]) })
      const found = yield* caching.load(created.id)
      assert.isTrue(Option.isSome(found) && found.value.version === 1 && SessionData.equals(found.value.data, { n: 1 }))
      assert.strictEqual(t.store.counts.load, 1)
    }))

  describe("a failing cache", () => {
    scenario("a cache error on load falls through to the store", (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        t.cache.fail("load", "Unavailable")
        assert.strictEqual(version(yield* caching.load(created.id)), 1)
        assert.strictEqual(t.store.counts.load, 1)
      }))

    scenario(
      "a cache that cannot be updated after a write is bypassed, never serving the old version",
      (caching, t) =>
        Effect.gen(function*() {
          const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
          assert.strictEqual(version(yield* caching.load(created.id)), 1) // cached
          // the cache still answers loads (with v1) but refuses every change
          t.cache.fail("delete", "Unavailable")
          t.cache.fail("create", "Unavailable")
          t.cache.fail("save", "Unavailable")
          const saved = yield* caching.save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
          assert.strictEqual(saved.version, 2)
          for (let i = 0; i < 2; i++) {
            const found = yield* caching.load(created.id)
            assert.isTrue(
              Option.isSome(found) && found.value.version === 2 && SessionData.equals(found.value.data, { n: 2 })
            )
          }
          assert.strictEqual(t.store.counts.load, 2)
          // a delete the cache cannot follow still ends the session
          yield* caching.delete(created.id)
          assert.isTrue(Option.isNone(yield* caching.load(created.id)))
          // once the cache heals, loads are hits again
          t.cache.heal()
          const next = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
          t.store.reset()
          assert.strictEqual(version(yield* caching.load(next.id)), 1)
          assert.strictEqual(t.store.counts.load, 0)
        })
    )

    scenario("store errors are the caller's; a failed save evicts", (caching, t) =>
      Effect.gen(function*() {
        const created = yield* caching.create(newRecord(yield* Clock.currentTimeMillis))
        t.store.fail("save", "Unavailable")
        assert.strictEqual(reasonOf(yield* Effect.exit(caching.save(created))), "Unavailable")
        t.store.heal()
        yield* caching.load(created.id)
        assert.strictEqual(t.store.counts.load, 1)
        t.store.fail("load", "Unavailable")
        yield* TestClock.adjust(MAX_STALENESS)
        assert.strictEqual(reasonOf(yield* Effect.exit(caching.load(created.id))), "Unavailable")
      }))
  })

  it.effect("passes through what the store layer provides: ExpiredDeletion of the backing store", () =>
    Effect.gen(function*() {
      const caching = yield* SessionStore.SessionStore
      const deletion = yield* SessionStore.ExpiredDeletion
      const now = yield* Clock.currentTimeMillis
      yield* caching.create({ ...newRecord(now), expiresAt: now + 1_000 })
      yield* caching.create(newRecord(now))
      yield* TestClock.adjust(1_000)
      assert.strictEqual(yield* deletion.deleteExpired(), 1)
      assert.strictEqual(yield* MemoryStore.size, 1)
    }).pipe(Effect.provide(CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer() }))))

  it.effect("refuses a maxStaleness that is not a duration, with a StoreConfigError", () =>
    Effect.gen(function*() {
      const layer = CachingStore.layer({
        cache: LruStore.layer(),
        store: MemoryStore.layer(),
        maxStaleness: "soon" as unknown as number
      })
      yield* assertLayerRefused(layer, "CachingStore", "maxStaleness")
    }))
})
