/**
 * Model-based concurrency test of the session core. Random histories of one browser's requests — read, set a
 * key, remove a key, clear, flush, `cycleId`, `setExpiry` — are issued concurrently against two
 * `SessionMiddleware` instances (separate commit locks, as two processes) on real HTTP servers sharing one
 * store whose operations are delayed at random; with `lag`, each instance has its own `CachingStore` over the
 * shared store. The browser sends the cookie its jar holds when a request is issued and takes in each answer's
 * cookies as the answer arrives. Each history is then checked against the sequential model in
 * `support/sessionModel.ts`, and a broken core (a mutant of the commit plan) must be caught.
 *
 * Seeded: `MODEL_SEED` replays a run, `MODEL_RUNS` sets the number of histories (a longer run:
 * `MODEL_RUNS=20000 npx vitest run test/Session.model.test.ts`). A failure prints the seed, the shrunk history
 * and what each request observed.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import type { Context } from "effect"
import { Duration, Effect, FastCheck, type Fiber, Layer, Option, Schema } from "effect"
import {
  CachingStore,
  Expiry,
  LruStore,
  MemoryStore,
  Session,
  SessionId,
  SessionMiddleware,
  SessionStore,
  type SessionToken
} from "effect-sessions"
import * as Plan from "../src/internal/plan.js"
import { parseSetCookie, serve } from "./support/http.js"
import { explain, type Observed, type Op, type Rec } from "./support/sessionModel.js"

const COOKIE = "__Host-session"
const KEYS = ["a", "b", "c"]

const route = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/op",
    Effect.gen(function*() {
      const p = yield* HttpServerRequest.ParsedSearchParams
      const str = (name: string) => (typeof p[name] === "string" ? (p[name] as string) : "")
      yield* Session.keys // the load
      switch (str("op")) {
        case "set":
          yield* Session.insert(str("key"), str("value"))
          break
        case "remove":
          yield* Session.remove(str("key"))
          break
        case "clear":
          yield* Session.clear
          break
        case "flush":
          yield* Session.flush
          break
        case "cycle":
          yield* Session.cycleId
          break
        case "expiry":
          yield* Session.setExpiry(Expiry.OnInactivity(str("value") === "x" ? "2 hours" : "3 hours"))
          break
      }
      const view: Record<string, string> = {}
      for (const k of yield* Session.keys) {
        const v = yield* Session.get(k, Schema.String)
        if (Option.isSome(v)) view[k] = v.value
      }
      return yield* HttpServerResponse.json(view)
    })
  )
)

/** One generated request: what it does, which instance it goes to, when it starts, how slow the store is. */
interface Step {
  readonly op: Op
  readonly instance: number
  /** Waits for every earlier request to be answered first: an order in real time that no machine load blurs. */
  readonly after: boolean
  readonly gapMs: number
  readonly delays: ReadonlyArray<number>
}

interface RawOp {
  readonly op: Op["op"]
  readonly key?: string
  readonly value?: string
}

const opArb: FastCheck.Arbitrary<RawOp> = FastCheck.oneof(
  { weight: 3, arbitrary: FastCheck.constant({ op: "read" as const }) },
  {
    weight: 5,
    arbitrary: FastCheck.record({ op: FastCheck.constant("set" as const), key: FastCheck.constantFrom(...KEYS) })
  },
  {
    weight: 2,
    arbitrary: FastCheck.record({ op: FastCheck.constant("remove" as const), key: FastCheck.constantFrom(...KEYS) })
  },
  { weight: 1, arbitrary: FastCheck.constant({ op: "clear" as const }) },
  { weight: 1, arbitrary: FastCheck.constant({ op: "flush" as const }) },
  { weight: 2, arbitrary: FastCheck.constant({ op: "cycle" as const }) },
  {
    weight: 1,
    arbitrary: FastCheck.record({ op: FastCheck.constant("expiry" as const), value: FastCheck.constantFrom("x", "y") })
  }
) as FastCheck.Arbitrary<RawOp>

const stepArb = FastCheck
  .record({
    op: opArb,
    instance: FastCheck.integer({ min: 0, max: 1 }),
    after: FastCheck.integer({ min: 0, max: 3 }).map((n) => n === 0),
    gapMs: FastCheck.integer({ min: 0, max: 3 }),
    delays: FastCheck.array(FastCheck.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 })
  })

const historyArb = FastCheck.array(stepArb, { minLength: 1, maxLength: 6 })

