/**
 * `npm run bench`: every benchmark in one run on one machine, in sequence, with a progress
 * line per workload; then one table with ratios and target verdicts, the figures as JSON
 * (`bench/results/<date>.json`, with `bench/results/latest.json` pointing at it) and the chart (`docs/bench.svg`).
 *
 * - Store level: the shared plan (10,000 sessions of ~300 B, 50,000 ops, 80% load / 20% save, 64 in flight)
 *   through our stores, the raw drivers and the express-session stores (bench/store-*.ts).
 * - HTTP level: each server in its own process, autocannon here, 50 connections with a session each,
 *   2 s warm-up then 10 s (bench/http/).
 * - Index: `list` and `revoke` per store over 100,000 sessions of 10,000 users, one user with 1,000 sessions,
 *   and writes with and without a bound user (bench/index-*.ts).
 * - Memory: 100,000 sessions in an in-process store, heap after a GC (bench/memory.ts).
 * - Revocation: three app processes sharing one store, a logout a second, with and without the store engine's
 *   invalidation channel (bench/http/revocation.ts).
 *
 * Environment, for smoke tests: `BENCH_ONLY=store,index,http,memory,revocation` (any subset), `BENCH_SECONDS` (HTTP run
 * length, default 10), `BENCH_WARMUP` (default 2), `BENCH_OPS` / `BENCH_SESSIONS` (store level),
 * `BENCH_MEMORY_SESSIONS`, `BENCH_FILTER` (a substring of workload names), `BENCH_ROUNDS` (rounds of the two
 * driver comparisons with a target, default 3), `BENCH_REVOCATION_ROUNDS` (default 2), `BENCH_INDEX_SESSIONS` / `BENCH_INDEX_USERS` / `BENCH_INDEX_SAMPLES`. A shortened run writes its JSON
 * and chart to the temp directory instead of the committed files.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { render } from "./chart.js"
import { percentile, revocationName, type RevocationRow, runRevocation } from "./http/revocation.js"
import { runHttp } from "./http/run.js"
import { type Variant, variants } from "./http/variants.js"
import { runIndexSql } from "./index-sql.js"
import { here, spawnChild } from "./lib/child.js"
import {
  describeMachine,
  type HttpRow,
  type IndexResultRow,
  latestPointer,
  machine,
  type MemoryRow,
  type Missing,
  type Results,
  type StoreRow,
  type Target
} from "./lib/results.js"
import { defaultWorkload, makePlan } from "./lib/workload.js"
import { MEMORY_SESSIONS } from "./memory.js"
import { storePeerWorkloads } from "./store-peers.js"
import { redisRatio, storeRedisWorkloads } from "./store-redis.js"
import { sqlRatio, storeSqlWorkloads } from "./store-sql.js"

const env = (name: string): string | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : v
}
const levels = new Set((env("BENCH_ONLY") ?? "store,index,http,memory,revocation").split(",").map((s) => s.trim()))
const httpSeconds = Number(env("BENCH_SECONDS") ?? 10)
const warmupSeconds = Number(env("BENCH_WARMUP") ?? 2)
const connections = 50
const filter = env("BENCH_FILTER")
const workload = {
  ...defaultWorkload,
  sessions: Number(env("BENCH_SESSIONS") ?? defaultWorkload.sessions),
  operations: Number(env("BENCH_OPS") ?? defaultWorkload.operations)
}
const memorySessions = Number(env("BENCH_MEMORY_SESSIONS") ?? MEMORY_SESSIONS)
const shortened = [
  "BENCH_ONLY",
  "BENCH_ROUNDS",
  "BENCH_SECONDS",
  "BENCH_WARMUP",
  "BENCH_OPS",
  "BENCH_SESSIONS",
  "BENCH_MEMORY_SESSIONS",
  "BENCH_FILTER",
  "BENCH_REVOCATION_ROUNDS",
  "BENCH_INDEX_ONLY",
  "BENCH_INDEX_SESSIONS",
  "BENCH_INDEX_USERS",
  "BENCH_INDEX_SAMPLES",
  "BENCH_INDEX_BIG_USER",
  "BENCH_INDEX_WRITES",
  "BENCH_INDEX_MODES"
]
  .filter((n) => env(n) !== undefined)
const command = [...shortened.map((n) => `${n}=${env(n)}`), "npm run bench"].join(" ")
const selected = (name: string) => filter === undefined || name.toLowerCase().includes(filter.toLowerCase())

// ---------------------------------------------------------------------------------------------------------------
// the plan of the run

interface Step {
  readonly level: "store" | "index" | "http" | "memory" | "revocation"
  readonly name: string
  readonly run: () => Promise<string>
}

const store: Array<StoreRow> = []
const http: Array<HttpRow> = []
const memory: Array<MemoryRow> = []
const revocation: Array<RevocationRow> = []
const missing: Array<Missing> = [
  {
    level: "store",
    name: "MongoStore",
    reason: "no MongoDB server on this machine; it runs the contract suite only when MONGODB_URL is set"
  },
  {
    level: "http",
    name: "a peer for CachingStore",
    reason:
      "express-session has no caching store in front of another store; CachingStore is compared with SqlStore alone"
  }
]

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

const steps: Array<Step> = []

if (levels.has("store")) {
  const plan = makePlan(workload)
  for (const w of [...storeRedisWorkloads, ...storeSqlWorkloads, ...storePeerWorkloads]) {
    if (!selected(w.name)) continue
    steps.push({
      level: "store",
      name: w.name,
      run: async () => {
        const r = await w.run(plan)
        store.push(r)
        return `${fmt(r.opsPerSec)} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`
      }
    })
  }
}

/**
 * The session index (bench/index-*.ts): `list` and `revoke` over 100,000 sessions of 10,000 users, one user
 * with 1,000 sessions, and writes with and without a bound user, per store.
 */
