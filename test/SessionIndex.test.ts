/**
 * The index contract on the in-process stores and on CachingStore over them, what CachingStore's revoke
 * evicts, and the types: a layer without an index cannot satisfy a program that needs one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import { CachingStore, LruStore, MemoryStore, SessionData, SessionIndex, SessionStore } from "effect-sessions"
import { runIndexContractSuite } from "effect-sessions/testing"
import { META_KEY } from "../src/Session.js"
import { freshId } from "./support/services.js"

runIndexContractSuite("index contract: MemoryStore", MemoryStore.layer())
runIndexContractSuite(
  "index contract: CachingStore over MemoryStore",
  CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer(), maxStaleness: "1 hour" })
)

const bound = (user: string) =>
  SessionData.fromEntries([["n", 1], [META_KEY, { createdAt: 1, user: { id: user, authenticatedAt: 2 } }]])

describe("CachingStore's index", () => {
  it.effect("a load that read the store before a revoke and fills the cache after it is never served", () =>
    Effect.gen(function*() {
      const memory = yield* Effect.provide(
        Effect.all([SessionStore.SessionStore, SessionIndex.SessionIndex]),
        MemoryStore.layer()
      )
      const [inner, innerIndex] = memory
      // a persistent store whose next load, once armed, waits after reading until released
      let gate: { readonly read: Deferred.Deferred<void>; readonly release: Deferred.Deferred<void> } | undefined
      const gated: SessionStore.Service = {
        ...inner,
        load: (id) =>
          Effect.flatMap(inner.load(id), (found) => {
            const g = gate
            if (g === undefined) return Effect.succeed(found)
            gate = undefined
            return Effect.as(Effect.zipRight(Deferred.succeed(g.read, void 0), Deferred.await(g.release)), found)
          })
      }
      const [caching, index] = yield* Effect.provide(
        Effect.all([SessionStore.SessionStore, SessionIndex.SessionIndex]),
        CachingStore.layer({
          cache: LruStore.layer(),
          store: Layer.merge(
            Layer.succeed(SessionStore.SessionStore, gated),
            Layer.succeed(SessionIndex.SessionIndex, innerIndex)
          ),
          maxStaleness: "1 hour"
        })
      )
      // on the persistent store only: this instance has not cached it
      const record = yield* inner.create({
        id: freshId(),
        data: bound("u1"),
        expiresAt: Date.now() + 3_600_000,
        version: 1
      })
      const read = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      gate = { read, release }
      const loading = yield* Effect.fork(caching.load(record.id))
      yield* Deferred.await(read)
      assert.strictEqual(yield* index.revoke("u1"), 1)
      yield* Deferred.succeed(release, void 0)
      // the load began before the revoke: it may answer with the record
      assert.isTrue(Option.isSome(yield* Fiber.join(loading)))
      // but what it put into the cache is never served
      assert.isTrue(Option.isNone(yield* caching.load(record.id)))
      assert.isTrue(Option.isNone(yield* inner.load(record.id)))
    }))
})

describe("types", () => {
  it("a layer without an index leaves SessionIndex required", () => {
    const program = SessionIndex.list("someone")
    const withMemory: Effect.Effect<unknown, unknown, never> = Effect.provide(program, MemoryStore.layer())
    const withCache: Effect.Effect<unknown, unknown, never> = Effect.provide(
      program,
      CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer() })
    )
    // @ts-expect-error LruStore keeps no index: a program that needs one does not compile over it
    const withLru: Effect.Effect<unknown, unknown, never> = Effect.provide(program, LruStore.layer())
    // @ts-expect-error nor does CachingStore over a store without one
    const withLruBehind: Effect.Effect<unknown, unknown, never> = Effect.provide(
      program,
      CachingStore.layer({ cache: LruStore.layer(), store: LruStore.layer() })
    )
    assert.isDefined([withMemory, withCache, withLru, withLruBehind])
  })
})
