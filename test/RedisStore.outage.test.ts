/**
 * RedisStore against a private `redis-server` (appendonly, fsync always) that the tests kill, restart,
 * freeze and resume. The contract suite runs on it first; at the end `INFO commandstats` must show no `KEYS`.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Ref, Schedule } from "effect"
import { SessionData, type SessionId, type SessionRecord, SessionStore, type StoreError } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { runContractSuite } from "effect-sessions/testing"
import { freshRecord, privateRedis } from "./support/redis.js"

const server = await privateRedis(["--appendonly", "yes", "--appendfsync", "always"])
afterAll(() => server.stop())

const COMMAND_TIMEOUT_MS = 1_000
/** Bound on "fails within the command timeout", with a margin for a busy shared machine (below twice the timeout). */
const WITHIN_MS = COMMAND_TIMEOUT_MS + 700

const StoreLive = RedisStore.layer({
  url: Redacted.make(server.url),
  commandTimeout: COMMAND_TIMEOUT_MS,
  connectTimeout: "2 seconds"
})

/** `INFO commandstats` as command name → calls. */
const commandStats = async (): Promise<Map<string, number>> => {
  const info = await server.cli("info", "commandstats")
  const stats = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) stats.set(match[1], Number(match[2]))
  return stats
}
/** Command stats seen before each restart (a restart resets them). */
const statsBeforeRestart: Array<Map<string, number>> = []

/** Runs `op`, asserting that it fails with `Unavailable` within the command timeout (plus a margin). */
const failsFast = <A>(op: Effect.Effect<A, StoreError.StoreError>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const error = yield* Effect.flip(op)
    const elapsed = Date.now() - started
    assert.strictEqual(error.reason, "Unavailable")
    assert.isAtMost(elapsed, WITHIN_MS)
    return error
  })

/** Retries `op` until the store serves again (at most ~20 s). */
const untilServing = <A>(op: Effect.Effect<A, StoreError.StoreError>) =>
  Effect.retry(op, Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(200)))

