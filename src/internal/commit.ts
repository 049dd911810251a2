/**
 * Running a commit plan against the store: the one effectful part of the commit. It executes what
 * `plan.decide` returns and, on `Conflict`, reloads and asks `decide` again with the same change set (the
 * merge), with jittered backoff until the deadline. It decides nothing itself beyond "which plan next".
 *
 * The move of `cycleId`: the data is created under a fresh token first, then the old record is replaced by
 * its tombstone with a compare-and-set at the version the plan is based on. That save is the move's one
 * commit point: before it nothing is reachable through the new token (it has not left this process), after
 * it the old token reaches only the tombstone. If the save does not succeed the new record is deleted again;
 * should that delete fail too, the record stays unreachable (nobody holds its token) until it expires.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as SessionData from "../SessionData.js"
import * as SessionId from "../SessionId.js"
import type { SessionRecord } from "../SessionRecord.js"
import type * as SessionStore from "../SessionStore.js"
import * as SessionToken from "../SessionToken.js"
import * as StoreError from "../StoreError.js"
import type { CommitLocks } from "./commitLocks.js"
import * as Plan from "./plan.js"

/** What the runner needs beside the rules. */
export interface Runner extends Plan.Rules {
  readonly store: SessionStore.Service
  readonly locks: CommitLocks
  readonly mergeDeadlineMs: number
  /** `undefined`: the store's own cap applies. */
  readonly maxDataBytes: number | undefined
  /** The decision; `Plan.decide` (replaced only by the core's mutation tests). */
  readonly decide: typeof Plan.decide
}

/** The result of a commit: what the request's token (or its new one) reaches now, and the cookie to send. */
export interface Outcome {
  readonly base: Plan.Base
  /** The new token after a `Create` or `Move`; `undefined` keeps the current one. */
  readonly token: SessionToken.SessionToken | undefined
  readonly cookie: Plan.CookiePlan
  /** The record now stored under the id the commit locked (the tombstone after a move); none when it ended. */
  readonly locked?: SessionRecord | undefined
}

/** Attempts at drawing a token that no live session holds. */
const CREATE_ATTEMPTS = 8
/** Base and cap of the jittered backoff between merge attempts. */
const BACKOFF_BASE_MS = 5
const BACKOFF_CAP_MS = 250

const ABSENT: Plan.Base = { _tag: "Absent" }
const GONE_OUTCOME: Outcome = { base: ABSENT, token: undefined, cookie: Plan.GONE.cookie }

const sizeProblem = (
  runner: Runner,
  data: SessionData.SessionData,
  method: "create" | "save"
): StoreError.StoreError | undefined => {
  const max = runner.maxDataBytes
  if (max === undefined) return undefined
  const encoded = SessionData.encode(data, max)
  return Either.isLeft(encoded) ? StoreError.rule("Encode", method, encoded.left) : undefined
}

/** `createFresh` creates the record under a freshly drawn token; on `Collision` it draws again. */
const createFresh = (
  runner: Runner,
  data: SessionData.SessionData,
  expiresAt: number
): Effect.Effect<
  { readonly record: SessionRecord; readonly token: SessionToken.SessionToken },
  StoreError.StoreError
> => {
  const problem = sizeProblem(runner, data, "create")
  if (problem !== undefined) return Effect.fail(problem)
  const attempt = (n: number): Effect.Effect<
    { readonly record: SessionRecord; readonly token: SessionToken.SessionToken },
    StoreError.StoreError
  > => {
    const token = SessionToken.unsafeGenerate()
    return runner.store.create({ id: SessionId.fromToken(token), data, expiresAt, version: 1 }).pipe(
      Effect.map((record) => ({ record, token })),
      Effect.catchIf((e) => e.reason === "Collision" && n + 1 < CREATE_ATTEMPTS, () => attempt(n + 1))
    )
  }
  return attempt(0)
}

/** `discard` deletes a record created for a move that did not happen; a failure leaves it unreachable. */
const discard = (runner: Runner, id: SessionId.SessionId): Effect.Effect<void> =>
  Effect.catchAll(
    runner.store.delete(id),
    (e) =>
      Effect.logWarning(
        "effect-sessions: a record made for a cancelled cycleId could not be deleted; it is unreachable"
      ).pipe(
        Effect.annotateLogs({ reason: e.reason, method: e.method })
      )
  )

const done = (plan: Plan.Plan, base: Plan.Base, token?: SessionToken.SessionToken): Outcome => ({
  base,
  token,
  cookie: plan.cookie,
  locked: base._tag === "Absent" ? undefined : base.record
})

/** What a record the plan wrote is to the request: its metadata is the plan's, not decoded again. */
const live = (record: SessionRecord, meta: Plan.Metadata): Plan.Base => ({ _tag: "Live", record, meta })

/**
 * `run` carries out `plan` (made by `decide` from `base`, `changes` and `now`) and, on `Conflict`, the
 * plans that follow it. A write that may conflict runs holding the session's lock in this process.
 */
