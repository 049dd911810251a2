/**
 * SqlStore's per-user index (`SessionIndex`) on PostgreSQL, MariaDB and a SQLite file, each on its own table:
 * - 100,000 bound sessions over 10,000 users (10 each) of about 400 B, bulk-inserted (1,000 rows per
 *   `INSERT`, the `user_key` computed as the store computes it); the load time is printed;
 * - `list` of 1,000 random users, then `revoke` of 1,000 other random users, one call at a time (p50/p99);
 * - `revoke` of one user holding 1,000 sessions (made by the same bulk insert), REVOKE_ROUNDS times;
 * - the store-level plan (bench/lib/workload.ts: creates of 10,000 sessions, then 50,000 ops, 80% load / 20%
 *   save, 64 in flight) with unbound sessions, as today, and with every session bound to a user, so the cost
 *   of writing the user key and its index shows; creates are the seeding, timed.
 *
 * Run alone: `npx tsx bench/index-sql.ts` (BENCH_INDEX_SESSIONS, BENCH_OPS, BENCH_SESSIONS,
 * BENCH_INDEX_ONLY=pg,mariadb,sqlite shorten it).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Binding from "../src/internal/binding.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionToken from "../src/SessionToken.js"
import * as SqlStore from "../src/SqlStore.js"
import { pgClientLayer, services, uniqueName } from "./lib/services.js"
import {
  boundSessionData,
  defaultWorkload,
  expiresAt,
  makePlan,
  percentile,
  prng,
  runEffect,
  SESSIONS_PER_USER,
  storeOps
} from "./lib/workload.js"

const env = (name: string): string | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : v
}

const INDEX_SESSIONS = Number(env("BENCH_INDEX_SESSIONS") ?? 100_000)
const USERS = Math.ceil(INDEX_SESSIONS / SESSIONS_PER_USER)
const CALLS = 1_000
const BIG_USER_SESSIONS = 1_000
const REVOKE_ROUNDS = 5
const INSERT_BATCH = 1_000

interface Target {
  readonly name: string
  readonly dialect: "pg" | "mysql" | "sqlite"
  readonly layer: Layer.Layer<SqlClient.SqlClient, unknown>
  readonly cleanup?: () => void
}

const targets = (): ReadonlyArray<Target> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-index-sql-"))
  const all: ReadonlyArray<Target> = [
    { name: "pg", dialect: "pg", layer: pgClientLayer },
    {
      name: "mariadb",
      dialect: "mysql",
      layer: MysqlClient.layer({
        host: services.mysql.host,
        port: services.mysql.port,
        username: services.mysql.user,
        database: services.mysql.database,
        maxConnections: 10
      }).pipe(Layer.provide(Reactivity.layer))
    },
    {
      name: "sqlite",
      dialect: "sqlite",
      layer: SqliteClient.layer({ filename: path.join(dir, "sessions.db") }).pipe(Layer.provide(Reactivity.layer)),
      cleanup: () => fs.rmSync(dir, { recursive: true, force: true })
    }
  ]
  const only = env("BENCH_INDEX_ONLY")?.split(",").map((s) => s.trim())
  return only === undefined ? all : all.filter((t) => only.includes(t.name))
}

const quote = (dialect: Target["dialect"], name: string) => (dialect === "mysql" ? `\`${name}\`` : `"${name}"`)

const newId = () => SessionId.fromToken(SessionToken.unsafeGenerate())

export interface Row {
  readonly store: string
  readonly op: string
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
}

export interface StoreLevelRow {
  readonly store: string
  readonly sessions: "unbound" | "bound"
  readonly createPerSec: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
}

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const t0 = performance.now()
    return Effect.map(self, (a) => [a, performance.now() - t0] as const)
  })

const summary = (store: string, op: string, ms: ReadonlyArray<number>): Row => {
  const sorted = Float64Array.from(ms).sort()
  return { store, op, samples: ms.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) }
}

/** Bulk-inserts `count` sessions bound to user `user-<(first + i) / 10>` (or all to `user`), 1,000 per statement. */
const bulkInsert = (
  sql: SqlClient.SqlClient,
  target: Target,
  table: string,
  first: number,
  count: number,
  user?: string
) =>
  Effect.gen(function*() {
    const now = Date.now()
    let n = 0
    const p = () => (target.dialect === "pg" ? `$${++n}` : "?")
    for (let from = 0; from < count; from += INSERT_BATCH) {
      n = 0
      const size = Math.min(INSERT_BATCH, count - from)
      const values: Array<unknown> = []
      const tuples: Array<string> = []
      for (let i = 0; i < size; i++) {
        const index = first + from + i
        const data = boundSessionData(index, 0)
        if (user !== undefined) {
          const meta = data["effect-sessions:meta"] as { user: { id: string } }
          meta.user.id = user
        }
        values.push(newId(), JSON.stringify(data), Binding.userKeyOf(data), expiresAt(now), 1)
        tuples.push(`(${p()}, ${p()}, ${p()}, ${p()}, ${p()})`)
      }
      yield* sql.unsafe(
        `INSERT INTO ${quote(target.dialect, table)} (id, data, user_key, expires_at, version) VALUES ${
          tuples.join(", ")
        }`,
        values
      ).raw
    }
  })

