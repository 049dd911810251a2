/**
 * The checks of the session index contract (see `effect-sessions/testing`), for stores that provide
 * `SessionIndex`. Like the store checks they draw fresh ids and user ids, so they share one store with other
 * tests and hold on persistent servers; records expire through a shifted `Clock`; each check deletes what it
 * made.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { META_KEY } from "../Session.js"
import * as SessionData from "../SessionData.js"
import * as SessionId from "../SessionId.js"
import * as SessionIndex from "../SessionIndex.js"
import type * as SessionRecord from "../SessionRecord.js"
import * as SessionStore from "../SessionStore.js"
import * as SessionToken from "../SessionToken.js"
import { ensure, LONG, RACERS, reasonOf, SHORT } from "./contractChecks.js"
import { type TimeTravel, withTimeTravel } from "./contractClock.js"

/**
 * One check of the index contract.
 *
 * @since 0.3.0
 */
export interface IndexCheck {
  /** Stable, unique name. */
  readonly name: string
  /** The rule the check proves, e.g. `"list-after-save"`. */
  readonly rule: string
  /** Runs the check; it fails when the store breaks the rule. */
  readonly run: Effect.Effect<void, unknown, SessionStore.SessionStore | SessionIndex.SessionIndex>
}

interface Binding {
  readonly user: string
  readonly authenticatedAt?: number
  readonly userAgent?: string
  readonly ip?: string
}

interface Ctx extends TimeTravel {
  readonly store: SessionStore.Service
  readonly index: SessionIndex.Service
  /** A fresh user id. */
  readonly newUser: () => string
  /** Data bound to `binding` (or to no one), as the middleware stores it. */
  readonly data: (binding: Binding | undefined, extra?: { readonly movedAt?: number }) => SessionData.SessionData
  /** Creates a record with a fresh id holding `data`, expiring `lifetime` ms from the shifted now. */
  readonly create: (
    data: SessionData.SessionData,
    lifetime?: number
  ) => Effect.Effect<SessionRecord.SessionRecord, unknown>
  /** `list(user)`'s ids, sorted. */
  readonly listed: (user: string) => Effect.Effect<ReadonlyArray<string>, unknown>
  readonly newId: () => SessionId.SessionId
}

const sorted = (ids: ReadonlyArray<string>): ReadonlyArray<string> => [...ids].sort()
const same = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && sorted(a).every((x, i) => x === sorted(b)[i])

const check = (name: string, rule: string, body: (ctx: Ctx) => Effect.Effect<void, unknown>): IndexCheck => ({
  name,
  rule,
  run: Effect.gen(function*() {
    const store = yield* SessionStore.SessionStore
    const index = yield* SessionIndex.SessionIndex
    const ids: Array<SessionId.SessionId> = []
    const newId = () => {
      const id = SessionId.fromToken(SessionToken.unsafeGenerate())
      ids.push(id)
      return id
    }
    return yield* withTimeTravel((travel) => {
      const ctx: Ctx = {
        ...travel,
        store,
        index,
        newId,
        newUser: () => `user-${SessionToken.unsafeGenerate().slice(0, 16)}`,
        data: (binding, extra) => {
          const meta: Record<string, SessionData.JsonValue> = { createdAt: 1_000 }
          if (binding !== undefined) {
            const user: Record<string, SessionData.JsonValue> = {
              id: binding.user,
              authenticatedAt: binding.authenticatedAt ?? 2_000
            }
            if (binding.userAgent !== undefined) user.userAgent = binding.userAgent
            if (binding.ip !== undefined) user.ip = binding.ip
            meta.user = user
          }
          if (extra?.movedAt !== undefined) meta.movedAt = extra.movedAt
          meta.refreshedAt = 3_000
          return SessionData.fromEntries([["note", "x"], [META_KEY, meta]])
        },
        create: (data, lifetime) =>
          Effect.flatMap(
            travel.now,
            (now) => store.create({ id: newId(), data, expiresAt: now + (lifetime ?? LONG), version: 1 })
          ),
        listed: (user) => Effect.map(index.list(user), (entries) => sorted(entries.map((e) => e.id)))
      }
      return body(ctx)
    }).pipe(
      Effect.ensuring(
        Effect.forEach(ids, (id) => Effect.catchAllCause(store.delete(id), () => Effect.void), { discard: true })
      )
    )
  })
})

