/**
 * Store level, Redis: RedisStore next to raw ioredis on the shared plan (10,000 sessions of ~300 B,
 * 50,000 ops, 80% load / 20% save, 64 in flight), in the same run, on the same Redis:
 * - RedisStore: `RedisStore.layer` (its own connection, defaults: spans on, 2 s command timeout),
 *   64 fibers in one Effect runtime, through `storeOps` + `runEffect`;
 * - raw ioredis: `GET` + `JSON.parse` / `SET PX` with 64 Promise workers (`runPromise`), one connection;
 * - for scale, `Effect.tryPromise` around the same raw calls and nothing else, 64 fibers.
 * Each gets its own connection and key prefix, and a short warm-up before its timed run.
 *
 * Run alone: `npx tsx bench/store-redis.ts` (BENCH_OPS / BENCH_SESSIONS shorten it).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import * as RedisStore from "../src/RedisStore.js"
import { ratioOver, runStandalone, runStoreLayer, type Workload, workload } from "./lib/measure.js"
import { services, uniqueName, unlinkPrefix } from "./lib/services.js"
import { expiresAt, type Plan, runEffect, runPromise, sessionData, type Stats } from "./lib/workload.js"

const url = `redis://${services.redis.host}:${services.redis.port}`

/** Runs `body` with a fresh connection and key prefix, removing the keys and closing the connection after. */
const withRawClient = async <A>(body: (client: Redis, prefix: string) => Promise<A>): Promise<A> => {
  const client = new Redis({ ...services.redis, lazyConnect: true })
  await client.connect()
  const prefix = `${uniqueName("bench_redis")}:`
  try {
    return await body(client, prefix)
  } finally {
    await unlinkPrefix(client, prefix)
    await client.quit()
  }
}

const ttl = () => expiresAt(Date.now()) - Date.now()

const seedRaw = async (client: Redis, prefix: string, plan: Plan): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: plan.options.concurrency }, async () => {
    while (next < plan.ids.length) {
      const i = next++
      await client.set(prefix + plan.ids[i], JSON.stringify(sessionData(i, 0)), "PX", ttl())
    }
  }))
}

const rawLoad = async (client: Redis, key: string): Promise<unknown> => {
  const value = await client.get(key)
  if (value === null) throw new Error("session missing")
  return JSON.parse(value)
}

/** Raw ioredis: GET + JSON.parse / SET PX, one Promise worker per lane. */
export const rawIoredis = (plan: Plan): Promise<Stats> =>
  withRawClient(async (client, prefix) => {
    await seedRaw(client, prefix, plan)
    return runPromise("raw ioredis GET+JSON.parse / SET PX", plan, {
      load: (index) => rawLoad(client, prefix + plan.ids[index]),
      save: (index, write) =>
        client.set(prefix + plan.ids[index], JSON.stringify(sessionData(index, write)), "PX", ttl())
    })
  })

/** The same raw calls, each in `Effect.tryPromise` and nothing else, one fiber per lane. */
export const effectTryPromise = (plan: Plan): Promise<Stats> =>
  withRawClient(async (client, prefix) => {
    await seedRaw(client, prefix, plan)
    return Effect.runPromise(runEffect("Effect.tryPromise(raw ioredis)", plan, {
      load: (index) => Effect.tryPromise(() => rawLoad(client, prefix + plan.ids[index])),
      save: (index, write) =>
        Effect.tryPromise(() =>
          client.set(prefix + plan.ids[index], JSON.stringify(sessionData(index, write)), "PX", ttl())
        )
    }))
  })

/** RedisStore with its defaults, over its own connection (the layer's scope closes it). */
export const redisStore = async (plan: Plan): Promise<Stats> => {
  const prefix = `${uniqueName("bench_redisstore")}:`
  try {
    return await runStoreLayer("RedisStore", plan, RedisStore.layer({ url: Redacted.make(url), keyPrefix: prefix }))
  } finally {
    await withRawClient((client) => unlinkPrefix(client, prefix))
  }
}

/** The workloads of this file, in the order the runner runs them. */
export const storeRedisWorkloads: ReadonlyArray<Workload> = [
  workload("raw ioredis", "raw", "redis", rawIoredis),
  workload("RedisStore", "ours", "redis", redisStore),
  workload("Effect.tryPromise(raw ioredis)", "baseline", "redis", effectTryPromise)
]

/** `RedisStore` mixed ops/s over raw ioredis mixed ops/s, from the rows of one run. */
export const redisRatio = ratioOver("RedisStore", "redis")

if (import.meta.url === `file://${process.argv[1]}`) {
  await runStandalone(storeRedisWorkloads, redisRatio, "RedisStore / raw ioredis", 0.75)
}
