/**
 * Store level, PostgreSQL: SqlStore next to the very same SQL statements sent through `pg` directly, on the
 * shared plan (10,000 sessions of ~300 B, 50,000 ops, 80% load / 20% save, 64 in flight), in the same run,
 * on the same server, each with a `pg` pool of PG_POOL_SIZE connections and its own table:
 * - SqlStore: `SqlStore.layer` over `PgClient` (defaults: spans on, data rules checked, up to 10 reserved
 *   connections, prepared statements), 64 fibers in one Effect runtime, through `storeOps` + `runEffect`;
 * - for scale, SqlStore with `reservedConnections: 0`: every statement through `@effect/sql`'s statement path;
 * - raw pg: SqlStore's own statement texts (`load`: SELECT ... WHERE id = $1 AND expires_at > $2; `save`:
 *   the compare-and-set UPDATE ... RETURNING version) with `pool.query`, unnamed, `JSON.stringify` for writes,
 *   64 Promise workers (`runPromise`): the peer of the issue's target;
 * - for scale, the same with `load` and `save` as named prepared statements (`pool.query({ name, text, values })`),
 *   which SqlStore uses by default on Postgres: SqlStore's own overhead is its ratio to this row;
 * - for scale, SqlStore with `preparedStatements: false`: unnamed statements on its reserved connections;
 * - for scale, `Effect.tryPromise` around the same raw calls and nothing else, 64 fibers.
 * Each gets a short warm-up before its timed run.
 *
 * Run alone: `npx tsx bench/store-sql.ts` (3 rounds in rotated order with CPU per op; BENCH_ROUNDS, BENCH_OPS,
 * BENCH_SESSIONS shorten it).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import pg from "pg"
import * as Dialect from "../src/internal/sqlDialect.js"
import * as SqlStore from "../src/SqlStore.js"
import { ratioOver, runStandalone, runStoreLayer, type Workload, workload } from "./lib/measure.js"
import { PG_POOL_SIZE, pgClientLayer, services, uniqueName } from "./lib/services.js"
import { expiresAt, type Plan, runEffect, runPromise, sessionData, type Stats } from "./lib/workload.js"

const newPool = (): pg.Pool => new pg.Pool({ ...services.pg, max: PG_POOL_SIZE })

/** Runs `body` on a fresh table (created with SqlStore's own DDL) and a fresh pool, dropping both after. */
const withRawTable = async <A>(body: (pool: pg.Pool, st: Dialect.Statements) => Promise<A>): Promise<A> => {
  const pool = newPool()
  const st = Dialect.statements("pg", { table: uniqueName("bench_sql_raw"), schema: undefined })
  try {
    for (const text of st.ddl) await pool.query(text)
    return await body(pool, st)
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${st.qualified}`)
    await pool.end()
  }
}

/**
 * The raw statements, with the versions each lane last saw (lanes own their sessions, as in `storeOps`); with
 * `prepared`, `load` and `save` go as named statements (`{ name, text, values }`), prepared once per connection.
 */
const rawOps = async (pool: pg.Pool, st: Dialect.Statements, plan: Plan, prepared = false) => {
  const query = (name: string, text: string, values: Array<unknown>) =>
    prepared ? pool.query({ name, text, values }) : pool.query(text, values)
  const versions = new Int32Array(plan.ids.length).fill(1)
  let next = 0
  const now = Date.now()
  await Promise.all(Array.from({ length: plan.options.concurrency }, async () => {
    while (next < plan.ids.length) {
      const i = next++
      // user_key NULL: the plan's sessions are bound to no user, as in SqlStore's run
      const r = await pool.query(st.create, [
        plan.ids[i],
        JSON.stringify(sessionData(i, 0)),
        null,
        expiresAt(now),
        1,
        now
      ])
      if (r.rowCount !== 1) throw new Error("seed: create wrote nothing")
    }
  }))
  return {
    load: async (index: number): Promise<unknown> => {
      const r = await query("bench_load", st.load, [plan.ids[index], Date.now()])
      if (r.rows.length !== 1) throw new Error("session missing")
      return r.rows[0]
    },
    save: async (index: number, write: number): Promise<unknown> => {
      const now = Date.now()
      const r = await query("bench_save", st.save, [
        JSON.stringify(sessionData(index, write)),
        null,
        expiresAt(now),
        plan.ids[index],
        versions[index],
        now
      ])
      if (r.rowCount !== 1) throw new Error("compare-and-set wrote nothing")
      versions[index]++
      return r.rows[0]
    }
  }
}

/** Raw pg: SqlStore's statements through `pool.query`, one Promise worker per lane. */
export const rawPg = (plan: Plan): Promise<Stats> =>
  withRawTable(async (pool, st) => runPromise("raw pg (same statements)", plan, await rawOps(pool, st, plan)))

/** Raw pg with `load` and `save` as named prepared statements, as SqlStore sends them by default. */
export const rawPgPrepared = (plan: Plan): Promise<Stats> =>
  withRawTable(async (pool, st) =>
    runPromise("raw pg (same statements, prepared)", plan, await rawOps(pool, st, plan, true))
  )

/** The same raw calls, each in `Effect.tryPromise` and nothing else, one fiber per lane. */
export const effectTryPromise = (plan: Plan): Promise<Stats> =>
  withRawTable(async (pool, st) => {
    const ops = await rawOps(pool, st, plan)
    return Effect.runPromise(runEffect("Effect.tryPromise(raw pg)", plan, {
      load: (index) => Effect.tryPromise(() => ops.load(index)),
      save: (index, write) => Effect.tryPromise(() => ops.save(index, write))
    }))
  })

/** SqlStore over `PgClient`, on its own table: with its defaults, or with the given options under `name`. */
export const sqlStore =
  (name = "SqlStore (Postgres)", options?: SqlStore.Options) => async (plan: Plan): Promise<Stats> => {
    const table = uniqueName("bench_sql")
    try {
      return await runStoreLayer(name, plan, SqlStore.layer({ ...options, table }).pipe(Layer.provide(pgClientLayer)))
    } finally {
      const pool = newPool()
      await pool.query(`DROP TABLE IF EXISTS "${table}"`)
      await pool.end()
    }
  }

/** The workloads of this file, in the order the runner runs them (each warms up on a smaller plan first). */
export const storeSqlWorkloads: ReadonlyArray<Workload> = [
  workload("raw pg (same statements)", "raw", "postgres", rawPg),
  workload("SqlStore (Postgres)", "ours", "postgres", sqlStore()),
  workload("raw pg (same statements, prepared)", "baseline", "postgres", rawPgPrepared),
  workload(
    "SqlStore (Postgres, preparedStatements: false)",
    "ours",
    "postgres",
    sqlStore("SqlStore (Postgres, preparedStatements: false)", { preparedStatements: false })
  ),
  workload(
    "SqlStore (Postgres, reservedConnections: 0)",
    "ours",
    "postgres",
    sqlStore("SqlStore (Postgres, reservedConnections: 0)", { reservedConnections: 0 })
  ),
  workload("Effect.tryPromise(raw pg)", "baseline", "postgres", effectTryPromise)
]

/** `SqlStore` mixed ops/s over raw pg mixed ops/s, from the rows of one run. */
export const sqlRatio = ratioOver("SqlStore (Postgres)", "postgres")

if (import.meta.url === `file://${process.argv[1]}`) {
  await runStandalone(storeSqlWorkloads, sqlRatio, "SqlStore / raw pg", 0.85, [{
    label: "SqlStore / raw pg prepared",
    ratioOf: (rows) => {
      const ours = rows.find((r) => r.name === "SqlStore (Postgres)")
      const prepared = rows.find((r) => r.name === "raw pg (same statements, prepared)")
      return ours !== undefined && prepared !== undefined ? ours.opsPerSec / prepared.opsPerSec : undefined
    }
  }])
}