describe("RedisStore on a private server", () => {
  runContractSuite("contract", RedisStore.layer({ url: Redacted.make(server.url) }), { live: true })

  it.live("frozen (SIGSTOP): Unavailable within the command timeout; resumed: serves again with every acknowledged write", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const records = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => freshRecord({ i })),
        (r) => store.create(r),
        { concurrency: 10 }
      )
      const saved = yield* store.save({ ...records[0], data: SessionData.fromEntries([["i", "saved"]]) })

      server.freeze()
      // a first wave of operations, then a second one issued while the first is still unanswered:
      // each fails on its own within the command timeout
      const wave = (ops: ReadonlyArray<Effect.Effect<unknown, StoreError.StoreError>>) =>
        Effect.forEach(ops, failsFast, { concurrency: "unbounded", discard: true })
      yield* Effect.all([
        wave([
          store.load(records[1].id),
          store.save(records[2]),
          store.create(freshRecord({ during: "freeze" })),
          store.delete(records[3].id)
        ]),
        Effect.delay(wave([store.load(records[4].id), store.load(records[5].id)]), "150 millis")
      ], { concurrency: "unbounded", discard: true }).pipe(Effect.ensuring(Effect.sync(() => server.resume())))

      yield* untilServing(store.load(records[1].id))
      const first = Option.getOrThrow(yield* store.load(records[0].id))
      assert.deepStrictEqual(first, saved)
      // A command that timed out had been sent: the server may still run it once resumed. The outcome of a
      // write that failed with Unavailable is unknown; every acknowledged one is there.
      for (const record of records.slice(1)) {
        const loaded = yield* store.load(record.id)
        if (record === records[2] || record === records[3]) continue
        assert.deepStrictEqual(Option.getOrThrow(loaded), record)
      }
    }).pipe(Effect.provide(StoreLive)))

  it.live(
    "stopped mid-run (SIGKILL): Unavailable within the command timeout; restarted: serves again, acknowledged writes kept, failed ones never replayed",
    () =>
      Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        statsBeforeRestart.push(yield* Effect.promise(commandStats))

        // 8 writers: each creates a session and saves it three times, over and over, until the store fails.
        interface Written {
          readonly acked: SessionRecord.SessionRecord | undefined
          /** the write in flight, if any: its reply may be lost in the crash */
          readonly pending: SessionRecord.SessionRecord | undefined
        }
        const written = new Map<SessionId.SessionId, Written>()
        const acknowledged = yield* Ref.make(0)
        const failures: Array<StoreError.StoreError> = []
        const writer = (lane: number) =>
          Effect.gen(function*() {
            for (let round = 0;; round++) {
              const fresh = freshRecord({ lane, round, step: 0 })
              written.set(fresh.id, { acked: undefined, pending: fresh })
              let current = yield* store.create(fresh)
              written.set(fresh.id, { acked: current, pending: undefined })
              yield* Ref.update(acknowledged, (n) => n + 1)
              for (let step = 1; step <= 3; step++) {
                const next = {
                  ...current,
                  data: SessionData.fromEntries([["lane", lane], ["round", round], ["step", step]])
                }
                written.set(fresh.id, { acked: current, pending: { ...next, version: current.version + 1 } })
                current = yield* store.save(next)
                written.set(fresh.id, { acked: current, pending: undefined })
                yield* Ref.update(acknowledged, (n) => n + 1)
              }
            }
          }).pipe(Effect.catchAll((error) => Effect.sync(() => failures.push(error))))
        const writers = yield* Effect.fork(
          Effect.forEach([0, 1, 2, 3, 4, 5, 6, 7], writer, { concurrency: "unbounded" })
        )

        // let them acknowledge a few hundred writes, then kill the server under them
        yield* Effect.repeat(Ref.get(acknowledged), { until: (n) => n >= 300, schedule: Schedule.spaced("10 millis") })
        yield* Effect.promise(() => server.kill())
        const started = Date.now()
        yield* Fiber.join(writers)
        assert.isAtMost(Date.now() - started, WITHIN_MS)
        assert.strictEqual(failures.length, 8)
        for (const error of failures) assert.strictEqual(error.reason, "Unavailable")

        // every operation fails fast while the server is down
        const [someId, some] = [...written.entries()][0]
        yield* failsFast(store.load(someId))
        yield* failsFast(store.save(some.acked ?? freshRecord({})))
        yield* failsFast(store.delete(someId))
        const attempted = freshRecord({ during: "outage" })
        yield* failsFast(store.create(attempted))

        yield* Effect.promise(() => server.start())
        yield* untilServing(store.load(someId))

        // every acknowledged write survived the crash; a write in flight at the crash may have landed too
        let checked = 0
        for (const [id, { acked, pending }] of written) {
          const loaded = yield* store.load(id)
          if (pending !== undefined && Option.isSome(loaded) && loaded.value.version === pending.version) {
            assert.deepStrictEqual(loaded.value, pending)
          } else if (acked === undefined) {
            assert.isTrue(Option.isNone(loaded))
          } else {
            assert.deepStrictEqual(Option.getOrThrow(loaded), acked)
            checked++
          }
        }
        assert.isAtLeast(checked, 50)
        // writes work again, scripts included (the restarted server's script cache is empty)
        const after = yield* store.create(freshRecord({ after: "restart" }))
        assert.strictEqual((yield* store.save(after)).version, 2)
        yield* store.delete(after.id)
        // the create that failed while the server was down was not replayed after the reconnect
        assert.isTrue(Option.isNone(yield* store.load(attempted.id)))
      }).pipe(Effect.provide(StoreLive)),
    60_000
  )

  it("INFO commandstats shows no KEYS after the whole suite", async () => {
    const stats = [...statsBeforeRestart, await commandStats()]
    assert.strictEqual(stats.length, 2)
    for (const stat of stats) {
      assert.isAbove(stat.get("get") ?? 0, 0)
      assert.isAbove((stat.get("evalsha") ?? 0) + (stat.get("eval") ?? 0), 0)
      assert.isAbove(stat.get("unlink") ?? 0, 0)
      assert.isFalse(stat.has("keys"))
    }
  })
})