const index: Array<IndexResultRow> = []
const indexSteps: ReadonlyArray<readonly [string, () => Promise<ReadonlyArray<IndexResultRow>>]> = [
  ["SessionIndex on MemoryStore and CachingStore (bench/index-memory.ts)", async () => {
    const { runIndexMemory } = await import("./index-memory.js")
    return (await runIndexMemory()).map((r) => ({
      store: r.store,
      op: r.measure,
      n: r.count,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      note: r.opsPerSec === undefined ? "" : `${fmt(r.opsPerSec)} ops/s`
    }))
  }],
  ["SessionIndex on SqlStore (bench/index-sql.ts)", async () => {
    const { rows, storeRows } = await runIndexSql()
    return [
      ...rows.map((r) => ({
        store: `SqlStore ${r.store}`,
        op: r.op,
        n: r.samples,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        note: ""
      })),
      ...storeRows.map((r) => ({
        store: `SqlStore ${r.store}`,
        op: `store plan, ${r.sessions}`,
        n: 0,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        note: `${fmt(r.opsPerSec)} ops/s, ${fmt(r.createPerSec)} creates/s`
      }))
    ]
  }],
  ["SessionIndex on RedisStore, standalone and Cluster (bench/index-redis.ts)", async () => {
    const { runIndexRedis } = await import("./index-redis.js")
    return (await runIndexRedis()).map((r) => ({
      store: `RedisStore ${r.mode}`,
      op: r.op,
      n: r.n,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      note: r.note
    }))
  }]
]
if (levels.has("index")) {
  for (const [name, run] of indexSteps) {
    if (!selected(name)) continue
    steps.push({
      level: "index",
      name,
      run: async () => {
        const rows = await run()
        for (const r of rows) index.push(r)
        return `${rows.length} rows`
      }
    })
  }
}

/**
 * The two driver comparisons with a target (SqlStore / raw pg, RedisStore / raw ioredis) run BENCH_ROUNDS
 * rounds in all (default 3): the round above, then pairs in alternating order. Each round gives a ratio; the
 * target is judged on their median, since one pair on this shared machine moves by ±0.15. The table's rows
 * are the first round's.
 */
const rounds = Math.max(1, Number(env("BENCH_ROUNDS") ?? 3))
const ratioRounds: Record<"sql" | "redis", Array<number>> = { sql: [], redis: [] }

