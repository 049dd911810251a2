/**
 * The commit rules, as the pure plan decides them: no HTTP, no store.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Schema } from "effect"
import { Expiry, Session, type SessionData, type SessionId, type SessionRecord } from "effect-sessions"
import * as Plan from "../src/internal/plan.js"

const NOW = 1_000_000_000_000
const MINUTE = 60_000

const rules = (overrides?: Partial<Plan.Rules>): Plan.Rules => ({
  expiry: Expiry.OnInactivity("60 minutes"),
  sessionEndLifetimeMs: Duration.toMillis("14 days"),
  refreshAfterMs: undefined,
  absoluteLifetimeMs: undefined,
  cycleGraceMs: 10_000,
  rotateCsrfOnCycle: true,
  ...overrides
})

const ID = "a".repeat(43) as SessionId.SessionId

const data = (fields: Record<string, SessionData.JsonValue>, meta: Session.Metadata = { createdAt: NOW - MINUTE }) =>
  Object.assign(Object.create(null), fields, {
    [Session.META_KEY]: Schema.encodeSync(Session.Metadata)(meta)
  }) as SessionData.SessionData

const record = (
  fields: Record<string, SessionData.JsonValue>,
  expiresAt = NOW + 59 * MINUTE,
  version = 3
): SessionRecord.SessionRecord => ({
  id: ID,
  data: data(fields),
  expiresAt,
  version
})

const live = (r: SessionRecord.SessionRecord) => Plan.classify(r)
const ABSENT: Plan.Base = { _tag: "Absent" }

const changes = (c: Partial<Plan.ChangeSet>): Plan.ChangeSet => ({ ...Plan.NO_CHANGES, ...c })
const set = (entries: Record<string, SessionData.JsonValue>) =>
  new Map(Object.entries(entries).map(([k, value]) => [k, { op: "set", value } as Plan.Change]))
const removed = (...keys: Array<string>) => new Map(keys.map((k) => [k, { op: "remove" } as Plan.Change]))

const cookieless: Plan.Incoming = { present: false, reissue: false }
const withCookie: Plan.Incoming = { present: true, reissue: false }
const reissued: Plan.Incoming = { present: true, reissue: true }

const userData = (d: SessionData.SessionData) =>
  Object.fromEntries(Object.entries(d).filter(([k]) => k !== Session.META_KEY))

describe("the commit plan", () => {
  it("no session and nothing to store: nothing written, no cookie", () => {
    assert.isTrue(Plan.isNothing(Plan.decide(ABSENT, Plan.NO_CHANGES, NOW, rules(), cookieless)))
    // keys set and removed again, an expiry alone, a cycle alone: still nothing
    const emptied = changes({ changes: removed("a"), expiry: Expiry.OnInactivity("5 minutes"), cycle: true })
    assert.isTrue(Plan.isNothing(Plan.decide(ABSENT, emptied, NOW, rules(), withCookie)))
  })

  it("no session and user data: Create under a fresh token with its metadata and a cookie", () => {
    const plan = Plan.decide(ABSENT, changes({ changes: set({ n: 1 }) }), NOW, rules(), cookieless)
    assert.strictEqual(plan.write._tag, "Create")
    if (plan.write._tag !== "Create") return
    assert.deepStrictEqual(userData(plan.write.data), { n: 1 })
    assert.deepStrictEqual(Plan.readMeta(plan.write.data), { createdAt: NOW, refreshedAt: NOW })
    assert.strictEqual(plan.write.expiresAt, NOW + 60 * MINUTE)
    assert.deepStrictEqual(plan.cookie, { _tag: "Set", maxAge: 3600 })
  })

  it("a change to a live session is a compare-and-set Save at the loaded version", () => {
    const base = record({ n: 1, keep: "x" })
    const plan = Plan.decide(live(base), changes({ changes: set({ n: 2 }) }), NOW, rules(), withCookie)
    assert.strictEqual(plan.write._tag, "Save")
    if (plan.write._tag !== "Save") return
    assert.strictEqual(plan.write.record.version, 3)
    assert.isFalse(plan.write.refresh)
    assert.deepStrictEqual(userData(plan.write.record.data), { n: 2, keep: "x" })
    // a sliding expiry moved: the cookie goes out again
    assert.deepStrictEqual(plan.cookie, { _tag: "Set", maxAge: 3600 })
  })

  it("a change that changes nothing writes nothing", () => {
    const base = record({ n: 1, list: [1, { a: true }] })
    for (
      const c of [
        changes({ changes: set({ n: 1 }) }),
        changes({ changes: set({ list: [1, { a: true }] }) }),
        changes({ changes: removed("missing") }),
        changes({ cleared: true, changes: set({ n: 1, list: [1, { a: true }] }) })
      ]
    ) {
      assert.isTrue(Plan.isNothing(Plan.decide(live(base), c, NOW, rules(), withCookie)))
    }
    const empty = record({})
    assert.isTrue(Plan.isNothing(Plan.decide(live(empty), changes({ cleared: true }), NOW, rules(), withCookie)))
  })

  it("clear drops every key; remove drops one", () => {
    const base = record({ a: 1, b: 2 })
    const cleared = Plan.decide(
      live(base),
      changes({ cleared: true, changes: set({ c: 3 }) }),
      NOW,
      rules(),
      withCookie
    )
    assert.strictEqual(cleared.write._tag, "Save")
    if (cleared.write._tag === "Save") assert.deepStrictEqual(userData(cleared.write.record.data), { c: 3 })
    const one = Plan.decide(live(base), changes({ changes: removed("a") }), NOW, rules(), withCookie)
    if (one.write._tag === "Save") assert.deepStrictEqual(userData(one.write.record.data), { b: 2 })
    else assert.fail("expected a Save")
  })

  it("cycleId is a Move: the data under a fresh token, the old record a tombstone at the same version, for the grace window", () => {
    const base = record({ user: "ada", "effect-sessions:csrf": "s" })
    const plan = Plan.decide(
      live(base),
      changes({ cycle: true, changes: set({ role: "admin" }) }),
      NOW,
      rules(),
      withCookie
    )
    assert.strictEqual(plan.write._tag, "Move")
    if (plan.write._tag !== "Move") return
    assert.deepStrictEqual(userData(plan.write.data), { user: "ada", role: "admin" }, "the CSRF secret is rotated")
    assert.strictEqual(plan.write.tombstone.id, ID)
    assert.strictEqual(plan.write.tombstone.version, 3)
    assert.deepStrictEqual(userData(plan.write.tombstone.data), {})
    assert.strictEqual(Plan.readMeta(plan.write.tombstone.data).movedAt, NOW)
    assert.strictEqual(plan.write.tombstone.expiresAt, NOW + 10_000)
    // the creation time carries over: an absolute lifetime still counts from the first login
    assert.strictEqual(Plan.readMeta(plan.write.data).createdAt, NOW - MINUTE)
    assert.deepStrictEqual(plan.cookie, { _tag: "Set", maxAge: 3600 })
    assert.strictEqual(Plan.classify(plan.write.tombstone)._tag, "Moved")
    const kept = Plan.decide(live(base), changes({ cycle: true }), NOW, rules({ rotateCsrfOnCycle: false }), withCookie)
    if (kept.write._tag === "Move") assert.strictEqual(kept.write.data["effect-sessions:csrf"], "s")
    else assert.fail("expected a Move")
  })

  it("a tombstone never outlives the session it replaced", () => {
    const base = record({ user: "ada" }, NOW + 2_000)
    const plan = Plan.decide(live(base), changes({ cycle: true }), NOW, rules(), withCookie)
    if (plan.write._tag === "Move") assert.strictEqual(plan.write.tombstone.expiresAt, NOW + 2_000)
    else assert.fail("expected a Move")
  })

  it("a moved session (old token inside the grace window): nothing written, no cookie, whatever the request did", () => {
    const moved = Plan.classify({
      id: ID,
      data: data({}, { createdAt: NOW - MINUTE, movedAt: NOW - 1_000 }),
      expiresAt: NOW + 9_000,
      version: 4
    })
    assert.strictEqual(moved._tag, "Moved")
    for (
      const c of [
        Plan.NO_CHANGES,
        changes({ changes: set({ a: 1 }) }),
        changes({ flushed: true }),
        changes({ cycle: true }),
        changes({ cleared: true })
      ]
    ) {
      assert.isTrue(Plan.isNothing(Plan.decide(moved, c, NOW, rules(), reissued)))
    }
  })

  it("flush ends the live session; keys set after it start a new one", () => {
    const base = record({ a: 1 })
    const bye = Plan.decide(live(base), changes({ flushed: true }), NOW, rules(), withCookie)
    assert.deepStrictEqual(bye, { end: ID, write: { _tag: "None" }, cookie: { _tag: "Remove" } })
    const fresh = Plan.decide(live(base), changes({ flushed: true, changes: set({ b: 2 }) }), NOW, rules(), withCookie)
    assert.strictEqual(fresh.end, ID)
    assert.strictEqual(fresh.write._tag, "Create")
    if (fresh.write._tag === "Create") assert.deepStrictEqual(userData(fresh.write.data), { b: 2 })
    // a cookie that reached nothing is removed too; without a cookie there is nothing to remove
    assert.deepStrictEqual(Plan.decide(ABSENT, changes({ flushed: true }), NOW, rules(), withCookie).cookie, {
      _tag: "Remove"
    })
    assert.isTrue(Plan.isNothing(Plan.decide(ABSENT, changes({ flushed: true }), NOW, rules(), cookieless)))
  })

  it("read-only: a sliding session is refreshed only below refreshAfter", () => {
    const fresh = record({ a: 1 }, NOW + 40 * MINUTE)
    assert.isTrue(Plan.isNothing(Plan.decide(live(fresh), Plan.NO_CHANGES, NOW, rules(), withCookie)))
    const old = record({ a: 1 }, NOW + 20 * MINUTE)
    const plan = Plan.decide(live(old), Plan.NO_CHANGES, NOW, rules(), withCookie)
    assert.strictEqual(plan.write._tag, "Save")
    if (plan.write._tag !== "Save") return
    assert.isTrue(plan.write.refresh)
    assert.strictEqual(plan.write.record.expiresAt, NOW + 60 * MINUTE)
    // the same data; the metadata records the refresh
    assert.deepStrictEqual(userData(plan.write.record.data), userData(old.data))
    assert.deepStrictEqual(Plan.readMeta(plan.write.record.data), { ...Plan.readMeta(old.data), refreshedAt: NOW })
    assert.deepStrictEqual(plan.cookie, { _tag: "Set", maxAge: 3600 })
    // an explicit refreshAfter
    assert.isTrue(
      Plan.isNothing(Plan.decide(live(old), Plan.NO_CHANGES, NOW, rules({ refreshAfterMs: 10 * MINUTE }), withCookie))
    )
  })

  it("OnSessionEnd: refreshed without a cookie (a browser-session cookie), unless it must be re-issued", () => {
    const r = rules({ expiry: Expiry.OnSessionEnd, sessionEndLifetimeMs: 60 * MINUTE })
    const old = record({ a: 1 }, NOW + 10 * MINUTE)
    assert.deepStrictEqual(Plan.decide(live(old), Plan.NO_CHANGES, NOW, r, withCookie).cookie, { _tag: "None" })
    assert.deepStrictEqual(Plan.decide(live(old), Plan.NO_CHANGES, NOW, r, reissued).cookie, {
      _tag: "Set",
      maxAge: undefined
    })
  })

  it("AtDateTime never moves: a write sends no cookie, a read never refreshes", () => {
    const at = NOW + 5 * MINUTE
    const r = rules({ expiry: Expiry.AtDateTime(at) })
    const base = record({ a: 1 }, at)
    assert.isTrue(Plan.isNothing(Plan.decide(live(base), Plan.NO_CHANGES, NOW, r, withCookie)))
    const write = Plan.decide(live(base), changes({ changes: set({ a: 2 }) }), NOW, r, withCookie)
    assert.deepStrictEqual(write.cookie, { _tag: "None" })
    if (write.write._tag === "Save") assert.strictEqual(write.write.record.expiresAt, at)
  })

  it("a signed cookie under an older key is re-issued even when nothing is written", () => {
    const base = record({ a: 1 }, NOW + 50 * MINUTE)
    const plan = Plan.decide(live(base), Plan.NO_CHANGES, NOW, rules(), reissued)
    assert.deepStrictEqual(plan, { end: undefined, write: { _tag: "None" }, cookie: { _tag: "Set", maxAge: 3000 } })
  })

  it("setExpiry is persisted, sends the cookie, and the same expiry again is no change", () => {
    const base = record({ a: 1 })
    const plan = Plan.decide(
      live(base),
      changes({ expiry: Expiry.OnInactivity("5 minutes") }),
      NOW,
      rules(),
      withCookie
    )
    if (plan.write._tag !== "Save") return assert.fail("expected a Save")
    assert.deepStrictEqual(Plan.readMeta(plan.write.record.data).expiry, Expiry.OnInactivity("5 minutes"))
    assert.deepStrictEqual(plan.cookie, { _tag: "Set", maxAge: 300 })
    const stored = { ...base, data: plan.write.record.data }
    const again = Plan.decide(
      live(stored),
      changes({ expiry: Expiry.OnInactivity("5 minutes") }),
      NOW,
      rules(),
      withCookie
    )
    assert.notStrictEqual(again.write._tag, "Save")
  })

  it("absoluteLifetime caps every expiry, and a session past it is ended", () => {
    const r = rules({ absoluteLifetimeMs: 30 * MINUTE })
    const base = record({ a: 1 }, NOW + 29 * MINUTE)
    const write = Plan.decide(live(base), changes({ changes: set({ a: 2 }) }), NOW, r, withCookie)
    if (write.write._tag === "Save") assert.strictEqual(write.write.record.expiresAt, NOW - MINUTE + 30 * MINUTE)
    else assert.fail("expected a Save")
    const late = Plan.decide(live(base), changes({ changes: set({ a: 2 }) }), NOW + 40 * MINUTE, r, withCookie)
    assert.deepStrictEqual(late, { end: undefined, write: { _tag: "End", id: ID }, cookie: { _tag: "Remove" } })
  })

  it("malformed metadata reads as none, never as a moved session", () => {
    const odd = {
      id: ID,
      data: Object.assign(Object.create(null), { a: 1, [Session.META_KEY]: { movedAt: "yesterday" } }),
      expiresAt: NOW + MINUTE,
      version: 1
    }
    assert.strictEqual(Plan.classify(odd)._tag, "Live")
    assert.deepStrictEqual(Plan.readMeta(odd.data), {})
  })
})

describe("the commit plan: a session's user", () => {
  const alice: Session.UserBinding = { id: "alice", authenticatedAt: NOW, userAgent: "UA" }
  const bind: Plan.UserChange = { _tag: "Bind", binding: alice }
  const unbind: Plan.UserChange = { _tag: "Unbind" }
  const boundRecord = (version = 3): SessionRecord.SessionRecord => ({
    id: ID,
    data: data({ a: 1 }, { createdAt: NOW - MINUTE, user: { id: "alice", authenticatedAt: NOW - MINUTE } }),
    expiresAt: NOW + 59 * MINUTE,
    version
  })

  it("a binding alone creates a session: a user is not an empty session", () => {
    const plan = Plan.decide(ABSENT, changes({ user: bind }), NOW, rules(), cookieless)
    assert.strictEqual(plan.write._tag, "Create")
    if (plan.write._tag !== "Create") return
    assert.deepStrictEqual(Plan.readMeta(plan.write.data).user, alice)
    assert.deepStrictEqual(userData(plan.write.data), {})
  })

  it("binding a live session saves it; binding again renews the authentication time", () => {
    const plan = Plan.decide(live(record({ a: 1 })), changes({ user: bind }), NOW, rules(), withCookie)
    assert.strictEqual(plan.write._tag, "Save")
    if (plan.write._tag !== "Save") return
    assert.deepStrictEqual(plan.write.meta.user, alice)
    assert.deepStrictEqual(Plan.readMeta(plan.write.record.data).user, alice)
    const again = Plan.decide(live(boundRecord()), changes({ user: bind }), NOW, rules(), withCookie)
    assert.strictEqual(again.write._tag, "Save")
    if (again.write._tag === "Save") assert.strictEqual(again.write.meta.user?.authenticatedAt, NOW)
  })

  it("unbinding: a bound session is saved without its user; an unbound one writes nothing", () => {
    const plan = Plan.decide(live(boundRecord()), changes({ user: unbind }), NOW, rules(), withCookie)
    assert.strictEqual(plan.write._tag, "Save")
    if (plan.write._tag === "Save") assert.isUndefined(Plan.readMeta(plan.write.record.data).user)
    assert.isTrue(
      Plan.isNothing(Plan.decide(live(record({ a: 1 })), changes({ user: unbind }), NOW, rules(), withCookie))
    )
  })

  it("every other write keeps the user: a change, clear, a refresh; cycleId moves it; the tombstone has none", () => {
    const base = live(boundRecord())
    for (const c of [changes({ changes: set({ b: 2 }) }), changes({ cleared: true })]) {
      const plan = Plan.decide(base, c, NOW, rules(), withCookie)
      assert.strictEqual(plan.write._tag, "Save")
      if (plan.write._tag === "Save") assert.strictEqual(plan.write.meta.user?.id, "alice")
    }
    const old = { ...boundRecord(), expiresAt: NOW + 10 * MINUTE }
    const refresh = Plan.decide(live(old), Plan.NO_CHANGES, NOW, rules(), withCookie)
    assert.strictEqual(refresh.write._tag, "Save")
    if (refresh.write._tag === "Save") {
      assert.isTrue(refresh.write.refresh)
      assert.strictEqual(Plan.readMeta(refresh.write.record.data).user?.id, "alice")
      assert.strictEqual(Plan.readMeta(refresh.write.record.data).refreshedAt, NOW)
    }
    const move = Plan.decide(base, changes({ cycle: true }), NOW, rules(), withCookie)
    assert.strictEqual(move.write._tag, "Move")
    if (move.write._tag !== "Move") return
    assert.strictEqual(Plan.readMeta(move.write.data).user?.id, "alice")
    assert.isUndefined(Plan.readMeta(move.write.tombstone.data).user)
  })

  it("a flush ends the user with the session; a bind after it starts a new bound session", () => {
    const plan = Plan.decide(live(boundRecord()), changes({ flushed: true, user: bind }), NOW, rules(), withCookie)
    assert.strictEqual(plan.end, ID)
    assert.strictEqual(plan.write._tag, "Create")
    const ended = Plan.decide(live(boundRecord()), changes({ flushed: true }), NOW, rules(), withCookie)
    assert.strictEqual(ended.write._tag, "None")
  })
})
