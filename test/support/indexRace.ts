/**
 * A randomized race of creates, failing creates, rebinding saves (single and back to back), deletes, lists and revokes over a few users, checked
 * against the index contract: afterwards every live session bound to a user is listed for that user, and a session
 * whose last successful write (binding it to a user) finished before a revoke of that user began is gone.
 *
 * Seeded: `INDEX_RACE_SEED` replays a run, `INDEX_RACE_RUNS` sets the number of histories. A failure prints the
 * seed, the shrunk history and the rule it broke.
 */
import { assert } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option, Runtime } from "effect"
import { Session, SessionData, SessionId, SessionIndex, SessionStore, SessionToken } from "effect-sessions"

const USERS = 3
const PRE = 4

type Op =
  | { readonly op: "create"; readonly user: number; readonly delay: number }
  | { readonly op: "collide"; readonly target: number; readonly user: number; readonly delay: number }
  | { readonly op: "rebind"; readonly target: number; readonly user: number | null; readonly delay: number }
  | { readonly op: "delete"; readonly target: number; readonly delay: number }
  | { readonly op: "revoke"; readonly user: number; readonly delay: number }
  | { readonly op: "list"; readonly user: number; readonly delay: number }
  | {
    readonly op: "flip"
    readonly target: number
    readonly user: number
    readonly back: number
    readonly delay: number
  }

interface History {
  readonly pre: ReadonlyArray<number | null>
  readonly ops: ReadonlyArray<Op>
}

const user = fc.integer({ min: 0, max: USERS - 1 })
const target = fc.integer({ min: 0, max: PRE - 1 })
const delay = fc.integer({ min: 0, max: 4 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("create" as const), user, delay }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("collide" as const), target, user, delay }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("rebind" as const), target, user: fc.option(user), delay }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), target, delay }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("revoke" as const), user, delay }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("list" as const), user, delay }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("flip" as const), target, user, back: user, delay }) }
)
const historyArb: fc.Arbitrary<History> = fc.record({
  pre: fc.array(fc.option(user), { minLength: PRE, maxLength: PRE }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 16 })
})

const yields = (n: number): Effect.Effect<void> =>
  n === 0 ? Effect.void : Effect.zipRight(Effect.yieldNow(), yields(n - 1))

const LIFETIME = 60 * 60 * 1000

/** The last successful write of a session: the user it bound it to (or none) and when it finished. */
interface Write {
  readonly user: number | null
  readonly end: number
}

