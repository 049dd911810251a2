/**
 * The store-level workload shared by every store benchmark (issue 3's definition):
 * `sessions` sessions of about 300 bytes of JSON are created, then `operations` operations
 * (80% load, 20% save) run with `concurrency` in flight, and we report ops/s, p50 and p99.
 *
 * The plan is deterministic (seeded) and split into `concurrency` lanes; lane k only touches
 * sessions whose index is k modulo `concurrency`, so two in-flight operations never race on one
 * session: an Effect store's compare-and-set saves never conflict, and every peer (raw driver,
 * Promise workers) runs exactly the same sequence of operations.
 */
import * as Effect from "effect/Effect"
import { META_KEY } from "../../src/Session.js"
import type { SessionData } from "../../src/SessionData.js"
import * as SessionId from "../../src/SessionId.js"
import type * as SessionRecord from "../../src/SessionRecord.js"
import type * as SessionStore from "../../src/SessionStore.js"
import * as SessionToken from "../../src/SessionToken.js"

export interface WorkloadOptions {
  readonly sessions: number
  readonly operations: number
  readonly concurrency: number
  readonly loadRatio: number
  readonly seed: number
}

export const defaultWorkload: WorkloadOptions = {
  sessions: 10_000,
  operations: 50_000,
  concurrency: 64,
  loadRatio: 0.8,
  seed: 42
}

export interface Plan {
  readonly options: WorkloadOptions
  /** the session ids (digests) by index */
  readonly ids: ReadonlyArray<SessionId.SessionId>
  /** per lane: the session index of each op, and whether it is a save */
  readonly lanes: ReadonlyArray<{ readonly targets: Uint32Array; readonly saves: Uint8Array }>
}

export interface Stats {
  readonly name: string
  readonly operations: number
  readonly seconds: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/** A small deterministic PRNG (mulberry32). */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const makePlan = (options: WorkloadOptions = defaultWorkload): Plan => {
  const ids = Array.from({ length: options.sessions }, () => SessionId.fromToken(SessionToken.unsafeGenerate()))
  const rand = prng(options.seed)
  const lanes = Array.from({ length: options.concurrency }, (_, lane) => {
    const count = Math.floor(options.operations / options.concurrency) +
      (lane < options.operations % options.concurrency ? 1 : 0)
    const owned = Math.ceil((options.sessions - lane) / options.concurrency)
    const targets = new Uint32Array(count)
    const saves = new Uint8Array(count)
    for (let i = 0; i < count; i++) {
      targets[i] = lane + options.concurrency * Math.floor(rand() * owned)
      saves[i] = rand() < options.loadRatio ? 0 : 1
    }
    return { targets, saves }
  })
  return { options, ids, lanes }
}

/** Sessions per bound user in `boundSessionData`. */
export const SESSIONS_PER_USER = 10

/**
 * The library's metadata binding session `index` to user `user-<index / SESSIONS_PER_USER>`, as
 * `Session.bindUser` writes it: what makes a store file the session in its per-user index.
 */
export const bindingOf = (index: number, write: number): SessionData => ({
  [META_KEY]: {
    createdAt: 1_700_000_000_000,
    user: {
      id: `user-${Math.floor(index / SESSIONS_PER_USER)}`,
      authenticatedAt: 1_700_000_000_000 + index,
      userAgent: "Mozilla/5.0 (bench)"
    },
    refreshedAt: 1_700_000_000_000 + write
  }
})

/** `sessionData` with the binding of `bindingOf`. */
export const boundSessionData = (index: number, write: number): SessionData => ({
  ...sessionData(index, write),
  ...bindingOf(index, write)
})

/** Session i's data bound to user `i % users`, as `Session.bindUser` stores it. */
export const boundData = (index: number, write: number, users: number): SessionData => ({
  ...plainData(index, write),
  [META_KEY]: { createdAt: 1, user: { id: `user-${index % users}`, authenticatedAt: 2 + write }, refreshedAt: 3 }
})

/** About 300 bytes of JSON, different per session and per write. */
export const sessionData = (index: number, write: number): SessionData => ({
  userId: `user-${index}`,
  name: `Benchmark User ${index}`,
  email: `user${index}@example.test`,
  roles: ["reader", "writer"],
  csrf: "q3tG1n0Zk3a4Vx9uYlP2bA",
  visits: write,
  lastPath: `/articles/${(index * 7919) % 100_000}/comments?page=${write % 10}`,
  preferences: { theme: "dark", locale: "en-GB", timezone: "Europe/London", pageSize: 25 },
  flags: { beta: index % 2 === 0, onboarding: false }
})

const plainData = sessionData

export const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

const summarize = (name: string, latencies: Float64Array, seconds: number): Stats => {
  const sorted = latencies.slice().sort()
  return {
    name,
    operations: latencies.length,
    seconds,
    opsPerSec: latencies.length / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99)
  }
}