const listChecks: ReadonlyArray<IndexCheck> = [
  check(
    "list: a user's sessions after create, with their fields; no one else's",
    "list-after-create",
    (ctx) =>
      Effect.gen(function*() {
        const u = ctx.newUser()
        const v = ctx.newUser()
        const a = yield* ctx.create(
          ctx.data({ user: u, authenticatedAt: 5_000, userAgent: "Agent/1", ip: "192.0.2.1" })
        )
        const b = yield* ctx.create(ctx.data({ user: u, authenticatedAt: 7_000 }))
        yield* ctx.create(ctx.data({ user: v }))
        yield* ctx.create(ctx.data(undefined))
        const entries = yield* ctx.index.list(u)
        yield* ensure(
          same(entries.map((e) => e.id), [a.id, b.id]),
          `list found ${entries.length} sessions of the user, expected exactly the 2 created`
        )
        const ea = entries.find((e) => e.id === a.id)!
        yield* ensure(
          ea.createdAt === 1_000 && ea.authenticatedAt === 5_000 && ea.refreshedAt === 3_000 &&
            ea.expiresAt === a.expiresAt,
          "an entry's createdAt, authenticatedAt, refreshedAt or expiresAt differs from the record"
        )
        yield* ensure(
          ea.device.userAgent === "Agent/1" && ea.device.ip === "192.0.2.1",
          "an entry's device details differ from the binding"
        )
        yield* ensure(entries[0].id === b.id, "list is not ordered newest authentication first")
        yield* ensure((yield* ctx.listed(ctx.newUser())).length === 0, "list of a user without sessions is not empty")
      })
  ),
  check(
    "list: a save that rebinds, changes or unbinds is reflected",
    "list-after-save",
    (ctx) =>
      Effect.gen(function*() {
        const u = ctx.newUser()
        const v = ctx.newUser()
        const a = yield* ctx.create(ctx.data({ user: u }))
        const b = yield* ctx.create(ctx.data(undefined))
        // rebind a to v, bind b to u
        const a2 = yield* ctx.store.save({ ...a, data: ctx.data({ user: v }) })
        const b2 = yield* ctx.store.save({ ...b, data: ctx.data({ user: u, authenticatedAt: 9_000 }) })
        yield* ensure(same(yield* ctx.listed(u), [b.id]), "after rebinding, list of the first user is wrong")
        yield* ensure(same(yield* ctx.listed(v), [a.id]), "after rebinding, list of the second user is wrong")
        // a save of b's data keeps it listed with the record's new expiry
        const now = yield* ctx.now
        const b3 = yield* ctx.store.save({ ...b2, expiresAt: now + 2 * LONG })
        const entries = yield* ctx.index.list(u)
        yield* ensure(
          entries.length === 1 && entries[0].expiresAt === b3.expiresAt && entries[0].authenticatedAt === 9_000,
          "after a save, the entry does not show the saved record"
        )
        yield* ctx.store.save({ ...a2, data: ctx.data(undefined) })
        yield* ensure((yield* ctx.listed(v)).length === 0, "an unbound session is still listed")
      })
  ),
  check("list: never a deleted, moved or expired session", "list-only-live", (ctx) =>
    Effect.gen(function*() {
      const u = ctx.newUser()
      const deleted = yield* ctx.create(ctx.data({ user: u }))
      const moved = yield* ctx.create(ctx.data({ user: u }))
      const short = yield* ctx.create(ctx.data({ user: u }), SHORT)
      const kept = yield* ctx.create(ctx.data({ user: u }))
      yield* ctx.store.delete(deleted.id)
      // a tombstone keeps its old binding fields beside movedAt: it must still not be listed
      yield* ctx.store.save({ ...moved, data: ctx.data({ user: u }, { movedAt: 4_000 }) })
      yield* ensure(same(yield* ctx.listed(u), [short.id, kept.id]), "list shows a deleted or moved session")
      yield* ctx.advance(SHORT + 1)
      yield* ensure(same(yield* ctx.listed(u), [kept.id]), "list shows an expired session")
    }))
]

