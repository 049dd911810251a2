/**
 * RedisStore's write batching (`autoPipelining`), counted on a private `redis-server` that nothing else uses:
 * the store's commands issued together reach Redis in writes of up to `MAX_BATCH` commands, not one per command.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { MAX_BATCH } from "../src/internal/redis.js"
import { freshRecord, privateRedis } from "./support/redis.js"

const server = await privateRedis()
afterAll(() => server.stop())

/** `total_reads_processed` of the private server: how many socket reads it has made. */
const readsProcessed = async (): Promise<number> =>
  Number(/^total_reads_processed:(\d+)/m.exec(await server.cli("info", "stats"))?.[1])

const CONCURRENT = 200

/** Creates `CONCURRENT` sessions, then loads them all at once, counting the server's reads during the loads. */
const readsForConcurrentLoads = Effect.gen(function*() {
  const store = yield* SessionStore.SessionStore
  const records = yield* Effect.forEach(
    Array.from({ length: CONCURRENT }, (_, i) => freshRecord({ i })),
    (r) => store.create(r),
    { concurrency: 16 }
  )
  const before = yield* Effect.promise(readsProcessed)
  const loaded = yield* Effect.forEach(records, (r) => store.load(r.id), { concurrency: "unbounded" })
  const after = yield* Effect.promise(readsProcessed)
  for (const [i, found] of loaded.entries()) assert.deepStrictEqual(Option.getOrThrow(found), records[i])
  // the second INFO is one read of its own
  return after - before - 1
})

describe("RedisStore write batching on a private server", () => {
  it.live("with autoPipelining (the default), concurrent operations reach Redis in batches", () =>
    Effect.gen(function*() {
      const reads = yield* readsForConcurrentLoads
      // one read per full batch, at most as many again for batches cut short where the scheduler yields mid-turn
      assert.isAtMost(reads, 2 * Math.ceil(CONCURRENT / MAX_BATCH))
    }).pipe(Effect.provide(RedisStore.layer({ url: Redacted.make(server.url) }))))
})