const indexOps = (target: Target) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = uniqueName("bench_index")
    return yield* Effect.gen(function*() {
      const { index } = yield* SqlStore.make({ table })
      const [, loadMs] = yield* timed(bulkInsert(sql, target, table, 0, INDEX_SESSIONS))
      console.log(
        `${target.name}: ${INDEX_SESSIONS.toLocaleString("en-US")} sessions loaded in ${(loadMs / 1000).toFixed(1)} s`
      )
      const rand = prng(14)
      const users = Array.from({ length: USERS }, (_, u) => u)
      for (let i = users.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1))
        ;[users[i], users[j]] = [users[j], users[i]]
      }
      const calls = Math.min(CALLS, Math.floor(USERS / 2))
      const listMs: Array<number> = []
      for (const u of users.slice(0, calls)) {
        const [entries, ms] = yield* timed(index.list(`user-${u}`))
        if (entries.length !== SESSIONS_PER_USER) throw new Error(`list found ${entries.length} sessions`)
        listMs.push(ms)
      }
      const revokeMs: Array<number> = []
      for (const u of users.slice(calls, 2 * calls)) {
        const [count, ms] = yield* timed(index.revoke(`user-${u}`))
        if (count !== SESSIONS_PER_USER) throw new Error(`revoke counted ${count} sessions`)
        revokeMs.push(ms)
      }
      const bigMs: Array<number> = []
      for (let round = 0; round < REVOKE_ROUNDS; round++) {
        const user = `big-user-${round}`
        yield* bulkInsert(sql, target, table, INDEX_SESSIONS + round * BIG_USER_SESSIONS, BIG_USER_SESSIONS, user)
        const [count, ms] = yield* timed(index.revoke(user))
        if (count !== BIG_USER_SESSIONS) throw new Error(`revoke counted ${count} sessions`)
        bigMs.push(ms)
      }
      console.log(`${target.name}: revoke of ${BIG_USER_SESSIONS} sessions, each round: ${
        bigMs.map((ms) => ms.toFixed(1)).join(", ")
      } ms`)
      return [
        summary(target.name, `list (${SESSIONS_PER_USER} sessions)`, listMs),
        summary(target.name, `revoke (${SESSIONS_PER_USER} sessions)`, revokeMs),
        summary(target.name, `revoke (${BIG_USER_SESSIONS} sessions)`, bigMs)
      ]
    }).pipe(Effect.ensuring(Effect.ignore(sql.unsafe(`DROP TABLE IF EXISTS ${quote(target.dialect, table)}`).raw)))
  })

const storeLevel = (target: Target, bound: boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = uniqueName("bench_index_store")
    const plan = makePlan({
      ...defaultWorkload,
      sessions: Number(env("BENCH_SESSIONS") ?? defaultWorkload.sessions),
      operations: Number(env("BENCH_OPS") ?? defaultWorkload.operations)
    })
    return yield* Effect.gen(function*() {
      const { store } = yield* SqlStore.make({ table })
      const [ops, seedMs] = yield* timed(storeOps(store, plan, { bound }))
      const stats = yield* runEffect(`${target.name}`, plan, ops)
      return {
        store: target.name,
        sessions: bound ? "bound" : "unbound",
        createPerSec: plan.ids.length / (seedMs / 1000),
        opsPerSec: stats.opsPerSec,
        p50Ms: stats.p50Ms,
        p99Ms: stats.p99Ms
      } satisfies StoreLevelRow
    }).pipe(Effect.ensuring(Effect.ignore(sql.unsafe(`DROP TABLE IF EXISTS ${quote(target.dialect, table)}`).raw)))
  })

/** Runs every target; prints both tables and returns their rows. */
export const runIndexSql = async (): Promise<{ rows: Array<Row>; storeRows: Array<StoreLevelRow> }> => {
  const rows: Array<Row> = []
  const storeRows: Array<StoreLevelRow> = []
  for (const target of targets()) {
    try {
      await Effect.runPromise(
        Effect.gen(function*() {
          for (const row of yield* indexOps(target)) rows.push(row)
          // alternate the order so neither variant always runs on the warmer server
          for (const bound of [false, true, true, false]) {
            const r = yield* storeLevel(target, bound)
            const done = storeRows.find((s) => s.store === r.store && s.sessions === r.sessions)
            if (done === undefined) storeRows.push(r)
            else if (r.opsPerSec > done.opsPerSec) storeRows.splice(storeRows.indexOf(done), 1, r)
          }
        }).pipe(Effect.provide(target.layer), Effect.scoped)
      )
    } finally {
      target.cleanup?.()
    }
  }
  console.log("\nSessionIndex on SqlStore (one call at a time)")
  console.log(
    `${"store".padEnd(10)} ${"operation".padEnd(26)} ${"calls".padStart(6)} ${"p50 ms".padStart(8)} ${
      "p99 ms".padStart(8)
    }`
  )
  for (const r of rows) {
    console.log(
      `${r.store.padEnd(10)} ${r.op.padEnd(26)} ${String(r.samples).padStart(6)} ${r.p50Ms.toFixed(2).padStart(8)} ${
        r.p99Ms.toFixed(2).padStart(8)
      }`
    )
  }
  console.log("\nStore level with and without a bound user (creates timed while seeding; the better of 2 runs)")
  console.log(
    `${"store".padEnd(10)} ${"sessions".padEnd(9)} ${"create/s".padStart(9)} ${"ops/s".padStart(8)} ${
      "p50 ms".padStart(8)
    } ${"p99 ms".padStart(8)}`
  )
  for (const r of storeRows) {
    console.log(
      `${r.store.padEnd(10)} ${r.sessions.padEnd(9)} ${r.createPerSec.toFixed(0).padStart(9)} ${
        r.opsPerSec.toFixed(0).padStart(8)
      } ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)}`
    )
  }
  return { rows, storeRows }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runIndexSql()
}