/** Gives every `set` a value no other write uses, so that each value seen names the write that made it. */
const number = (steps: ReadonlyArray<{ readonly op: RawOp }>): ReadonlyArray<Op> =>
  steps.map((s, i) =>
    s.op.op === "set"
      ? { op: "set", key: s.op.key!, value: `v${i}` }
      : s.op.op === "remove"
      ? { op: "remove", key: s.op.key! }
      : s.op.op === "expiry"
      ? { op: "expiry", value: s.op.value! }
      : ({ op: s.op.op } as Op)
  )

const query = (op: Op): string => {
  const parts = [`op=${op.op}`]
  if ("key" in op) parts.push(`key=${op.key}`)
  if ("value" in op) parts.push(`value=${op.value}`)
  return parts.join("&")
}

/** A store whose every operation waits the next delay of the current history first. */
const delayed = (inner: SessionStore.Service, nextDelay: () => number): SessionStore.Service => {
  const wait = Effect.suspend(() => {
    const ms = nextDelay()
    return ms === 0 ? Effect.yieldNow() : Effect.sleep(Duration.millis(ms))
  })
  return {
    create: (r) => Effect.zipRight(wait, inner.create(r)),
    save: (r) => Effect.zipRight(wait, inner.save(r)),
    load: (id) => Effect.zipRight(wait, inner.load(id)),
    delete: (id) => Effect.zipRight(wait, inner.delete(id))
  }
}

interface Rig {
  readonly urls: ReadonlyArray<string>
  readonly shared: SessionStore.Service
  setDelays(delays: ReadonlyArray<number>): void
}

/** Two middleware instances on their own servers over one shared MemoryStore (each through its own cache with `lag`). */
const makeRig = (lag: boolean, decide: typeof Plan.decide) =>
  Effect.gen(function*() {
    const memory = yield* Effect.provide(SessionStore.SessionStore, MemoryStore.layer({ sweepInterval: "1 hour" }))
    let delays: ReadonlyArray<number> = [0]
    let next = 0
    const nextDelay = () => delays[next++ % delays.length]
    const shared = delayed(memory, nextDelay)
    const sharedLayer = Layer.succeed(SessionStore.SessionStore, shared)
    const urls: Array<string> = []
    for (let i = 0; i < 2; i++) {
      const store = lag
        ? yield* Effect.provide(
          SessionStore.SessionStore,
          CachingStore.layer({ cache: LruStore.layer(), store: sharedLayer, maxStaleness: "1 minute" })
        )
        : shared
      const middleware = yield* SessionMiddleware.make().pipe(
        Effect.provideService(SessionStore.SessionStore, store),
        Effect.provideService(Plan.Decide, decide)
      )
      urls.push(yield* serve(middleware.apply(route)))
    }
    const rig: Rig = {
      urls,
      shared: memory,
      setDelays: (d) => {
        delays = d.length === 0 ? [0] : d
        next = 0
      }
    }
    return rig
  })

const readRec = (store: SessionStore.Service, token: string) =>
  Effect.map(
    store.load(SessionId.fromToken(token as SessionToken.SessionToken)).pipe(Effect.orDie),
    (found): Rec | undefined => {
      if (Option.isNone(found)) return undefined
      const data = found.value.data
      const meta = Plan.readMeta(data)
      if (meta.movedAt !== undefined) return { kind: "moved" }
      const user: Record<string, string> = {}
      for (const [k, v] of Object.entries(data)) if (k !== Session.META_KEY && typeof v === "string") user[k] = v
      const expiry = meta.expiry === undefined || meta.expiry._tag !== "OnInactivity"
        ? undefined
        : Duration.toMillis(meta.expiry.duration) === Duration.toMillis("2 hours")
        ? "x"
        : "y"
      return { kind: "live", data: user, expiry }
    }
  )