if (levels.has("store")) {
  const plan = makePlan(workload)
  const pairs = [
    {
      key: "sql",
      raw: "raw pg (same statements)",
      ours: "SqlStore (Postgres)",
      all: storeSqlWorkloads,
      ratio: sqlRatio
    },
    { key: "redis", raw: "raw ioredis", ours: "RedisStore", all: storeRedisWorkloads, ratio: redisRatio }
  ] as const
  for (let round = 2; round <= rounds; round++) {
    for (const pair of pairs) {
      const raw = pair.all.find((w) => w.name === pair.raw)
      const ours = pair.all.find((w) => w.name === pair.ours)
      if (raw === undefined || ours === undefined || !selected(pair.raw) || !selected(pair.ours)) continue
      steps.push({
        level: "store",
        name: `${pair.ours} / ${pair.raw}, round ${round}`,
        run: async () => {
          const rows: Array<StoreRow> = []
          for (const w of round % 2 === 0 ? [ours, raw] : [raw, ours]) rows.push(await w.run(plan))
          const ratio = pair.ratio(rows)
          if (ratio !== undefined) ratioRounds[pair.key].push(ratio)
          return rows.map((r) => `${r.name} ${fmt(r.opsPerSec)} ops/s`).join(", ") +
            (ratio === undefined ? "" : `: ${ratio.toFixed(2)}`)
        }
      })
    }
  }
}

/**
 * The HTTP variants run in BENCH_HTTP_ROUNDS interleaved rounds (default 3), each round in a rotated order,
 * so that no variant always runs first or last; a row reports the median round (by server CPU per request)
 * and every round's figures.
 */
const httpRounds = Math.max(1, Number(env("BENCH_HTTP_ROUNDS") ?? 3))
const httpRuns: Map<string, Array<HttpRow>> = new Map()

if (levels.has("http")) {
  const pairs: Array<{ readonly v: Variant; readonly route: "count" | "read" }> = []
  for (const route of ["count", "read"] as const) {
    for (const v of variants) {
      if (v.routes.includes(route) && selected(v.name)) pairs.push({ v, route })
    }
  }
  for (let round = 0; round < httpRounds; round++) {
    const shift = pairs.length === 0 ? 0 : (round * Math.max(1, Math.floor(pairs.length / httpRounds))) % pairs.length
    const order = [...pairs.slice(shift), ...pairs.slice(0, shift)]
    for (const { route, v } of order) {
      steps.push({
        level: "http",
        name: `round ${round + 1}/${httpRounds} ${route === "count" ? "/count" : "/read "} ${v.name}`,
        run: async () => {
          const r = await runHttp(v, route, { connections, seconds: httpSeconds, warmupSeconds })
          const key = `${route} ${v.id}`
          httpRuns.set(key, [...(httpRuns.get(key) ?? []), r])
          const writes = r.storeWrites !== undefined ? `, ${fmt(r.storeWrites)} store writes` : ""
          return `${fmt(r.requestsPerSec)} req/s, ${
            fmt(r.serverCpuMicrosPerRequest)
          } µs server CPU/req, p99 ${r.p99Ms} ms${writes}${r.valid ? "" : `, VOID: ${r.voidReason}`}`
        }
      })
    }
  }
}

/** The row of a variant: its median round by server CPU per request, with every round's figures. */
const medianRow = (runs: ReadonlyArray<HttpRow>): HttpRow => {
  const sorted = [...runs].sort((a, b) => a.serverCpuMicrosPerRequest - b.serverCpuMicrosPerRequest)
  const middle = sorted[Math.floor((sorted.length - 1) / 2)]
  const rps = runs.map((r) => r.requestsPerSec).sort((a, b) => a - b)
  return {
    ...middle,
    requestsPerSec: rps[Math.floor((rps.length - 1) / 2)],
    valid: runs.every((r) => r.valid),
    voidReason: runs.find((r) => !r.valid)?.voidReason,
    rounds: runs.map((r) => ({
      requestsPerSec: r.requestsPerSec,
      serverCpuMicrosPerRequest: r.serverCpuMicrosPerRequest
    }))
  }
}

