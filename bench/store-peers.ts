/**
 * Store level, in-process stores and the express-session peers, on the shared plan
 * (10,000 sessions of ~300 B, 50,000 ops, 80% load / 20% save, 64 in flight):
 * - ours: MemoryStore, LruStore (sized for the 10,000 sessions), SqlStore on MariaDB and on SQLite (a WAL
 *   file in the temp directory), CachingStore(LruStore over SqlStore on Postgres), each through
 *   `storeOps` + `runEffect` with the layer's defaults (spans on);
 * - peers: connect-redis 7 over ioredis and connect-pg-simple over a `pg` pool of the same size as ours,
 *   through their `get` / `set` callbacks (Promise-wrapped, one worker per lane).
 * SqlStore and RedisStore alone, and the raw drivers, are measured by bench/store-sql.ts and
 * bench/store-redis.ts. Every workload runs once on a smaller plan first (`measured`), as theirs do.
 *
 * Run alone: `tsx bench/store-peers.ts` (BENCH_OPS / BENCH_SESSIONS shorten it).
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import pgSession from "connect-pg-simple"
import ConnectRedis from "connect-redis"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import session from "express-session"
import { Redis } from "ioredis"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import * as LruStore from "../src/LruStore.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as SqlStore from "../src/SqlStore.js"
import { storeSetup } from "./http/effect.js"
import { createPgSimpleTable } from "./http/express.js"
import { runStoreLayer, type Workload, workload } from "./lib/measure.js"
import { runExpressStore } from "./lib/promiseStore.js"
import { PG_POOL_SIZE, services, uniqueName, unlinkPrefix } from "./lib/services.js"
import { defaultWorkload, formatStats, makePlan, type Plan, type Stats } from "./lib/workload.js"

/** Moved to bench/lib/measure.ts; re-exported for the store files that import it from here. */
export { runStoreLayer }

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

const mariadb = async (plan: Plan): Promise<Stats> => {
  const table = uniqueName("bench_sql")
  const client = MysqlClient.layer({
    host: services.mysql.host,
    port: services.mysql.port,
    username: services.mysql.user,
    database: services.mysql.database,
    maxConnections: PG_POOL_SIZE
  })
  try {
    return await runStoreLayer("SqlStore (MariaDB)", plan, SqlStore.layer({ table }).pipe(Layer.provide(client)))
  } finally {
    await Effect.runPromise(
      Effect.flatMap(MysqlClient.MysqlClient, (sql) => sql.unsafe(`DROP TABLE IF EXISTS \`${table}\``)).pipe(
        Effect.provide(client)
      )
    )
  }
}

const sqlite = async (plan: Plan): Promise<Stats> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-bench-"))
  try {
    const client = SqliteClient.layer({ filename: path.join(dir, "sessions.db") })
    return await runStoreLayer("SqlStore (SQLite)", plan, SqlStore.layer().pipe(Layer.provide(client)))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const caching = async (plan: Plan): Promise<Stats> => {
  const setup = storeSetup("caching", plan.options.sessions)
  try {
    return await runStoreLayer("CachingStore(Lru over SqlStore Postgres)", plan, setup.layer)
  } finally {
    await setup.cleanup()
  }
}

/** The workloads of this file, in the order the runner runs them. */
export const storePeerWorkloads: ReadonlyArray<Workload> = [
  workload("MemoryStore", "ours", "memory", (plan) => runStoreLayer("MemoryStore", plan, MemoryStore.layer())),
  workload(
    "LruStore",
    "ours",
    "memory",
    (plan) => runStoreLayer("LruStore", plan, LruStore.layer({ maxEntries: plan.options.sessions }))
  ),
  workload("SqlStore (MariaDB)", "ours", "mariadb", mariadb),
  workload("SqlStore (SQLite)", "ours", "sqlite", sqlite),
  workload("CachingStore(Lru over SqlStore Postgres)", "ours", "postgres", caching),
  workload("connect-redis 7 (ioredis)", "peer", "redis", connectRedis),
  workload("connect-pg-simple (pg)", "peer", "postgres", connectPgSimple)
]

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = makePlan({
    ...defaultWorkload,
    sessions: Number(process.env.BENCH_SESSIONS ?? defaultWorkload.sessions),
    operations: Number(process.env.BENCH_OPS ?? defaultWorkload.operations)
  })
  const only = process.argv[2]
  for (const w of storePeerWorkloads.filter((w) => only === undefined || w.name.startsWith(only))) {
    const r = await w.run(plan)
    console.log(formatStats({ ...r, name: r.name }))
  }
}