/** Runs one history on the rig and returns what was observed and the final store of every token seen. */
const runHistory = (rig: Rig, steps: ReadonlyArray<Step>) =>
  Effect.gen(function*() {
    rig.setDelays(steps.flatMap((s) => s.delays))
    let jar: string | undefined
    const start = performance.now()
    const observed: Array<Observed> = []
    const fibers: Array<Fiber.RuntimeFiber<void>> = []
    for (const [i, step] of steps.entries()) {
      if (step.after) { for (const f of fibers) yield* f.await }
      if (step.gapMs > 0) yield* Effect.sleep(Duration.millis(step.gapMs))
      fibers.push(
        yield* Effect.fork(
          Effect.gen(function*() {
            const token = jar
            const issuedAt = performance.now() - start
            const response = yield* Effect.promise(() =>
              fetch(`${rig.urls[step.instance]}/op?${query(step.op)}`, {
                method: "POST",
                headers: token === undefined ? {} : { cookie: `${COOKIE}=${token}` }
              })
            )
            const body = yield* Effect.promise(() => response.text())
            const answeredAt = performance.now() - start
            const set = response.headers.getSetCookie().map(parseSetCookie).find((c) => c.name === COOKIE)
            let cookie: Observed["cookie"] = { kind: "none" }
            if (set !== undefined) {
              if (set.value === "" || set.attributes["max-age"] === "0") {
                cookie = { kind: "remove" }
                jar = undefined
              } else {
                if (set.value !== token) cookie = { kind: "new", token: set.value }
                jar = set.value
              }
            }
            observed[i] = {
              op: step.op,
              token,
              issuedAt,
              answeredAt,
              status: response.status,
              view: response.status === 200 ? JSON.parse(body) : {},
              cookie
            }
          })
        )
      )
    }
    for (const f of fibers) yield* f.await
    rig.setDelays([0])
    const tokens = new Set<string>()
    for (const o of observed) {
      if (o.token !== undefined) tokens.add(o.token)
      if (o.cookie.kind === "new") tokens.add(o.cookie.token)
    }
    const final = new Map<string, Rec>()
    for (const t of tokens) {
      const rec = yield* readRec(rig.shared, t)
      if (rec !== undefined) final.set(t, rec)
    }
    return { observed, final }
  })

const describeHistory = (observed: ReadonlyArray<Observed>, final: ReadonlyMap<string, Rec>) => {
  const names = new Map<string, string>()
  const name = (t: string | undefined) => {
    if (t === undefined) return "-"
    if (!names.has(t)) names.set(t, `T${names.size}`)
    return names.get(t)!
  }
  const lines = observed.map((o, i) =>
    `#${i} ${JSON.stringify(o.op)} token=${name(o.token)} [${o.issuedAt.toFixed(1)}..${o.answeredAt.toFixed(1)}ms] ` +
    `status=${o.status} view=${JSON.stringify(o.view)} cookie=${
      o.cookie.kind === "new" ? `new ${name(o.cookie.token)}` : o.cookie.kind
    }`
  )
  lines.push(`final: ${JSON.stringify(Array.from(final, ([t, r]) => [name(t), r]))}`)
  return lines.join("\n")
}

interface Verdict {
  readonly ok: boolean
  readonly report: string
}

/** Checks `runs` random histories; succeeds with the first unexplained one (shrunk), or ok. */
const check = (
  options: { readonly lag: boolean; readonly runs: number; readonly seed: number; readonly decide?: typeof Plan.decide }
) =>
  Effect.gen(function*() {
    const rig = yield* makeRig(options.lag, options.decide ?? Plan.decide)
    const runtime = yield* Effect.runtime<never>()
    let last = ""
    const property = FastCheck.asyncProperty(historyArb, async (raw) => {
      const ops = number(raw.map((s) => ({ op: s.op })))
      const steps: ReadonlyArray<Step> = raw.map((s, i) => ({ ...s, op: ops[i] }))
      const { final, observed } = await Effect.runPromise(
        Effect.provide(runHistory(rig, steps), runtime.context as Context.Context<never>)
      )
      const failed = observed.filter((o) => o.status !== 200)
      if (failed.length > 0) {
        last = `requests answered ${failed.map((o) => o.status).join(", ")}\n${describeHistory(observed, final)}`
        return false
      }
      const order = explain(observed, final, { lag: options.lag })
      if (order === undefined) {
        last = describeHistory(observed, final)
        return false
      }
      return true
    })
    const result = yield* Effect.promise(() =>
      FastCheck.check(property, { numRuns: options.runs, seed: options.seed, endOnFailure: false })
    )
    if (!result.failed) {
      return { ok: true, report: `${result.numRuns} histories, seed ${options.seed}` } satisfies Verdict
    }
    return {
      ok: false,
      report:
        `seed ${options.seed}, caught at history ${result.numRuns}, path ${result.counterexamplePath}: no order of loads and commits explains this history ` +
        `(shrunk ${result.numShrinks} times):\n${last}`
    } satisfies Verdict
  }).pipe(Effect.scoped)