if (levels.has("memory")) {
  for (const which of ["memory", "lru", "express"]) {
    if (!selected(which === "express" ? "express-session MemoryStore" : which === "lru" ? "LruStore" : "MemoryStore")) {
      continue
    }
    steps.push({
      level: "memory",
      name: `${fmt(memorySessions)} sessions in ${
        which === "express" ? "express-session MemoryStore" : which === "lru" ? "LruStore" : "MemoryStore"
      }`,
      run: async () => {
        const child = spawnChild(here(import.meta.url, "./memory.ts"), {
          args: [which],
          nodeArgs: ["--expose-gc"],
          env: { BENCH_MEMORY_SESSIONS: String(memorySessions) }
        })
        const { row } = await child.next<{ type: "memory"; row: MemoryRow }>("memory", 300_000)
        await child.stop()
        memory.push(row)
        return `${fmt(row.heapPerSession)} B/session of heap (budget ${fmt(row.budgetBytes / row.sessions)} B)`
      }
    })
  }
}

/**
 * Revocation across three instances (bench/http/revocation.ts), per engine with and without its channel, in
 * BENCH_REVOCATION_ROUNDS rounds (default 2) of alternating order; a variant's row pools the latencies of its
 * rounds and reports the median round's req/s and CPU. 12 connections in all: a request waits behind few
 * others, so a latency says how long the instance kept serving the session rather than how deep its queue is.
 */
const revocationRounds = Math.max(1, Number(env("BENCH_REVOCATION_ROUNDS") ?? 2))
const revocationConnections = 12
const revocationRuns: Map<string, Array<RevocationRow>> = new Map()

if (levels.has("revocation")) {
  for (let round = 0; round < revocationRounds; round++) {
    for (const engine of ["redis", "pg"] as const) {
      for (const channel of round % 2 === 0 ? [true, false] : [false, true]) {
        const name = revocationName(engine, channel)
        if (!selected(name)) continue
        steps.push({
          level: "revocation",
          name: `round ${round + 1}/${revocationRounds} ${name.replace("revocation latency: ", "")}`,
          run: async () => {
            const r = await runRevocation(engine, channel, {
              connections: revocationConnections,
              seconds: httpSeconds,
              warmupSeconds
            })
            revocationRuns.set(name, [...(revocationRuns.get(name) ?? []), r])
            return `p50 ${fmt(r.p50Ms, 1)} / p99 ${fmt(r.p99Ms, 1)} / max ${
              fmt(r.maxMs, 1)
            } ms over ${r.samples} (${r.unresolved} unresolved), hit ${(r.hitRatio * 100).toFixed(1)}%, ${
              fmt(r.requestsPerSec)
            } req/s${r.valid ? "" : `, VOID: ${r.voidReason}`}`
          }
        })
      }
    }
  }
}

/** A variant's row over its rounds: latencies pooled, hit ratio averaged, the median round's req/s and CPU. */
const revocationRow = (runs: ReadonlyArray<RevocationRow>): RevocationRow => {
  const latencies = runs.flatMap((r) => r.latenciesMs).sort((a, b) => a - b)
  const byRate = [...runs].sort((a, b) => a.requestsPerSec - b.requestsPerSec)
  const middle = byRate[Math.floor((byRate.length - 1) / 2)]
  return {
    ...middle,
    logouts: runs.reduce((n, r) => n + r.logouts, 0),
    samples: runs.reduce((n, r) => n + r.samples, 0),
    unresolved: runs.reduce((n, r) => n + r.unresolved, 0),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length === 0 ? Number.NaN : latencies[latencies.length - 1],
    latenciesMs: latencies,
    hitRatio: runs.reduce((n, r) => n + r.hitRatio, 0) / runs.length,
    valid: runs.every((r) => r.valid),
    voidReason: runs.find((r) => !r.valid)?.voidReason
  }
}

// ---------------------------------------------------------------------------------------------------------------
// targets

const httpRow = (route: "count" | "read", id: string): HttpRow | undefined => {
  const v = variants.find((x) => x.id === id) as Variant
  return http.find((r) => r.route === route && r.name === v.name)
}