const runHistory = (
  history: History
): Effect.Effect<string | undefined, unknown, SessionStore.SessionStore | SessionIndex.SessionIndex> =>
  Effect.gen(function*() {
    const store = yield* SessionStore.SessionStore
    const index = yield* SessionIndex.SessionIndex
    const users = Array.from({ length: USERS }, () => `race-${SessionToken.unsafeGenerate().slice(0, 12)}`)
    const data = (u: number | null, n: number) =>
      SessionData.fromEntries([
        ["n", n],
        [
          Session.META_KEY,
          u === null
            ? { createdAt: 1, refreshedAt: 1 }
            : { createdAt: 1, user: { id: users[u], authenticatedAt: n }, refreshedAt: 1 }
        ]
      ])
    const newId = () => SessionId.fromToken(SessionToken.unsafeGenerate())
    let clock = 0
    const last = new Map<SessionId.SessionId, Write>()
    const revokes: Array<{ readonly user: number; readonly start: number }> = []
    const expiresAt = Date.now() + LIFETIME
    const pre = yield* Effect.forEach(
      history.pre,
      (u, n) =>
        Effect.map(store.create({ id: newId(), data: data(u, n), expiresAt, version: 1 }), (r) => {
          last.set(r.id, { user: u, end: ++clock })
          return r
        })
    )
    const run = (op: Op, n: number): Effect.Effect<void, never> =>
      Effect.zipRight(
        yields(op.delay),
        Effect.suspend((): Effect.Effect<void, never> => {
          switch (op.op) {
            case "create":
            case "collide": {
              const id = op.op === "create" ? newId() : pre[op.target].id
              return Effect.map(
                Effect.either(store.create({ id, data: data(op.user, 100 + n), expiresAt, version: 1 })),
                (e) => {
                  if (Either.isRight(e)) last.set(id, { user: op.user, end: ++clock })
                }
              )
            }
            case "rebind": {
              const id = pre[op.target].id
              return Effect.flatMap(Effect.orDie(store.load(id)), (found) =>
                Option.isNone(found) ? Effect.void : Effect.map(
                  Effect.either(store.save({ ...found.value, data: data(op.user, 100 + n) })),
                  (e) => {
                    if (Either.isRight(e)) {
                      last.set(id, { user: op.user, end: ++clock })
                    }
                  }
                ))
            }
            case "flip": {
              // two saves back to back: the session leaves a user and comes back, racing lists and revokes
              const id = pre[op.target].id
              return Effect.flatMap(Effect.orDie(store.load(id)), (found) =>
                Option.isNone(found) ? Effect.void : Effect.flatMap(
                  Effect.either(store.save({ ...found.value, data: data(op.user, 100 + n) })),
                  (first) => {
                    if (Either.isLeft(first)) {
                      return Effect.void
                    }
                    last.set(id, { user: op.user, end: ++clock })
                    return Effect.map(
                      Effect.either(store.save({ ...first.right, data: data(op.back, 200 + n) })),
                      (second) => {
                        if (Either.isRight(second)) {
                          last.set(id, { user: op.back, end: ++clock })
                        }
                      }
                    )
                  }
                ))
            }
            case "delete":
              return Effect.orDie(store.delete(pre[op.target].id))
            case "list":
              // a listing prunes what it finds dead, racing the writes
              return Effect.asVoid(Effect.orDie(index.list(users[op.user])))
            case "revoke":
              return Effect.suspend(() => {
                revokes.push({ user: op.user, start: ++clock })
                return Effect.asVoid(Effect.orDie(index.revoke(users[op.user])))
              })
          }
        })
      )
    yield* Effect.forEach(history.ops, run, { concurrency: "unbounded", discard: true })

    const listed = yield* Effect.forEach(users, (u) => Effect.map(index.list(u), (es) => new Set(es.map((e) => e.id))))
    for (const [id, write] of last) {
      const found = yield* store.load(id)
      if (Option.isNone(found)) continue
      const meta = found.value.data[Session.META_KEY] as { user?: { id: string } }
      const owner = meta.user === undefined ? -1 : users.indexOf(meta.user.id)
      if (owner >= 0 && !listed[owner].has(id)) return `a live session of user ${owner} is not listed`
      if (write.user !== null && revokes.some((r) => r.user === write.user && r.start > write.end)) {
        return `a session of user ${write.user} written before a revoke of that user began is alive`
      }
    }
    yield* Effect.forEach(users, (u) => index.revoke(u), { discard: true })
    yield* Effect.forEach(last.keys(), (id) => store.delete(id), { discard: true })
    return undefined
  })

const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name]
  return raw === undefined || raw === "" ? fallback : Number(raw)
}

/** `checkIndexRace(label)` runs the property on the store in context and fails with the seed and shrunk history. */
export const checkIndexRace = (
  label: string
): Effect.Effect<void, never, SessionStore.SessionStore | SessionIndex.SessionIndex> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<SessionStore.SessionStore | SessionIndex.SessionIndex>()
    const seed = envInt("INDEX_RACE_SEED", Date.now() % 1_000_000)
    const runs = envInt("INDEX_RACE_RUNS", 100)
    let broken = ""
    const property = fc.asyncProperty(historyArb, async (history) => {
      const verdict = await Runtime.runPromise(runtime)(runHistory(history))
      if (verdict !== undefined) broken = verdict
      return verdict === undefined
    })
    const result = yield* Effect.promise(() => fc.check(property, { seed, numRuns: runs }))
    if (result.failed) {
      const message = `${label}: seed ${seed}, path ${result.counterexamplePath}: ${broken}; shrunk history ${
        JSON.stringify(result.counterexample)
      }${result.errorInstance === undefined ? "" : `; error ${String(result.errorInstance)}`}`
      yield* Effect.logError(message)
      assert.fail(message)
    }
    yield* Effect.log(`${label}: ${result.numRuns} racing histories, seed ${seed}`)
  })