const envInt = (name: string, fallback: number): number => {
  const v = Number(process.env[name])
  return Number.isSafeInteger(v) && v > 0 ? v : fallback
}
const SEED = envInt("MODEL_SEED", Date.now() % 1_000_000)
const RUNS = envInt("MODEL_RUNS", 800)
/** Room for slow machines: a few hundred histories a second is typical. */
const TIMEOUT = Math.max(240_000, RUNS * 60)

describe("the session core against its model", () => {
  it.live(`two instances over one store: ${RUNS} random histories (seed ${SEED})`, () =>
    Effect.gen(function*() {
      const verdict = yield* check({ lag: false, runs: RUNS, seed: SEED })
      assert.isTrue(verdict.ok, verdict.report)
    }), TIMEOUT)

  it.live(
    `two instances, each with a CachingStore over the shared store: ${Math.ceil(RUNS / 4)} histories (seed ${SEED})`,
    () =>
      Effect.gen(function*() {
        const verdict = yield* check({ lag: true, runs: Math.ceil(RUNS / 4), seed: SEED })
        assert.isTrue(verdict.ok, verdict.report)
      }),
    240_000
  )
})

/** Broken cores: each breaks one invariant, and the checker must catch it. */
const mutants: ReadonlyArray<readonly [string, typeof Plan.decide]> = [
  [
    "flush only removes the cookie (flushed data visible after the flush)",
    (base, changes, now, rules, incoming) => {
      const plan = Plan.decide(base, changes, now, rules, incoming)
      return plan.end !== undefined ? { ...plan, end: undefined } : plan
    }
  ],
  [
    "a merge re-applies sets but drops removes (a removed key comes back)",
    (base, changes, now, rules, incoming) =>
      Plan.decide(
        base,
        { ...changes, changes: new Map([...changes.changes].filter(([, c]) => c.op === "set")) },
        now,
        rules,
        incoming
      )
  ],
  [
    "a merge re-applies the changes onto the data it first loaded, at the newest version (an acknowledged write lost)",
    (() => {
      const first = new WeakMap<Plan.ChangeSet, Plan.Base>()
      return (base: Plan.Base, changes: Plan.ChangeSet, now: number, rules: Plan.Rules, incoming: Plan.Incoming) => {
        const original = first.get(changes)
        if (original === undefined) first.set(changes, base)
        const stale = original !== undefined && original._tag === "Live" && base._tag === "Live"
          ? { ...original, record: { ...original.record, version: base.record.version } }
          : base
        return Plan.decide(stale, changes, now, rules, incoming)
      }
    })()
  ],
  [
    "cycleId copies the data it loaded and deletes the old record (a flushed or removed session comes back)",
    (base, changes, now, rules, incoming) => {
      const plan = Plan.decide(base, changes, now, rules, incoming)
      if (plan.write._tag !== "Move" || base._tag !== "Live") return plan
      return {
        end: base.record.id,
        write: { _tag: "Create", data: plan.write.data, meta: plan.write.meta, expiresAt: plan.write.expiresAt },
        cookie: plan.cookie
      }
    }
  ],
  [
    "a moved session reads as live (a cycled-away token reaches what is written after the move)",
    (base, changes, now, rules, incoming) =>
      Plan.decide(
        base._tag === "Moved" ? { _tag: "Live", record: base.record, meta: {} } : base,
        changes,
        now,
        rules,
        incoming
      )
  ],
  [
    "cycleId creates the new record and leaves the old one live (two live records of one session)",
    (base, changes, now, rules, incoming) => {
      const plan = Plan.decide(base, changes, now, rules, incoming)
      if (plan.write._tag !== "Move") return plan
      return {
        ...plan,
        write: { _tag: "Create", data: plan.write.data, meta: plan.write.meta, expiresAt: plan.write.expiresAt }
      }
    }
  ]
]

/**
 * A mutant's budget of histories. The search ends at the first history the model cannot explain, so a caught
 * mutant costs a few dozen; the budget is what a mutant that goes uncaught costs, and it is large because
 * interleavings depend on timing: a loaded machine overlaps more requests, and an overlap explains more.
 */
const MUTANT_RUNS = 3000

describe("the model catches broken cores", () => {
  for (const [name, decide] of mutants) {
    it.live(name, () =>
      Effect.gen(function*() {
        const verdict = yield* check({ lag: false, runs: MUTANT_RUNS, seed: SEED, decide })
        assert.isFalse(verdict.ok, `the mutant passed ${verdict.report}`)
        // caught by the model, not by a request that failed
        assert.notInclude(verdict.report, "requests answered")
      }), 240_000)
  }
})
