/**
 * The session index benchmark on any store that provides `SessionIndex`: `sessions` bound sessions over
 * `users` users, then `list` and `revoke` of random users one at a time (p50 / p99), `revoke` of one user
 * holding `bigUser` sessions, and the cost of the binding on writes: creates and saves of bound and unbound
 * records, interleaved in rounds.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { META_KEY } from "../../src/Session.js"
import * as SessionData from "../../src/SessionData.js"
import * as SessionId from "../../src/SessionId.js"
import * as SessionIndex from "../../src/SessionIndex.js"
import type * as SessionRecord from "../../src/SessionRecord.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SessionToken from "../../src/SessionToken.js"
import { percentile } from "./workload.js"

export interface IndexSizes {
  readonly sessions: number
  readonly users: number
  readonly samples: number
  readonly bigUser: number
  readonly writes: number
}

export const defaultSizes = (): IndexSizes => ({
  sessions: Number(process.env.BENCH_INDEX_SESSIONS ?? 100_000),
  users: Number(process.env.BENCH_INDEX_USERS ?? 10_000),
  samples: Number(process.env.BENCH_INDEX_SAMPLES ?? 500),
  bigUser: Number(process.env.BENCH_INDEX_BIG_USER ?? 1_000),
  writes: Number(process.env.BENCH_INDEX_WRITES ?? 10_000)
})

export interface IndexRow {
  readonly store: string
  readonly measure: string
  readonly p50Ms: number
  readonly p99Ms: number
  readonly count: number
  /** For the write rows: operations per second. */
  readonly opsPerSec?: number
}

const round = (n: number) => Math.round(n * 1000) / 1000

const summary = (store: string, measure: string, samples: Array<number>, extra?: Partial<IndexRow>): IndexRow => {
  const sorted = Float64Array.from(samples).sort()
  return {
    store,
    measure,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    count: samples.length,
    ...extra
  }
}

const filler = "x".repeat(200)

const dataOf = (user: string | undefined, now: number): SessionData.SessionData => {
  const meta: Record<string, SessionData.JsonValue> = { createdAt: now, refreshedAt: now }
  if (user !== undefined) {
    meta.user = { id: user, authenticatedAt: now, userAgent: "Mozilla/5.0 (X11; Linux x86_64) bench" }
  }
  return SessionData.fromEntries([["cart", filler], [META_KEY, meta]])
}

const newRecord = (user: string | undefined, now: number): SessionRecord.SessionRecord => ({
  id: SessionId.fromToken(SessionToken.unsafeGenerate()),
  data: dataOf(user, now),
  expiresAt: now + 3_600_000,
  version: 1
})

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    return performance.now() - start
  })

/** Runs the benchmark on the store and index `layer` provides; `prefix` keeps user ids apart between runs. */
export const runIndexBench = <E>(
  store: string,
  layer: Layer.Layer<SessionStore.SessionStore | SessionIndex.SessionIndex, E>,
  sizes: IndexSizes = defaultSizes()
): Promise<ReadonlyArray<IndexRow>> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sessions = yield* SessionStore.SessionStore
      const index = yield* SessionIndex.SessionIndex
      const prefix = `bench-${Date.now().toString(36)}-`
      const now = Date.now()
      const user = (i: number) => `${prefix}${i}`
      // load: the sessions, round-robin over the users
      const created: Array<SessionId.SessionId> = []
      yield* Effect.forEach(
        Array.from({ length: sizes.sessions }, (_, i) => i),
        (i) =>
          Effect.map(sessions.create(newRecord(user(i % sizes.users), now)), (r) => {
            created.push(r.id)
          }),
        { concurrency: 64, discard: true }
      )
      const rows: Array<IndexRow> = []
      // list: random users, one at a time
      const listed: Array<number> = []
      for (let i = 0; i < sizes.samples; i++) {
        listed.push(yield* timed(index.list(user(Math.floor(Math.random() * sizes.users)))))
      }
      rows.push(summary(store, `list (${sizes.sessions / sizes.users} sessions/user)`, listed))
      // revoke: distinct random users, one at a time
      const revoked: Array<number> = []
      const picked = new Set<number>()
      while (picked.size < Math.min(sizes.samples, sizes.users)) picked.add(Math.floor(Math.random() * sizes.users))
      for (const u of picked) revoked.push(yield* timed(index.revoke(user(u))))
      rows.push(summary(store, `revoke (${sizes.sessions / sizes.users} sessions/user)`, revoked))
      // one user with many sessions
      const big: Array<number> = []
      for (let round = 0; round < 3; round++) {
        const who = `${prefix}big-${round}`
        yield* Effect.forEach(
          Array.from({ length: sizes.bigUser }),
          () => sessions.create(newRecord(who, now)),
          { concurrency: 64, discard: true }
        )
        big.push(yield* timed(index.list(who)))
        const t = yield* timed(index.revoke(who))
        big.push(t)
      }
      // list then revoke, alternating: split them
      rows.push(summary(store, `list of one user with ${sizes.bigUser}`, big.filter((_, i) => i % 2 === 0)))
      rows.push(summary(store, `revoke of one user with ${sizes.bigUser}`, big.filter((_, i) => i % 2 === 1)))
      // writes: create + save of bound and unbound records, interleaved rounds, 64 in flight
      const writes = (bound: boolean) =>
        Effect.gen(function*() {
          const latencies: Array<number> = []
          const start = performance.now()
          yield* Effect.forEach(
            Array.from({ length: sizes.writes / 2 }, (_, i) => i),
            (i) =>
              Effect.gen(function*() {
                const who = bound ? user(i % sizes.users) : undefined
                let t = performance.now()
                const r = yield* sessions.create(newRecord(who, now))
                latencies.push(performance.now() - t)
                t = performance.now()
                yield* sessions.save({ ...r, data: dataOf(who, now + 1) })
                latencies.push(performance.now() - t)
                created.push(r.id)
              }),
            { concurrency: 64, discard: true }
          )
          return { latencies, seconds: (performance.now() - start) / 1000 }
        })
      const byKind = { bound: [] as Array<number>, unbound: [] as Array<number>, secs: { bound: 0, unbound: 0 } }
      for (let round = 0; round < 3; round++) {
        for (const kind of round % 2 === 0 ? (["unbound", "bound"] as const) : (["bound", "unbound"] as const)) {
          const result = yield* writes(kind === "bound")
          for (const l of result.latencies) byKind[kind].push(l)
          byKind.secs[kind] += result.seconds
        }
      }
      for (const kind of ["unbound", "bound"] as const) {
        rows.push(
          summary(store, `create+save, ${kind}`, byKind[kind], {
            opsPerSec: Math.round(byKind[kind].length / byKind.secs[kind])
          })
        )
      }
      // clean up what is left
      yield* Effect.forEach(created, (id) => sessions.delete(id), { concurrency: 64, discard: true })
      return rows
    }).pipe(Effect.provide(layer), Effect.scoped) as Effect.Effect<ReadonlyArray<IndexRow>, E>
  )

/** Prints rows as a table. */
export const printRows = (rows: ReadonlyArray<IndexRow>): void => {
  for (const r of rows) {
    console.log(
      `${r.store.padEnd(28)} ${r.measure.padEnd(34)} p50 ${String(r.p50Ms).padStart(8)} ms  p99 ${
        String(r.p99Ms).padStart(8)
      } ms  n=${r.count}${r.opsPerSec !== undefined ? `  ${r.opsPerSec} ops/s` : ""}`
    )
  }
}
