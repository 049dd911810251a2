/**
 * The per-user index of RedisStore, on a standalone Redis (the shared server) and on a private 3-master Redis
 * Cluster (started for this run, as the tests do):
 * - 100,000 sessions over 10,000 users (10 each) loaded through `create`, then `list` and `revoke` of random
 *   users, one at a time (p50/p99);
 * - `revoke` of one user holding 1,000 sessions (a few rounds);
 * - the store-level workload (`bench/lib/workload.ts`: 10,000 sessions, 80% load / 20% save, 64 in flight) with
 *   the sessions bound to users (10 per user) next to the same workload unbound: the index's cost on create
 *   (the seeding) and on save.
 *
 * Run alone: `npx tsx bench/index-redis.ts`; BENCH_INDEX_SESSIONS, BENCH_INDEX_USERS, BENCH_INDEX_SAMPLES,
 * BENCH_OPS and BENCH_SESSIONS shorten it; BENCH_INDEX_MODES=standalone (or cluster) runs one mode.
 * `bench/run.ts` runs it as a child (`--level index`) and prints its table.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import * as RedisStore from "../src/RedisStore.js"
import { META_KEY } from "../src/Session.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionIndex from "../src/SessionIndex.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionToken from "../src/SessionToken.js"
import { startCluster } from "../test/support/redisServers.js"
import { services, uniqueName, unlinkPrefix } from "./lib/services.js"
import {
  boundData,
  defaultWorkload,
  expiresAt,
  makePlan,
  percentile,
  prng,
  runEffect,
  storeOps
} from "./lib/workload.js"

const SESSIONS = Number(process.env.BENCH_INDEX_SESSIONS ?? 100_000)
const USERS = Number(process.env.BENCH_INDEX_USERS ?? 10_000)
const SAMPLES = Number(process.env.BENCH_INDEX_SAMPLES ?? 500)
const BIG = 1_000
const BIG_ROUNDS = 3
const MODES = (process.env.BENCH_INDEX_MODES ?? "standalone,cluster").split(",")

export interface IndexRow {
  readonly mode: string
  readonly op: string
  readonly n: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly note: string
}

type Services = SessionStore.SessionStore | SessionIndex.SessionIndex

const timed = async (n: number, body: (i: number) => Promise<unknown>): Promise<Float64Array> => {
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await body(i)
    out[i] = performance.now() - t0
  }
  return out.sort()
}

const row = (mode: string, op: string, samples: Float64Array, note = ""): IndexRow => ({
  mode,
  op,
  n: samples.length,
  p50Ms: percentile(samples, 50),
  p99Ms: percentile(samples, 99),
  note
})

const run = async (mode: string, layer: Layer.Layer<Services, unknown>): Promise<Array<IndexRow>> => {
  const rows: Array<IndexRow> = []
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    const store = Context.get(context, SessionStore.SessionStore)
    const index = Context.get(context, SessionIndex.SessionIndex)
    const exec = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)

    // 100,000 bound sessions over 10,000 users
    const ids = Array.from({ length: SESSIONS }, () => SessionId.fromToken(SessionToken.unsafeGenerate()))
    const t0 = performance.now()
    const until = expiresAt(Date.now())
    yield* Effect.forEach(
      ids,
      (id, i) => store.create({ id, data: boundData(i, 0, USERS), expiresAt: until, version: 1 }),
      { concurrency: 64, discard: true }
    )
    const loadSeconds = (performance.now() - t0) / 1000
    console.error(`${mode}: loaded ${SESSIONS} sessions over ${USERS} users in ${loadSeconds.toFixed(1)} s`)

    const rand = prng(7)
    const listed = yield* Effect.promise(() =>
      timed(SAMPLES, () => exec(index.list(`user-${Math.floor(rand() * USERS)}`)))
    )
    rows.push(row(mode, `list (${SESSIONS / USERS} sessions per user)`, listed, `load ${loadSeconds.toFixed(1)} s`))
    // distinct users, so that each revoke finds its user's sessions
    const order = Array.from({ length: USERS }, (_, i) => i).sort(() => rand() - 0.5)
    const revoked = yield* Effect.promise(() =>
      timed(Math.min(SAMPLES, USERS), (i) => exec(index.revoke(`user-${order[i]}`)))
    )
    rows.push(row(mode, `revoke (${SESSIONS / USERS} sessions per user)`, revoked))

    // one user with 1,000 sessions: the revoke alone is timed, a few rounds
    const bigOnly: Array<number> = []
    for (let round = 0; round < BIG_ROUNDS; round++) {
      const user = `big-${round}-${SessionToken.unsafeGenerate().slice(0, 8)}`
      const data = { ...boundData(0, 0, 1), [META_KEY]: { createdAt: 1, user: { id: user, authenticatedAt: 2 } } }
      const now = expiresAt(Date.now())
      yield* Effect.forEach(
        Array.from({ length: BIG }),
        () =>
          store.create({ id: SessionId.fromToken(SessionToken.unsafeGenerate()), data, expiresAt: now, version: 1 }),
        { concurrency: 64, discard: true }
      )
      const t = performance.now()
      const count = yield* index.revoke(user)
      bigOnly.push(performance.now() - t)
      if (count !== BIG) return yield* Effect.dieMessage(`revoke counted ${count}, expected ${BIG}`)
    }
    rows.push(row(mode, `revoke of one user with ${BIG} sessions`, Float64Array.from(bigOnly).sort()))
    // the rest of the loaded sessions
    yield* Effect.forEach(ids, (id) => store.delete(id), { concurrency: 64, discard: true })

    // store level: the same workload unbound and bound
    const options = {
      ...defaultWorkload,
      sessions: Number(process.env.BENCH_SESSIONS ?? defaultWorkload.sessions),
      operations: Number(process.env.BENCH_OPS ?? defaultWorkload.operations)
    }
    for (const users of [undefined, Math.max(1, Math.floor(options.sessions / 10))]) {
      const plan = makePlan(options)
      const s0 = performance.now()
      const ops = yield* storeOps(store, plan, users === undefined ? {} : { users })
      const seedMs = performance.now() - s0
      const stats = yield* runEffect("store", plan, ops)
      const label = users === undefined ? "unbound" : "bound to users"
      rows.push({
        mode,
        op: `store level, ${label}: mixed 80% load / 20% save`,
        n: stats.operations,
        p50Ms: stats.p50Ms,
        p99Ms: stats.p99Ms,
        note: `${Math.round(stats.opsPerSec)} ops/s; seeding ${plan.ids.length} creates at 64 in flight: ${
          Math.round(plan.ids.length / (seedMs / 1000))
        } creates/s`
      })
      yield* Effect.forEach(plan.ids, (id) => store.delete(id), { concurrency: 64, discard: true })
    }
  })))
  return rows
}

export const runIndexRedis = async (): Promise<Array<IndexRow>> => {
  const rows: Array<IndexRow> = []
  if (MODES.includes("standalone")) {
    const prefix = `${uniqueName("bench_index")}:`
    try {
      const url = `redis://${services.redis.host}:${services.redis.port}`
      for (const r of await run("standalone", RedisStore.layer({ url: Redacted.make(url), keyPrefix: prefix }))) {
        rows.push(r)
      }
    } finally {
      const client = new Redis({ ...services.redis })
      await unlinkPrefix(client, prefix)
      await client.quit()
    }
  }
  if (MODES.includes("cluster")) {
    const cluster = await startCluster()
    try {
      for (const r of await run("cluster", RedisStore.layerCluster({ nodes: cluster.nodes }))) rows.push(r)
    } finally {
      await cluster.stop()
    }
  }
  return rows
}

export const printIndexRows = (rows: ReadonlyArray<IndexRow>): void => {
  const pad = (s: string, n: number) => s.padEnd(n)
  console.log(
    `${pad("mode", 11)} ${pad("operation", 56)} ${"n".padStart(6)} ${"p50 ms".padStart(8)} ${
      "p99 ms".padStart(8)
    }  note`
  )
  for (const r of rows) {
    console.log(
      `${pad(r.mode, 11)} ${pad(r.op, 56)} ${String(r.n).padStart(6)} ${r.p50Ms.toFixed(3).padStart(8)} ${
        r.p99Ms.toFixed(3).padStart(8)
      }  ${r.note}`
    )
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printIndexRows(await runIndexRedis())
  process.exit(0)
}
