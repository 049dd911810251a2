import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Option, TestClock } from "effect"
import { MemoryStore, SessionData, SessionId, SessionStore, SessionToken } from "effect-sessions"
import { runContractSuite } from "effect-sessions/testing"

const freshId = () => SessionId.fromToken(SessionToken.unsafeGenerate())

describe("MemoryStore", () => {
  it.effect("creates, saves, loads and deletes", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const id = freshId()
      const now = yield* Clock.currentTimeMillis
      const data = SessionData.fromEntries([["user", { name: "Ada" }]])
      const created = yield* store.create({ id, data, expiresAt: now + 1_000, version: 1 })
      assert.strictEqual(created.version, 1)
      const collision = yield* Effect.exit(store.create({ id, data, expiresAt: now + 1_000, version: 1 }))
      assert.isTrue(Exit.isFailure(collision))
      const saved = yield* store.save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
      assert.strictEqual(saved.version, 2)
      const stale = yield* Effect.exit(store.save(created))
      assert.isTrue(Exit.isFailure(stale))
      const loaded = yield* store.load(id)
      assert.isTrue(Option.isSome(loaded) && SessionData.equals(loaded.value.data, { n: 2 }))
      yield* TestClock.adjust(1_000)
      assert.isTrue(Option.isNone(yield* store.load(id)))
      yield* store.delete(id)
      yield* store.delete(id)
      assert.strictEqual(yield* MemoryStore.size, 0)
    }).pipe(Effect.provide(MemoryStore.layer())))
})

runContractSuite("MemoryStore contract", MemoryStore.layer())