const ratioTarget = (name: string, ours: HttpRow | undefined, base: HttpRow | undefined, goal: number): Target => {
  if (ours === undefined || base === undefined) {
    return { name, value: "not measured", goal: `>= ${goal.toFixed(2)}`, met: null }
  }
  if (!ours.valid || !base.valid) return { name, value: "void run", goal: `>= ${goal.toFixed(2)}`, met: null }
  const ratio = ours.requestsPerSec / base.requestsPerSec
  return {
    name,
    value: `${ratio.toFixed(2)} (${fmt(ours.requestsPerSec)} / ${fmt(base.requestsPerSec)} req/s)`,
    goal: `>= ${goal.toFixed(2)}`,
    met: ratio >= goal
  }
}

/** Store writes allowed on the read-only route: a create, then one refresh per 2 s window of the run. */
const writeBudget = (sessions: number, seconds: number): number => sessions * Math.ceil(1 + seconds / 2)

/** A store-level ratio (ours / raw driver, mixed ops/s) against its goal: the median over the rounds. */
const storeTarget = (name: string, first: number | undefined, more: ReadonlyArray<number>, goal: number): Target => {
  if (first === undefined) return { name, value: "not measured", goal: `>= ${goal.toFixed(2)}`, met: null }
  const all = [first, ...more]
  const sorted = [...all].sort((a, b) => a - b)
  const median = sorted.length % 2 === 1
    ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2
  const value = all.length === 1
    ? median.toFixed(2)
    : `${median.toFixed(2)} (median of ${all.map((r) => r.toFixed(2)).join(", ")})`
  return { name, value, goal: `>= ${goal.toFixed(2)}`, met: median >= goal }
}

/** The session layer's own server CPU per `/count` (with MemoryStore, minus the same framework without sessions), against express-session's. */
const sessionLayerCpu = (
  ours: HttpRow | undefined,
  bare: HttpRow | undefined,
  peer: HttpRow | undefined,
  peerBare: HttpRow | undefined
): Target => {
  const name = "session layer server CPU per /count: effect-sessions vs express-session (MemoryStore)"
  if (ours === undefined || bare === undefined || peer === undefined || peerBare === undefined) {
    return { name, value: "not measured", goal: "below express-session's", met: null }
  }
  const own = ours.serverCpuMicrosPerRequest - bare.serverCpuMicrosPerRequest
  const theirs = peer.serverCpuMicrosPerRequest - peerBare.serverCpuMicrosPerRequest
  return { name, value: `${fmt(own)} vs ${fmt(theirs)} µs/req`, goal: "below express-session's", met: own < theirs }
}

