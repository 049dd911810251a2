/**
 * The commit mutex (src/internal/mutex.ts): mutual exclusion, arrival order, release on failure, and
 * interruption while queued or right after the lock was handed over.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber } from "effect"
import { Mutex } from "../src/internal/mutex.js"

/** A holder blocked on `gate`, then two waiters queued behind it: `doomed` and `next`, each logging its name. */
const queueBehindHolder = Effect.gen(function*() {
  const mutex = new Mutex()
  const gate = yield* Deferred.make<void>()
  const log: Array<string> = []
  const holder = yield* Effect.fork(mutex.withLock(Deferred.await(gate)))
  yield* Effect.yieldNow()
  const doomed = yield* Effect.fork(mutex.withLock(Effect.sync(() => log.push("doomed"))))
  const next = yield* Effect.fork(mutex.withLock(Effect.sync(() => log.push("next"))))
  yield* Effect.yieldNow()
  return { mutex, gate, log, holder, doomed, next }
})

describe("Mutex", () => {
  it.effect("runs bodies one at a time, in arrival order", () =>
    Effect.gen(function*() {
      const mutex = new Mutex()
      const log: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const body = (name: string, wait: boolean) =>
        mutex.withLock(Effect.gen(function*() {
          log.push(`${name}+`)
          if (wait) yield* Deferred.await(gate)
          yield* Effect.yieldNow()
          log.push(`${name}-`)
        }))
      const first = yield* Effect.fork(body("a", true))
      yield* Effect.yieldNow()
      const rest = yield* Effect.forEach(["b", "c", "d"], (n) => Effect.fork(body(n, false)))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(log, ["a+"])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Effect.forEach(rest, Fiber.join)
      assert.deepStrictEqual(log, ["a+", "a-", "b+", "b-", "c+", "c-", "d+", "d-"])
      assert.isFalse(mutex.locked)
    }))

  it.effect("releases the lock when the body fails or dies", () =>
    Effect.gen(function*() {
      const mutex = new Mutex()
      const failed = yield* Effect.exit(mutex.withLock(Effect.fail("boom")))
      assert.isTrue(Exit.isFailure(failed))
      assert.isFalse(mutex.locked)
      const died = yield* Effect.exit(mutex.withLock(Effect.die("bang")))
      assert.isTrue(Exit.isFailure(died))
      assert.isFalse(mutex.locked)
      assert.strictEqual(yield* mutex.withLock(Effect.succeed(1)), 1)
    }))

  it.effect("a body that throws while being built dies and leaves the lock free", () =>
    Effect.gen(function*() {
      const mutex = new Mutex()
      const exit = yield* Effect.exit(Mutex.withLockOf(() => mutex, (): Effect.Effect<void> => {
        throw new Error("boom")
      }))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.isFalse(mutex.locked)
    }))

  it.effect("a waiter interrupted while queued leaves the queue; the next one still gets the lock", () =>
    Effect.gen(function*() {
      const { doomed, gate, holder, log, mutex, next } = yield* queueBehindHolder
      yield* Fiber.interrupt(doomed)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(next)
      assert.deepStrictEqual(log, ["next"])
      assert.isFalse(mutex.locked)
    }))

  it.effect("a body interrupted while it holds the lock releases it", () =>
    Effect.gen(function*() {
      const mutex = new Mutex()
      const holder = yield* Effect.fork(mutex.withLock(Effect.never))
      yield* Effect.yieldNow()
      assert.isTrue(mutex.locked)
      const waiter = yield* Effect.fork(mutex.withLock(Effect.succeed("got it")))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* Fiber.join(waiter), "got it")
      assert.isFalse(mutex.locked)
    }))

  it.effect("a waiter interrupted as the lock is handed to it passes it on", () =>
    Effect.gen(function*() {
      const { doomed, gate, holder, log, mutex, next } = yield* queueBehindHolder
      // the hand-off, then the interruption before `doomed` has run with the lock
      Deferred.unsafeDone(gate, Exit.void)
      yield* Fiber.join(holder)
      yield* Fiber.interrupt(doomed)
      yield* Fiber.join(next)
      assert.isFalse(mutex.locked)
      assert.include(log, "next")
    }))
})
