/**
 * Store level, in-process stores and the express-session peers, on the shared plan
 * (10,000 sessions of ~300 B, 50,000 ops, 80% load / 20% save, 64 in flight):
 * - ours: MemoryStore, LruStore (sized for the 10,000 sessions), CachingStore(LruStore over SqlStore
 *   on Postgres), each through `storeOps` + `runEffect` with the layer's defaults (spans on);
 * - peers: connect-redis 7 over ioredis and connect-pg-simple over a `pg` pool of the same size as ours,
 *   through their `get` / `set` callbacks (Promise-wrapped, one worker per lane).
 * SqlStore and RedisStore alone, and the raw drivers, are measured by bench/store-sql.ts and
 * bench/store-redis.ts.
 *
 * Run alone: `tsx bench/store-peers.ts` (BENCH_OPS / BENCH_SESSIONS shorten it).
 */
import pgSession from "connect-pg-simple"
import ConnectRedis from "connect-redis"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import session from "express-session"
import { Redis } from "ioredis"
import pg from "pg"
import * as LruStore from "../src/LruStore.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as SessionStore from "../src/SessionStore.js"
import { createPgSimpleTable } from "./http/express.js"
import { runExpressStore } from "./lib/promiseStore.js"
import type { StoreRow } from "./lib/results.js"
import { PG_POOL_SIZE, services, uniqueName, unlinkPrefix } from "./lib/services.js"
import { defaultWorkload, formatStats, makePlan, type Plan, runEffect, type Stats, storeOps } from "./lib/workload.js"

/** Runs the plan against the `SessionStore` a layer provides, inside its own scope. */
export const runStoreLayer = <E>(
  name: string,
  plan: Plan,
  layer: Layer.Layer<SessionStore.SessionStore, E>
): Promise<Stats> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const ops = yield* storeOps(store, plan)
      return yield* runEffect(name, plan, ops)
    }).pipe(Effect.provide(layer), Effect.scoped)
  )

const row = (stats: Stats, kind: StoreRow["kind"], backend: string): StoreRow => ({
  name: stats.name,
  kind,
  backend,
  opsPerSec: stats.opsPerSec,
  p50Ms: stats.p50Ms,
  p99Ms: stats.p99Ms,
  operations: stats.operations,
  seconds: stats.seconds
})

const connectRedis = async (plan: Plan): Promise<Stats> => {
  const client = new Redis({ ...services.redis, lazyConnect: true })
  await client.connect()
  const prefix = `${uniqueName("bench")}:`
  try {
    return await runExpressStore("connect-redis 7 (ioredis)", plan, new ConnectRedis({ client, prefix }))
  } finally {
    await unlinkPrefix(client, prefix)
    await client.quit()
  }
}

const connectPgSimple = async (plan: Plan): Promise<Stats> => {
  const pool = new pg.Pool({ ...services.pg, max: PG_POOL_SIZE })
  const table = uniqueName("bench_cps")
  try {
    await createPgSimpleTable(pool, table)
    const PgStore = pgSession(session)
    const store = new PgStore({ pool, tableName: table, pruneSessionInterval: false })
    return await runExpressStore("connect-pg-simple (pg)", plan, store)
  } finally {
    await pool.query(`DROP TABLE IF EXISTS "${table}"`)
    await pool.end()
  }
}

export interface Workload {
  readonly name: string
  readonly run: (plan: Plan) => Promise<StoreRow>
}

/** The workloads of this file, in the order the runner runs them. */
export const storePeerWorkloads: ReadonlyArray<Workload> = [
  {
    name: "MemoryStore",
    run: async (plan) => row(await runStoreLayer("MemoryStore", plan, MemoryStore.layer()), "ours", "memory")
  },
  {
    name: "LruStore",
    run: async (plan) =>
      row(
        await runStoreLayer("LruStore", plan, LruStore.layer({ maxEntries: plan.options.sessions })),
        "ours",
        "memory"
      )
  },
  { name: "connect-redis", run: async (plan) => row(await connectRedis(plan), "peer", "redis") },
  { name: "connect-pg-simple", run: async (plan) => row(await connectPgSimple(plan), "peer", "postgres") }
]

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = makePlan({
    ...defaultWorkload,
    sessions: Number(process.env.BENCH_SESSIONS ?? defaultWorkload.sessions),
    operations: Number(process.env.BENCH_OPS ?? defaultWorkload.operations)
  })
  for (const w of storePeerWorkloads) {
    const r = await w.run(plan)
    console.log(formatStats({ ...r, name: r.name }))
  }
}