const targets = (): Array<Target> => {
  const out: Array<Target> = []
  if (store.length > 0) {
    out.push(storeTarget("store: SqlStore / raw pg (mixed ops/s)", sqlRatio(store), ratioRounds.sql, 0.85))
    out.push(storeTarget("store: RedisStore / raw ioredis (mixed ops/s)", redisRatio(store), ratioRounds.redis, 0.75))
  }
  const none = httpRow("count", "effect-none")
  out.push(ratioTarget("Effect + MemoryStore / Effect without sessions", httpRow("count", "effect-memory"), none, 0.8))
  out.push(ratioTarget("Effect + RedisStore / Effect without sessions", httpRow("count", "effect-redis"), none, 0.6))
  const redis = httpRow("count", "effect-redis")
  const expressRedis = httpRow("count", "express-redis")
  out.push(
    redis === undefined || expressRedis === undefined
      ? { name: "RedisStore vs express-session + connect-redis", value: "not measured", goal: "more req/s", met: null }
      : !redis.valid || !expressRedis.valid
      ? { name: "RedisStore vs express-session + connect-redis", value: "void run", goal: "more req/s", met: null }
      : {
        name: "RedisStore vs express-session + connect-redis",
        value: `${fmt(redis.requestsPerSec)} vs ${fmt(expressRedis.requestsPerSec)} req/s (${
          (redis.requestsPerSec / expressRedis.requestsPerSec).toFixed(2)
        }x)`,
        goal: "more req/s",
        met: redis.requestsPerSec > expressRedis.requestsPerSec
      }
  )
  out.push(
    ratioTarget("Effect + SqlStore(Postgres) / Effect without sessions", httpRow("count", "effect-pg"), none, 0.35)
  )
  out.push(
    sessionLayerCpu(
      httpRow("count", "effect-memory"),
      none,
      httpRow("count", "express-memory"),
      httpRow("count", "express-none")
    )
  )
  const read = httpRow("read", "effect-memory")
  out.push(
    read === undefined || none === undefined
      ? { name: "/read server CPU / no-session app", value: "not measured", goal: "<= 1.30", met: null }
      : {
        name: "/read server CPU / no-session app (MemoryStore)",
        value: `${(read.serverCpuMicrosPerRequest / none.serverCpuMicrosPerRequest).toFixed(2)} (${
          fmt(read.serverCpuMicrosPerRequest)
        } / ${fmt(none.serverCpuMicrosPerRequest)} µs)`,
        goal: "<= 1.30",
        met: read.serverCpuMicrosPerRequest / none.serverCpuMicrosPerRequest <= 1.3
      }
  )
  for (const id of ["effect-memory", "effect-redis", "effect-pg", "effect-caching"]) {
    const r = httpRow("read", id)
    if (r === undefined) continue
    const budget = writeBudget(r.sessions, httpSeconds)
    out.push({
      name: `read-only route, store writes: ${r.name}`,
      value: r.valid
        ? `${fmt(r.storeWrites ?? 0)} writes, ${r.sessions} sessions, ${fmt(r.requests)} requests`
        : "void run",
      goal: `<= ${fmt(budget)} (sessions x ${Math.ceil(1 + httpSeconds / 2)})`,
      met: r.valid ? (r.storeWrites ?? 0) <= budget : null
    })
  }
  const caching = httpRow("read", "effect-caching")
  const pg = httpRow("read", "effect-pg")
  out.push(
    caching === undefined || pg === undefined
      ? {
        name: "read-only route: CachingStore / SqlStore(Postgres)",
        value: "not measured",
        goal: ">= 3.00",
        met: null
      }
      : ratioTarget("read-only route: CachingStore / SqlStore(Postgres)", caching, pg, 3)
  )
  for (const engine of ["redis", "pg"] as const) {
    const label = engine === "redis" ? "Redis" : "Postgres"
    const on = revocation.find((r) => r.engine === engine && r.channel)
    const off = revocation.find((r) => r.engine === engine && !r.channel)
    if (on === undefined) continue
    out.push({
      name: `revocation latency p99, 3 instances over ${label}, with its channel`,
      value: on.valid ? `${fmt(on.p99Ms, 1)} ms (${on.samples} samples, ${on.unresolved} unresolved)` : "void run",
      goal: "<= 50 ms",
      met: on.valid ? on.p99Ms <= 50 && on.unresolved === 0 : null
    })
    out.push({
      name: `cache hit ratio, 3 instances over ${label}, with its channel`,
      value: on.valid ? `${(on.hitRatio * 100).toFixed(1)}%` : "void run",
      goal: ">= 95%",
      met: on.valid ? on.hitRatio >= 0.95 : null
    })
    out.push(
      off === undefined
        ? { name: `req/s with / without the channel, over ${label}`, value: "not measured", goal: ">= 0.90", met: null }
        : {
          name: `req/s with / without the channel, 3 instances over ${label}`,
          value: `${(on.requestsPerSec / off.requestsPerSec).toFixed(2)} (${fmt(on.requestsPerSec)} / ${
            fmt(off.requestsPerSec)
          } req/s)`,
          goal: ">= 0.90",
          met: on.valid && off.valid ? on.requestsPerSec / off.requestsPerSec >= 0.9 : null
        }
    )
  }
  for (const r of memory.filter((m) => m.name === "MemoryStore")) {
    out.push({
      name: `memory: ${fmt(r.sessions)} sessions in ${r.name}`,
      value: `${fmt(r.heapBytes / 2 ** 20, 1)} MiB (${fmt(r.heapPerSession)} B/session; JSON ${
        fmt(r.jsonBytes / r.sessions)
      } B)`,
      goal: `<= ${fmt(r.budgetBytes / 2 ** 20, 1)} MiB (2 x JSON + 300 B each)`,
      met: r.heapBytes <= r.budgetBytes
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// the table

const table = (results: Results): string => {
  const rows: Array<Array<string>> = [["level", "workload", "figure", "ratio", "p50 ms", "p99 ms", "note"]]
  const section = (title: string) => rows.push([title, "", "", "", "", "", ""])
  if (results.store.length > 0) {
    section("STORE")
    const raw = (backend: string) => results.store.find((r) => r.kind === "raw" && r.backend === backend)
    for (const r of results.store) {
      const base = raw(r.backend)
      rows.push([
        "store",
        r.name,
        `${fmt(r.opsPerSec)} ops/s`,
        base !== undefined && base !== r ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)} of raw` : "",
        r.p50Ms.toFixed(2),
        r.p99Ms.toFixed(2),
        r.kind
      ])
    }
  }
  for (const route of ["count", "read"] as const) {
    const rs = results.http.filter((r) => r.route === route)
    if (rs.length === 0) continue
    section(route === "count" ? "HTTP /count" : "HTTP /read")
    for (const r of rs) {
      const base = results.http.find((b) => b.route === "count" && b.framework === r.framework && b.store === "none")
      rows.push([
        route === "count" ? "http" : "http-ro",
        r.name,
        `${fmt(r.requestsPerSec)} req/s`,
        base !== undefined && base !== r ? `${(r.requestsPerSec / base.requestsPerSec).toFixed(2)} of no-session` : "",
        String(r.p50Ms),
        String(r.p99Ms),
        [
          `server CPU ${fmt(r.serverCpuMicrosPerRequest)} µs/req`,
          r.rounds !== undefined && r.rounds.length > 1
            ? `rounds ${
              r.rounds.map((x) => `${fmt(x.requestsPerSec)} req/s ${fmt(x.serverCpuMicrosPerRequest)} µs`).join(" | ")
            }`
            : "",
          r.valid ? (r.store === "none" ? "" : "counters ok") : `VOID: ${r.voidReason}`,
          r.storeWrites !== undefined ? `${fmt(r.storeWrites)} writes / ${fmt(r.requests)} req` : ""
        ].filter((s) => s !== "").join("; ")
      ])
    }
  }
  if (results.index !== undefined && results.index.length > 0) {
    section("INDEX")
    for (const r of results.index) {
      rows.push([
        "index",
        `${r.store}: ${r.op}`,
        r.n > 0 ? `n ${fmt(r.n)}` : "",
        "",
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        r.note
      ])
    }
  }
  if (results.revocation !== undefined && results.revocation.length > 0) {
    section("REVOCATION")
    for (const r of results.revocation) {
      rows.push([
        "revoke",
        r.name,
        `max ${fmt(r.maxMs, 1)} ms`,
        `hit ${(r.hitRatio * 100).toFixed(1)}%`,
        fmt(r.p50Ms, 1),
        fmt(r.p99Ms, 1),
        [
          `${fmt(r.requestsPerSec)} req/s`,
          `server CPU ${fmt(r.serverCpuMicrosPerRequest)} µs/req`,
          `${r.samples} samples from ${r.logouts} logouts`,
          r.unresolved > 0 ? `${r.unresolved} still served after 10 s` : "",
          r.valid ? "" : `VOID: ${r.voidReason}`
        ].filter((x) => x !== "").join("; ")
      ])
    }
  }
  if (results.memory.length > 0) {
    section("MEMORY")
    for (const r of results.memory) {
      rows.push([
        "memory",
        r.name,
        `${fmt(r.heapPerSession)} B/session`,
        `${(r.heapBytes / r.budgetBytes).toFixed(2)} of budget`,
        "",
        "",
        `${fmt(r.heapBytes / 2 ** 20, 1)} MiB heap for ${fmt(r.sessions)} sessions, JSON ${
          fmt(r.jsonBytes / 2 ** 20, 1)
        } MiB`
      ])
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  const lines = rows.map((r) =>
    r.every((c, i) => i === 0 || c === "")
      ? `\n${r[0]}`
      : r.map((c, i) => (i === 2 || i === 4 || i === 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")
        .trimEnd()
  )
  if (results.targets.length > 0) {
    const t = results.targets
    const w = [
      Math.max(...t.map((x) => x.name.length)),
      Math.max(...t.map((x) => x.value.length)),
      Math.max(...t.map((x) => x.goal.length))
    ]
    lines.push("\nTARGETS")
    for (const x of t) {
      const verdict = x.met === null ? "n/a" : x.met ? "MET" : "MISSED"
      lines.push(
        `${verdict.padEnd(7)} ${x.name.padEnd(w[0])}  ${x.value.padStart(w[1])}  ${x.goal.padEnd(w[2])}`.trimEnd()
      )
    }
  }
  return lines.join("\n")
}

// ---------------------------------------------------------------------------------------------------------------
// run

const started = performance.now()
const when = new Date()
const loadAtStart = machine().loadAverage
console.log(`effect-sessions benchmark: ${steps.length} workloads; ${describeMachine(machine())}`)
console.log(`command: ${command}`)
for (const [i, step] of steps.entries()) {
  const t0 = performance.now()
  const prefix = `[${String(i + 1).padStart(2)}/${steps.length}] ${step.level.padEnd(6)} ${step.name}`
  try {
    const line = await step.run()
    console.log(`${prefix.padEnd(70, " ")} ${line} (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error)
    missing.push({ level: step.level, name: step.name, reason: `failed: ${reason}` })
    console.log(`${prefix.padEnd(70, " ")} FAILED: ${reason}`)
  }
}

for (const runs of httpRuns.values()) http.push(medianRow(runs))
for (const runs of revocationRuns.values()) revocation.push(revocationRow(runs))

const backendOrder = ["memory", "redis", "postgres", "mariadb", "sqlite"]
const kindOrder = ["raw", "ours", "peer", "baseline"]
const rank = (r: StoreRow) => backendOrder.indexOf(r.backend) * 10 + kindOrder.indexOf(r.kind)
store.sort((a, b) => rank(a) - rank(b))

const results: Results = {
  date: when.toISOString(),
  command,
  machine: machine(),
  settings: {
    store: workload,
    http: { connections, seconds: httpSeconds, warmupSeconds, pipelining: 1 },
    memory: { sessions: memorySessions },
    revocation: { instances: 3, connections: revocationConnections, rounds: revocationRounds, maxStaleness: "5 s" },
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: machine().loadAverage
  },
  store,
  http,
  memory,
  index,
  revocation,
  targets: targets(),
  missing,
  elapsedSeconds: (performance.now() - started) / 1000
}

console.log(table(results))
if (missing.length > 0) {
  console.log(`\nnot measured:\n${missing.map((m) => `  ${m.level} ${m.name}: ${m.reason}`).join("\n")}`)
}

const root = here(import.meta.url, "..")
const outDir = shortened.length === 0
  ? path.join(root, "bench", "results")
  : fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-bench-"))
const svgPath = shortened.length === 0 ? path.join(root, "docs", "bench.svg") : path.join(outDir, "bench.svg")
fs.mkdirSync(outDir, { recursive: true })
fs.mkdirSync(path.dirname(svgPath), { recursive: true })
const json = `${JSON.stringify(results, null, 2)}\n`
const datedFile = path.join(outDir, `${when.toISOString().slice(0, 10)}.json`)
fs.writeFileSync(datedFile, json)
fs.writeFileSync(path.join(outDir, "latest.json"), latestPointer(datedFile))
fs.writeFileSync(svgPath, render(results))
const shown = (p: string) => (p.startsWith(process.cwd()) ? path.relative(process.cwd(), p) : p)
console.log(
  `\n${shortened.length === 0 ? "" : "shortened run, not the committed figures: "}wrote ${shown(datedFile)} and ${
    shown(svgPath)
  } in ${fmt(results.elapsedSeconds)} s`
)
process.exit(0)