export interface Ops<E, R> {
  readonly load: (index: number) => Effect.Effect<unknown, E, R>
  readonly save: (index: number, write: number) => Effect.Effect<unknown, E, R>
}

/** Runs the plan with one fiber per lane in the current Effect runtime. */
export const runEffect = <E, R>(name: string, plan: Plan, ops: Ops<E, R>): Effect.Effect<Stats, E, R> =>
  Effect.suspend(() => {
    const latencies = new Float64Array(plan.options.operations)
    let next = 0
    const start = performance.now()
    const lane = (l: { readonly targets: Uint32Array; readonly saves: Uint8Array }) =>
      Effect.suspend(() => {
        let i = 0
        const step: Effect.Effect<void, E, R> = Effect.suspend(() => {
          if (i >= l.targets.length) return Effect.void
          const t0 = performance.now()
          const index = l.targets[i]
          const op = l.saves[i] === 1 ? ops.save(index, i) : ops.load(index)
          i++
          return Effect.flatMap(op, () => {
            latencies[next++] = performance.now() - t0
            return step
          })
        })
        return step
      })
    return Effect.forEach(plan.lanes, lane, { concurrency: "unbounded", discard: true }).pipe(
      Effect.map(() => summarize(name, latencies.subarray(0, next), (performance.now() - start) / 1000))
    )
  })

export interface PromiseOps {
  readonly load: (index: number) => Promise<unknown>
  readonly save: (index: number, write: number) => Promise<unknown>
}

/** Runs the plan with one async worker per lane. */
export const runPromise = async (name: string, plan: Plan, ops: PromiseOps): Promise<Stats> => {
  const latencies = new Float64Array(plan.options.operations)
  let next = 0
  const start = performance.now()
  await Promise.all(plan.lanes.map(async (l) => {
    for (let i = 0; i < l.targets.length; i++) {
      const t0 = performance.now()
      const index = l.targets[i]
      if (l.saves[i] === 1) await ops.save(index, i)
      else await ops.load(index)
      latencies[next++] = performance.now() - t0
    }
  }))
  return summarize(name, latencies.subarray(0, next), (performance.now() - start) / 1000)
}

/** The expiry every benchmark session gets: one hour from `now`. */
export const expiresAt = (now: number): number => now + 3_600_000

/**
 * Seeds the plan's sessions into a `SessionStore` and returns the store-level ops: `load` by id,
 * `save` as a compare-and-set with the version this lane last saw (lanes own their sessions, so it never conflicts).
 */
export const storeOps = (
  store: SessionStore.Service,
  plan: Plan,
  options?: {
    readonly seedConcurrency?: number
    /** Bind every session to a user (`boundSessionData`), so an indexing store files it on each write. */
    readonly bound?: boolean
    /** Bind session i to user `i % users` (the metadata `Session.bindUser` writes), for a store's index to file. */
    readonly users?: number
  }
): Effect.Effect<Ops<unknown, never>, unknown> =>
  Effect.gen(function*() {
    const users = options?.users
    const dataOf = options?.bound === true
      ? boundSessionData
      : users === undefined
      ? sessionData
      : (index: number, write: number) => boundData(index, write, users)
    const records: Array<SessionRecord.SessionRecord> = new Array(plan.ids.length)
    const now = Date.now()
    yield* Effect.forEach(
      plan.ids,
      (id, index) =>
        Effect.map(
          store.create({ id, data: dataOf(index, 0), expiresAt: expiresAt(now), version: 1 }),
          (record) => {
            records[index] = record
          }
        ),
      { concurrency: options?.seedConcurrency ?? 64, discard: true }
    )
    return {
      load: (index: number) => store.load(plan.ids[index]),
      save: (index: number, write: number) => {
        const current = records[index]
        return Effect.map(
          store.save({
            id: current.id,
            data: dataOf(index, write),
            expiresAt: expiresAt(Date.now()),
            version: current.version
          }),
          (saved) => {
            records[index] = saved
          }
        )
      }
    }
  })

export const formatStats = (s: Stats): string =>
  `${s.name.padEnd(48)} ${s.opsPerSec.toFixed(0).padStart(8)} ops/s   p50 ${s.p50Ms.toFixed(2).padStart(6)} ms   p99 ${
    s.p99Ms.toFixed(2).padStart(6)
  } ms`