export const run = (
  runner: Runner,
  plan: Plan.Plan,
  base: Plan.Base,
  changes: Plan.ChangeSet,
  now: number,
  incoming: Plan.Incoming
): Effect.Effect<Outcome, StoreError.StoreError> => {
  const write = plan.write
  const deadline = now + runner.mergeDeadlineMs
  const written = write._tag !== "Save" && write._tag !== "Move"
    ? cas(runner, plan, plan.end === undefined ? base : ABSENT, changes, incoming, deadline, 0)
    : runner.locks.with(write._tag === "Save" ? write.record.id : write.tombstone.id, (entry, waited) => {
      const current = base._tag === "Absent" ? undefined : base.record
      const latest = entry.latest
      // Commits of this session in this process take turns; one that waited starts from the last one's record.
      const fromLatest = waited && latest !== undefined && current !== undefined && latest.version > current.version
      const attempt = fromLatest
        ? replan(runner, latest, changes, incoming, undefined, 0)
        : cas(runner, plan, base, changes, incoming, deadline, 0)
      return Effect.map(attempt, (outcome) => {
        entry.latest = outcome.locked
        return outcome
      })
    })
  return plan.end === undefined ? written : Effect.zipRight(runner.store.delete(plan.end), written)
}

/**
 * `replan` decides the change set again on `record` (the latest one) at the current time and runs that plan;
 * `deadline` `undefined` starts a new merge deadline.
 */
const replan = (
  runner: Runner,
  record: SessionRecord,
  changes: Plan.ChangeSet,
  incoming: Plan.Incoming,
  deadline: number | undefined,
  attempt: number
): Effect.Effect<Outcome, StoreError.StoreError> =>
  Effect.clockWith((clock) => {
    const now = clock.unsafeCurrentTimeMillis()
    const base = Plan.classify(record)
    const plan = runner.decide(base, changes, now, runner, incoming)
    return cas(runner, plan, base, changes, incoming, deadline ?? now + runner.mergeDeadlineMs, attempt)
  })

/** `cas` runs a plan whose write may conflict (inside the session's lock), re-planning after each `Conflict`. */
const cas = (
  runner: Runner,
  plan: Plan.Plan,
  base: Plan.Base,
  changes: Plan.ChangeSet,
  incoming: Plan.Incoming,
  deadline: number,
  attempt: number
): Effect.Effect<Outcome, StoreError.StoreError> => {
  const write = plan.write
  const retry = (e: StoreError.StoreError, id: SessionId.SessionId): Effect.Effect<Outcome, StoreError.StoreError> =>
    Effect.clockWith((clock) => {
      const t = clock.unsafeCurrentTimeMillis()
      if (t >= deadline) return Effect.fail(e)
      const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 10))
      return Random.nextIntBetween(0, cap + 1).pipe(
        Effect.flatMap((ms) => Effect.sleep(Duration.millis(Math.min(ms, Math.max(0, deadline - t))))),
        Effect.zipRight(runner.store.load(id)),
        Effect.flatMap((found) => {
          // The session ended meanwhile (logout, expiry, revocation): `Gone`.
          if (Option.isNone(found)) return Effect.succeed(GONE_OUTCOME)
          return replan(runner, found.value, changes, incoming, deadline, attempt + 1)
        })
      )
    })
  switch (write._tag) {
    case "Save": {
      if (!write.refresh) {
        const problem = sizeProblem(runner, write.record.data, "save")
        if (problem !== undefined) return Effect.fail(problem)
      }
      return Effect.matchEffect(runner.store.save(write.record), {
        onSuccess: (saved) => Effect.succeed(done(plan, live(saved, write.meta))),
        onFailure: (e) => {
          if (e.reason === "Gone") return Effect.succeed(GONE_OUTCOME)
          if (e.reason === "Conflict") return retry(e, write.record.id)
          if (write.refresh) {
            // A refresh the handler did not ask for: a failure leaves the session as it is (still valid).
            return Effect.as(
              Effect.logWarning("effect-sessions: session refresh failed; the session keeps its expiry").pipe(
                Effect.annotateLogs({ reason: e.reason, method: e.method })
              ),
              done(Plan.NOTHING, base)
            )
          }
          return Effect.fail(e)
        }
      })
    }
    case "Move":
      return Effect.flatMap(
        createFresh(runner, write.data, write.expiresAt),
        (created) =>
          Effect.matchEffect(runner.store.save(write.tombstone), {
            // The old record is the tombstone now: the session's next commit in this process starts from it.
            onSuccess: (tombstone) => {
              return Effect.succeed<Outcome>({
                base: live(created.record, write.meta),
                token: created.token,
                cookie: plan.cookie,
                locked: tombstone
              })
            },
            onFailure: (e) =>
              Effect.zipRight(
                discard(runner, created.record.id),
                e.reason === "Gone"
                  ? Effect.succeed(GONE_OUTCOME)
                  : e.reason === "Conflict"
                  ? retry(e, write.tombstone.id)
                  : Effect.fail(e)
              )
          })
      )
    case "None":
      return Effect.succeed(done(plan, base))
    case "End":
      return Effect.as(runner.store.delete(write.id), done(plan, ABSENT))
    case "Create":
      return Effect.map(
        createFresh(runner, write.data, write.expiresAt),
        (c) => done(plan, live(c.record, write.meta), c.token)
      )
  }
}