const revokeChecks: ReadonlyArray<IndexCheck> = [
  check(
    "revoke: every session of the user, counted; other users untouched; a later save is Gone",
    "revoke-all",
    (ctx) =>
      Effect.gen(function*() {
        const u = ctx.newUser()
        const v = ctx.newUser()
        const mine = yield* Effect.forEach([1, 2, 3], () => ctx.create(ctx.data({ user: u })))
        const other = yield* ctx.create(ctx.data({ user: v }))
        const unbound = yield* ctx.create(ctx.data(undefined))
        const expired = yield* ctx.create(ctx.data({ user: u }), SHORT)
        yield* ctx.advance(SHORT + 1)
        const count = yield* ctx.index.revoke(u)
        yield* ensure(count === 3, `revoke counted ${count}, expected the 3 live sessions`)
        for (const r of mine) {
          yield* ensure(Option.isNone(yield* ctx.store.load(r.id)), "a revoked session still loads")
        }
        yield* ensure(Option.isNone(yield* ctx.store.load(expired.id)), "an expired session loads")
        yield* ensure((yield* ctx.listed(u)).length === 0, "list after revoke is not empty")
        yield* ensure(Option.isSome(yield* ctx.store.load(other.id)), "revoke deleted another user's session")
        yield* ensure(Option.isSome(yield* ctx.store.load(unbound.id)), "revoke deleted an unbound session")
        const saved = yield* Effect.exit(ctx.store.save({ ...mine[0], data: ctx.data({ user: u }) }))
        yield* ensure(
          Exit.isFailure(saved) && reasonOf(saved) === "Gone",
          `a save of a revoked session answered ${reasonOf(saved)}, expected Gone`
        )
        yield* ensure((yield* ctx.index.revoke(u)) === 0, "a second revoke counted sessions")
      })
  ),
  check("revoke with except: all but that one", "revoke-except", (ctx) =>
    Effect.gen(function*() {
      const u = ctx.newUser()
      const [keep, ...rest] = yield* Effect.forEach([1, 2, 3, 4], () => ctx.create(ctx.data({ user: u })))
      const count = yield* ctx.index.revoke(u, { except: keep.id })
      yield* ensure(count === rest.length, `revoke with except counted ${count}, expected ${rest.length}`)
      yield* ensure(Option.isSome(yield* ctx.store.load(keep.id)), "revoke deleted the excepted session")
      yield* ensure(same(yield* ctx.listed(u), [keep.id]), "after revoke with except, list is not just that one")
      for (const r of rest) {
        yield* ensure(Option.isNone(yield* ctx.store.load(r.id)), "a revoked session still loads")
      }
      // revokeIds names what it deleted
      const ids = yield* ctx.index.revokeIds(u)
      yield* ensure(same(ids, [keep.id]), "revokeIds did not name the session it deleted")
    })),
  check(
    `revoke racing ${RACERS} concurrent saves of the user's sessions leaves none alive`,
    "revoke-beats-saves",
    (ctx) =>
      Effect.gen(function*() {
        const u = ctx.newUser()
        const sessions = yield* Effect.forEach(Array.from({ length: 10 }), () => ctx.create(ctx.data({ user: u })))
        // each racer reloads and saves its session until it is refused or the revoke has returned, yielding
        // between steps so that even a store that never leaves the process interleaves with the revoke
        let revoked = false
        const saver = (r: SessionRecord.SessionRecord, n: number) =>
          Effect.gen(function*() {
            for (let i = 0; !revoked && i < 1_000; i++) {
              yield* Effect.yieldNow()
              const found = yield* ctx.store.load(r.id)
              if (Option.isNone(found)) return
              const exit = yield* Effect.exit(
                ctx.store.save({ ...found.value, data: ctx.data({ user: u, authenticatedAt: 2_000 + n * 10 + i }) })
              )
              if (Exit.isFailure(exit) && reasonOf(exit) !== "Conflict") return
            }
          })
        const racers = Array.from({ length: RACERS }, (_, n) => saver(sessions[n % sessions.length], n))
        const [, count] = yield* Effect.all([
          Effect.all(racers, { concurrency: "unbounded" }),
          Effect.zipRight(
            Effect.yieldNow(),
            Effect.ensuring(ctx.index.revoke(u), Effect.sync(() => revoked = true))
          )
        ], { concurrency: "unbounded" })
        yield* ensure(count <= sessions.length, `revoke counted ${count} of ${sessions.length} sessions`)
        for (const r of sessions) {
          yield* ensure(Option.isNone(yield* ctx.store.load(r.id)), "a session saved while revoked is alive")
        }
        yield* ensure((yield* ctx.listed(u)).length === 0, "list after the race is not empty")
      })
  ),
  check(
    "a create racing a revoke is either gone or alive and listed, never alive and unlisted",
    "create-vs-revoke",
    (ctx) =>
      Effect.gen(function*() {
        const u = ctx.newUser()
        for (let round = 0; round < 5; round++) {
          yield* ctx.create(ctx.data({ user: u }))
          // staggered by 0 to 4 yields, so that some land before, during and after the revoke on any store
          const creates = Array.from(
            { length: 10 },
            (_, i) => Effect.zipRight(yields(i % 5), Effect.either(ctx.create(ctx.data({ user: u }))))
          )
          const [made] = yield* Effect.all([
            Effect.all(creates, { concurrency: "unbounded" }),
            Effect.zipRight(Effect.yieldNow(), ctx.index.revoke(u))
          ], { concurrency: "unbounded" })
          const listed = new Set(yield* ctx.listed(u))
          for (const m of made) {
            if (m._tag === "Left") continue
            const alive = Option.isSome(yield* ctx.store.load(m.right.id))
            yield* ensure(!alive || listed.has(m.right.id), "a session created during a revoke is alive and unlisted")
          }
          yield* ctx.index.revoke(u)
          yield* ensure((yield* ctx.listed(u)).length === 0, "a revoke after the race left sessions listed")
        }
      })
  )
]

const yields = (n: number): Effect.Effect<void> =>
  n === 0 ? Effect.void : Effect.zipRight(Effect.yieldNow(), yields(n - 1))

/**
 * Every check of the index contract.
 *
 * @since 0.3.0
 */
export const indexChecks: ReadonlyArray<IndexCheck> = [...listChecks, ...revokeChecks]
