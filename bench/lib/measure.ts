/**
 * The warm-up every store-level workload gets: the same run on a smaller plan of the same shape first
 * (2,000 sessions, 10,000 operations), so the JIT, the pools and the connections are warm when the
 * timed run starts.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as SessionStore from "../../src/SessionStore.js"
import type { StoreRow } from "./results.js"
import { defaultWorkload, formatStats, makePlan, type Plan, runEffect, type Stats, storeOps } from "./workload.js"

/** A smaller plan of the same shape. */
export const warmupPlan = (plan: Plan): Plan =>
  makePlan({
    ...plan.options,
    sessions: Math.min(plan.options.sessions, 2_000),
    operations: Math.min(plan.options.operations, 10_000)
  })

/** Runs `run` on the warm-up plan, then on `plan`, and returns the second run's figures. */
export const measured = (run: (plan: Plan) => Promise<Stats>) => async (plan: Plan): Promise<Stats> => {
  await run(warmupPlan(plan))
  return run(plan)
}

/** A store-level workload as the runner (bench/run.ts) runs it. */
export interface Workload {
  readonly name: string
  readonly run: (plan: Plan) => Promise<StoreRow>
}

/** The row of the results for one store-level run. */
export const storeRow = (stats: Stats, kind: StoreRow["kind"], backend: string): StoreRow => ({
  name: stats.name,
  kind,
  backend,
  opsPerSec: stats.opsPerSec,
  p50Ms: stats.p50Ms,
  p99Ms: stats.p99Ms,
  operations: stats.operations,
  seconds: stats.seconds
})

/** A workload that warms up on the smaller plan, then reports the timed run as a row. */
export const workload = (
  name: string,
  kind: StoreRow["kind"],
  backend: string,
  run: (plan: Plan) => Promise<Stats>
): Workload => ({ name, run: async (plan) => storeRow(await measured(run)(plan), kind, backend) })

/** Runs the plan against the `SessionStore` a layer provides, inside its own scope (`storeOps` + `runEffect`). */
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

/**
 * A store benchmark run alone: BENCH_ROUNDS rounds (default 3), the order of the workloads rotated each round
 * since the machine is shared; each row also shows this process's CPU time (user + system) per operation over
 * the whole workload, warm-up and seeding included, which is less sensitive to the load of the machine than ops/s.
 * Prints `label` (ours / raw, mixed ops/s) per round against `goal`, and the ratios `also` names, then the median.
 */
export const runStandalone = async (
  workloads: ReadonlyArray<Workload>,
  ratioOf: (rows: ReadonlyArray<StoreRow>) => number | undefined,
  label: string,
  goal: number,
  /** More ratios printed each round, with no target. */
  also: ReadonlyArray<
    { readonly label: string; readonly ratioOf: (rows: ReadonlyArray<StoreRow>) => number | undefined }
  > = []
): Promise<void> => {
  const plan = makePlan({
    ...defaultWorkload,
    sessions: Number(process.env.BENCH_SESSIONS ?? defaultWorkload.sessions),
    operations: Number(process.env.BENCH_OPS ?? defaultWorkload.operations)
  })
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  const ratios: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const order = workloads.map((_, i) => workloads[(i + round) % workloads.length])
    const rows: Array<StoreRow> = []
    for (const w of order) {
      const before = process.cpuUsage()
      const r = await w.run(plan)
      const cpu = process.cpuUsage(before)
      rows.push(r)
      const perOp = (cpu.user + cpu.system) / plan.options.operations
      console.log(`${formatStats(r)}   cpu ${perOp.toFixed(1).padStart(5)} us/op`)
    }
    const ratio = ratioOf(rows)
    if (ratio !== undefined) {
      ratios.push(ratio)
      console.log(`round ${round + 1}: ${label} (mixed ops/s): ${ratio.toFixed(2)} (target >= ${goal.toFixed(2)})`)
    }
    for (const other of also) {
      const r = other.ratioOf(rows)
      if (r !== undefined) console.log(`round ${round + 1}: ${other.label} (mixed ops/s): ${r.toFixed(2)}`)
    }
  }
  const sorted = [...ratios].sort((x, y) => x - y)
  if (sorted.length > 0) {
    console.log(`median ratio over ${sorted.length} rounds: ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}`)
  }
}

/** The mixed ops/s of the row named `ours` over the raw row of `backend`, from the rows of one run. */
export const ratioOver = (ours: string, backend: string) => (rows: ReadonlyArray<StoreRow>): number | undefined => {
  const mine = rows.find((r) => r.name === ours)
  const raw = rows.find((r) => r.kind === "raw" && r.backend === backend)
  return mine !== undefined && raw !== undefined ? mine.opsPerSec / raw.opsPerSec : undefined
}
