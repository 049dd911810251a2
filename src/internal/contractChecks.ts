/**
 * The checks of the store contract suite (see `effect-sessions/testing`).
 *
 * Every check draws fresh random ids, so checks can share one store, run against persistent servers and
 * hold while other checks or other test runs write to the same store. No check sleeps: records expire
 * through a shifted `Clock` (see `contractClock.ts`). Every `StoreError` a check provokes is also searched
 * for the check's tokens, ids and data markers.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as SessionData from "../SessionData.js"
import * as SessionId from "../SessionId.js"
import type * as SessionRecord from "../SessionRecord.js"
import * as SessionStore from "../SessionStore.js"
import * as SessionToken from "../SessionToken.js"
import type * as StoreError from "../StoreError.js"
import { type TimeTravel, withTimeTravel } from "./contractClock.js"
import { TaggedError } from "./taggedError.js"

/**
 * One check of the store contract.
 *
 * @since 0.1.0
 */
export interface ContractCheck {
  /** Stable, unique name, e.g. `"create: collision leaves the live record untouched"`. */
  readonly name: string
  /** The contract rule the check proves, e.g. `"create-never-overwrites"`. */
  readonly rule: string
  /** True when the check needs the store's `ExpiredDeletion`. */
  readonly requiresExpiredDeletion?: boolean
  /** Runs the check; it fails (with a `ContractViolation` or the store's own error) when the store breaks the rule. */
  readonly run: Effect.Effect<void, unknown, SessionStore.SessionStore | SessionStore.ExpiredDeletion>
}

/**
 * The failure of a check: what the store did against the contract. Its message never holds an id or data.
 *
 * @since 0.1.0
 */
export class ContractViolation extends TaggedError("ContractViolation")<{ readonly message: string }>() {}

/**
 * Settings the checks read: the store's data cap (default 65,536 bytes).
 *
 * @since 0.1.0
 */
export class ContractSettings
  extends Context.Reference<ContractSettings>()("effect-sessions/testing/ContractSettings", {
    defaultValue: (): { readonly maxDataBytes: number } => ({ maxDataBytes: SessionData.DEFAULT_MAX_BYTES })
  })
{}

/** Lifetime of records that must stay live during a check. */
export const LONG = 60 * 60 * 1000
/** Lifetime of records a check lets expire (by moving the clock past it). */
export const SHORT = 10 * 1000
/** Racing writers in the concurrency checks. */
export const RACERS = 50

export const violation = (message: string) => Effect.fail(new ContractViolation({ message }))

export const ensure = (condition: boolean, message: string): Effect.Effect<void, ContractViolation> =>
  condition ? Effect.void : violation(message)

interface StoreErrorLike {
  readonly _tag: "StoreError"
  readonly reason: StoreError.Reason
  readonly message: string
}

const isStoreErrorLike = (u: unknown): u is StoreErrorLike =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "StoreError" &&
  typeof (u as { reason?: unknown }).reason === "string"

const safeStringify = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? ""
  } catch {
    return ""
  }
}

/** What a check works with: the store, its shifted clock, and fresh ids and markers it tracks as secrets. */
interface Ctx extends TimeTravel {
  readonly store: SessionStore.Service
  /** A fresh token-derived id (token and id become secrets; the id is deleted when the check ends). */
  readonly newId: () => SessionId.SessionId
  /** A distinctive string to put into data; errors must never contain it. */
  readonly marker: () => string
  /** Data holding a fresh marker. */
  readonly data: () => SessionData.SessionData
  /** A record with a fresh id (unless given), expiring `lifetime` ms from the shifted now, version 1. */
  readonly record: (
    data: SessionData.SessionData,
    options?: { readonly id?: SessionId.SessionId; readonly lifetime?: number; readonly version?: number }
  ) => Effect.Effect<SessionRecord.SessionRecord>
  /** Runs `effect`, expects a `StoreError` with `reason`, and searches every rendering of it for the check's secrets. */
  readonly fails: <A>(
    what: string,
    effect: Effect.Effect<A, unknown>,
    reason: StoreError.Reason
  ) => Effect.Effect<StoreErrorLike, ContractViolation>
  /** Loads `id` and fails unless it is none. */
  readonly expectNone: (what: string, id: SessionId.SessionId) => Effect.Effect<void, unknown>
  /** Loads `id` and fails unless it equals `expected` (data deep-equal, expiresAt and version exact). */
  readonly expectRecord: (what: string, expected: SessionRecord.SessionRecord) => Effect.Effect<void, unknown>
}

const sameRecord = (a: SessionRecord.SessionRecord, b: SessionRecord.SessionRecord): string | undefined => {
  if (a.id !== b.id) return "the id differs"
  if (a.expiresAt !== b.expiresAt) return `expiresAt differs by ${a.expiresAt - b.expiresAt} ms`
  if (a.version !== b.version) return `version is ${a.version}, expected ${b.version}`
  if (!SessionData.equals(a.data, b.data)) return "the data differs"
  return undefined
}

const expectSame = (
  what: string,
  actual: SessionRecord.SessionRecord,
  expected: SessionRecord.SessionRecord
): Effect.Effect<void, ContractViolation> => {
  const diff = sameRecord(actual, expected)
  return diff === undefined ? Effect.void : violation(`${what}: ${diff}`)
}

const makeCtx = (
  store: SessionStore.Service,
  travel: TimeTravel,
  secrets: Array<string>,
  ids: Array<SessionId.SessionId>
): Ctx => {
  const newId = () => {
    const token = SessionToken.unsafeGenerate()
    const id = SessionId.fromToken(token)
    secrets.push(token, id)
    ids.push(id)
    return id
  }
  const leak = (rendering: string): boolean => secrets.some((secret) => rendering.includes(secret))
  const marker = () => {
    const m = `MARK-${SessionToken.unsafeGenerate().slice(0, 12)}`
    secrets.push(m)
    return m
  }
  return {
    ...travel,
    store,
    newId,
    marker,
    data: () => SessionData.fromEntries([["note", marker()]]),
    record: (data, options) =>
      Effect.map(travel.now, (now) => ({
        id: options?.id ?? newId(),
        data,
        expiresAt: now + (options?.lifetime ?? LONG),
        version: options?.version ?? 1
      })),
    fails: (what, effect, reason) =>
      Effect.flatMap(Effect.exit(effect), (exit) => {
        if (Exit.isSuccess(exit)) return violation(`${what}: succeeded, expected a StoreError ${reason}`)
        const failure = Cause.failureOption(exit.cause)
        if (Option.isNone(failure)) {
          return violation(`${what}: died or was interrupted, expected a StoreError ${reason}`)
        }
        const error = failure.value
        if (!isStoreErrorLike(error)) return violation(`${what}: failed with something that is not a StoreError`)
        if (error.reason !== reason) return violation(`${what}: StoreError ${error.reason}, expected ${reason}`)
        const renderings: Array<[string, string]> = [
          ["its message", String(error.message)],
          ["String(error)", String(error)],
          ["JSON.stringify(error)", safeStringify(error)],
          ["Cause.pretty", Cause.pretty(exit.cause, { renderErrorCause: true })]
        ]
        for (const [name, text] of renderings) {
          if (leak(text)) {
            return violation(`${what}: ${name} of the ${reason} error holds a token, an id or session data`)
          }
        }
        return Effect.succeed(error)
      }),
    expectNone: (what, id) =>
      Effect.flatMap(store.load(id), (found) => ensure(Option.isNone(found), `${what}: load found a record`)),
    expectRecord: (what, expected) =>
      Effect.flatMap(store.load(expected.id), (found) =>
        Option.isNone(found)
          ? violation(`${what}: load found nothing`)
          : expectSame(what, found.value, expected))
  }
}

const check = (
  name: string,
  rule: string,
  body: (ctx: Ctx) => Effect.Effect<void, unknown, SessionStore.SessionStore | SessionStore.ExpiredDeletion>,
  options?: { readonly requiresExpiredDeletion?: boolean }
): ContractCheck => ({
  name,
  rule,
  ...(options?.requiresExpiredDeletion === true ? { requiresExpiredDeletion: true } : {}),
  run: Effect.flatMap(SessionStore.SessionStore, (store) => {
    const secrets: Array<string> = []
    const ids: Array<SessionId.SessionId> = []
    return withTimeTravel((travel) => body(makeCtx(store, travel, secrets, ids))).pipe(
      Effect.ensuring(
        Effect.forEach(ids, (id) => Effect.catchAllCause(store.delete(id), () => Effect.void), { discard: true })
      )
    )
  })
})

/** Runs `effects` all at once and splits the outcomes. */
const race = <A>(effects: ReadonlyArray<Effect.Effect<A, unknown>>) =>
  Effect.map(
    Effect.all(effects.map((e) => Effect.exit(e)), { concurrency: "unbounded" }),
    (exits) => ({
      wins: exits.filter(Exit.isSuccess).map((e) => e.value),
      losses: exits.filter(Exit.isFailure)
    })
  )

/** The `StoreError` reason an exit failed with, `"success"`, or `"not a StoreError"`. */
export const reasonOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && isStoreErrorLike(failure.value) ? failure.value.reason : "not a StoreError"
}

/** Data whose JSON is exactly `bytes` UTF-8 bytes, with multi-byte characters and a marker. */
const dataOfBytes = (bytes: number, marker: string): Either.Either<SessionData.SessionData, string> => {
  const overhead = Buffer.byteLength(JSON.stringify({ pad: marker }), "utf8")
  let room = bytes - overhead
  if (room < 0) return Either.left(`the cap of ${bytes} bytes is too small for the size checks`)
  const unit = "\u{1F600}\u00e9\u20aca" // 4 + 2 + 3 + 1 bytes
  const units = Math.floor(room / 10)
  room -= units * 10
  const pad = marker + unit.repeat(units) + "x".repeat(room)
  const data = SessionData.fromEntries([["pad", pad]])
  const actual = Buffer.byteLength(JSON.stringify(data), "utf8")
  return actual === bytes ? Either.right(data) : Either.left(`built ${actual} bytes instead of ${bytes}`)
}

const maxDataBytes = Effect.map(ContractSettings, (s) => s.maxDataBytes)

const nested = (marker: string): SessionData.SessionData => {
  let deep: SessionData.JsonValue = { leaf: marker }
  for (let i = 0; i < 20; i++) deep = i % 2 === 0 ? { i, next: deep } : [i, deep]
  return SessionData.fromEntries([
    ["user", { id: 42, name: marker, roles: ["admin", "editor"], profile: { age: 36, active: true, manager: null } }],
    ["deep", deep],
    ["numbers", [
      0,
      -1,
      1.5,
      -2.25e-7,
      1e21,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      1.7976931348623157e308
    ]],
    ["flags", [true, false, null]],
    ["empty", { object: {}, array: [], string: "" }],
    ["escapes", "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u0007 del \u007f"]
  ])
}

const unicode = (marker: string): SessionData.SessionData =>
  SessionData.fromEntries([
    ["emoji", `${marker} \u{1F600}\u{1F389} family \u{1F469}\u200d\u{1F469}\u200d\u{1F467} flag \u{1F1EB}\u{1F1F7}`],
    ["astral", "\u{1D518}\u{1D52B}\u{1D526}\u{1D520}\u{1D52C}\u{1D521}\u{1D522} \u{10348} \u{20BB7}"],
    ["rtl", "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u200f mixed \u202eabc\u202c"],
    ["combining", "e\u0301 n\u0303 a\u030a\u0323 Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f"],
    ["separators", "line\u2028para\u2029 bom \ufeff nbsp \u00a0 zwsp \u200b"],
    ["\u043a\u043b\u044e\u0447 \u{1F511} \u05de\u05e4\u05ea\u05d7", "unicode key"],
    ["cjk", "\u65e5\u672c\u8a9e \u4e2d\u6587 \ud55c\uad6d\uc5b4"]
  ])

const refusedData = (marker: string, cap: number): ReadonlyArray<readonly [string, unknown]> => [
  ["\\u0000 in a value", { note: `${marker}\u0000${marker}` }],
  ["\\u0000 in a key", { [`${marker}\u0000`]: 1 }],
  ["a lone high surrogate", { note: `${marker}\ud800` }],
  ["a lone low surrogate", { nested: [{ note: `\udc00${marker}` }] }],
  ["a lone surrogate in a key", { [`${marker}\udbff`]: 1 }],
  ["NaN", { n: Number.NaN, note: marker }],
  ["Infinity", { n: Number.POSITIVE_INFINITY, note: marker }],
  ["a value that is not JSON", { n: undefined, note: marker }],
  ["data over the cap", { note: marker + "y".repeat(cap) }]
]

const encodeChecks: ReadonlyArray<ContractCheck> = [
  check(
    "encode: refused data fails create with Encode and writes nothing",
    "encode-refused",
    (ctx) =>
      Effect.gen(function*() {
        const cap = yield* maxDataBytes
        for (const [what, data] of refusedData(ctx.marker(), cap)) {
          const record = yield* ctx.record(data as SessionData.SessionData)
          yield* ctx.fails(`create with ${what}`, ctx.store.create(record), "Encode")
          yield* ctx.expectNone(`after create with ${what} was refused`, record.id)
        }
      })
  ),
  check(
    "encode: refused data fails save with Encode and leaves the stored record",
    "encode-refused",
    (ctx) =>
      Effect.gen(function*() {
        const cap = yield* maxDataBytes
        const stored = yield* ctx.store.create(yield* ctx.record(ctx.data()))
        for (const [what, data] of refusedData(ctx.marker(), cap)) {
          yield* ctx.fails(
            `save with ${what}`,
            ctx.store.save({ ...stored, data: data as SessionData.SessionData }),
            "Encode"
          )
          yield* ctx.expectRecord(`after save with ${what} was refused`, stored)
        }
      })
  ),
  check(
    "encode: data of exactly the cap in UTF-8 bytes round-trips, one byte more is refused",
    "size-cap",
    (ctx) =>
      Effect.gen(function*() {
        const cap = yield* maxDataBytes
        const atCap = dataOfBytes(cap, ctx.marker())
        const overCap = dataOfBytes(cap + 1, ctx.marker())
        if (Either.isLeft(atCap)) return yield* violation(atCap.left)
        if (Either.isLeft(overCap)) return yield* violation(overCap.left)
        const record = yield* ctx.record(atCap.right)
        yield* ctx.store.create(record)
        yield* ctx.expectRecord("load of data at the cap", record)
        const over = yield* ctx.record(overCap.right)
        yield* ctx.fails("create one byte over the cap", ctx.store.create(over), "Encode")
        yield* ctx.expectNone("after create over the cap was refused", over.id)
        yield* ctx.fails("save one byte over the cap", ctx.store.save({ ...record, data: overCap.right }), "Encode")
        yield* ctx.expectRecord("after save over the cap was refused", record)
        const saved = yield* ctx.store.save(record)
        yield* ctx.expectRecord("load after a save at the cap", saved)
      })
  )
]

/** Creates a record with `makeData`, loads it, saves new data, loads it again. */
const roundTrip = (name: string, makeData: (marker: string) => SessionData.SessionData): ContractCheck =>
  check(name, "round-trip", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(makeData(ctx.marker()))
      yield* ctx.store.create(record)
      yield* ctx.expectRecord("load after create", record)
      const saved = yield* ctx.store.save({ ...record, data: makeData(ctx.marker()) })
      yield* ctx.expectRecord("load after save", saved)
    }))

const roundTripChecks: ReadonlyArray<ContractCheck> = [
  roundTrip("round trip: nested data loads deep-equal", nested),
  roundTrip("round trip: unicode (emoji, astral, RTL, combining) loads deep-equal", unicode),
  check("round trip: empty data loads as an empty object", "round-trip", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(SessionData.empty())
      yield* ctx.store.create(record)
      yield* ctx.expectRecord("load after create", record)
    })),
  check("round trip: expiresAt is kept to the millisecond", "expires-at-exact", (ctx) =>
    Effect.gen(function*() {
      const now = yield* ctx.now
      const record = yield* ctx.record(SessionData.fromEntries([["n", 1]]), { lifetime: LONG + 789 })
      const created = yield* ctx.store.create(record)
      yield* ensure(created.expiresAt === record.expiresAt, "create returned another expiresAt")
      yield* ctx.expectRecord("load after create", record)
      const later = { ...record, expiresAt: now + 2 * LONG + 1 }
      const saved = yield* ctx.store.save(later)
      yield* ensure(saved.expiresAt === later.expiresAt, "save returned another expiresAt")
      yield* ctx.expectRecord("load after a save that moved expiresAt", saved)
    })),
  check(
    "round trip: __proto__ and constructor keys are plain data and pollute nothing",
    "proto-keys-are-data",
    (ctx) =>
      Effect.gen(function*() {
        const m = ctx.marker()
        const data = JSON.parse(
          `{"__proto__":{"polluted":"${m}","isAdmin":true},"constructor":{"prototype":{"polluted":"${m}"}},` +
            `"toString":"${m}","hasOwnProperty":1,"nested":{"__proto__":{"polluted":"${m}"}}}`
        ) as SessionData.SessionData
        const record = yield* ctx.record(SessionData.fromEntries(Object.entries(data)))
        yield* ctx.store.create(record)
        const found = yield* ctx.store.load(record.id)
        if (Option.isNone(found)) return yield* violation("load found nothing")
        const loaded = found.value.data as Record<string, unknown>
        yield* ensure(
          Object.prototype.hasOwnProperty.call(loaded, "__proto__"),
          "the __proto__ key was not kept as data"
        )
        yield* ensure(
          Object.prototype.hasOwnProperty.call(loaded, "constructor"),
          "the constructor key was not kept as data"
        )
        yield* ensure(SessionData.equals(loaded, record.data), "the data differs")
        const probe: Record<string, unknown> = {}
        yield* ensure(probe.polluted === undefined && probe.isAdmin === undefined, "Object.prototype was polluted")
        yield* ensure(
          (loaded as { isAdmin?: unknown }).isAdmin === undefined,
          "the loaded data inherits the __proto__ value"
        )
      })
  )
]

const createChecks: ReadonlyArray<ContractCheck> = [
  check("create: returns the record as given, version 1", "create-returns-record", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(ctx.data())
      const created = yield* ctx.store.create(record)
      yield* expectSame("the record create returned", created, record)
      yield* ctx.expectRecord("load after create", record)
    })),
  check(
    "create: collision fails with Collision and leaves the live record untouched",
    "create-never-overwrites",
    (ctx) =>
      Effect.gen(function*() {
        const original = yield* ctx.record(ctx.data())
        yield* ctx.store.create(original)
        const intruder = yield* ctx.record(ctx.data(), {
          id: original.id,
          lifetime: 2 * LONG
        })
        yield* ctx.fails("create over a live record", ctx.store.create(intruder), "Collision")
        yield* ctx.expectRecord("after the collision", original)
        const saved = yield* ctx.store.save(original)
        yield* ctx.fails("create over a saved live record", ctx.store.create(intruder), "Collision")
        yield* ctx.expectRecord("after the second collision", saved)
      })
  ),
  check("create: an expired record may be replaced", "create-replaces-expired", (ctx) =>
    Effect.gen(function*() {
      const old = yield* ctx.record(ctx.data(), { lifetime: SHORT })
      yield* ctx.store.create(old)
      yield* ctx.advance(SHORT)
      const fresh = yield* ctx.record(ctx.data(), { id: old.id })
      const created = yield* ctx.store.create(fresh)
      yield* expectSame("the record create returned", created, fresh)
      yield* ctx.expectRecord("load after replacing an expired record", fresh)
    })),
  check(
    `create: ${RACERS} racing creates of a fresh id give exactly one success`,
    "create-is-atomic",
    (ctx) =>
      Effect.gen(function*() {
        const id = ctx.newId()
        const records = yield* Effect.forEach(
          Array.from({ length: RACERS }, (_, i) => SessionData.fromEntries([["racer", i]])),
          (data) => ctx.record(data, { id })
        )
        const { losses, wins } = yield* race(records.map((r) => ctx.store.create(r)))
        yield* ensure(wins.length === 1, `${wins.length} creates succeeded, expected exactly 1`)
        yield* ensure(losses.every((e) => reasonOf(e) === "Collision"), "a losing create did not fail with Collision")
        yield* ctx.expectRecord("load after the race", wins[0])
      })
  ),
  check(
    `create: ${RACERS} racing creates over an expired record give exactly one success`,
    "create-is-atomic",
    (ctx) =>
      Effect.gen(function*() {
        const old = yield* ctx.record(ctx.data(), { lifetime: SHORT })
        yield* ctx.store.create(old)
        yield* ctx.advance(SHORT + 1)
        const records = yield* Effect.forEach(
          Array.from({ length: RACERS }, (_, i) => SessionData.fromEntries([["racer", i]])),
          (data) => ctx.record(data, { id: old.id })
        )
        const { losses, wins } = yield* race(records.map((r) => ctx.store.create(r)))
        yield* ensure(wins.length === 1, `${wins.length} creates succeeded, expected exactly 1`)
        yield* ensure(losses.every((e) => reasonOf(e) === "Collision"), "a losing create did not fail with Collision")
        yield* ctx.expectRecord("load after the race", wins[0])
      })
  )
]

const saveChecks: ReadonlyArray<ContractCheck> = [
  check("save: returns version + 1 and a later load shows it", "save-bumps-version", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(SessionData.fromEntries([["n", 1]]))
      yield* ctx.store.create(record)
      const next = { ...record, data: SessionData.fromEntries([["n", 2], ["note", ctx.marker()]]) }
      const saved = yield* ctx.store.save(next)
      yield* expectSame("the record save returned", saved, { ...next, version: 2 })
      yield* ctx.expectRecord("load after the first save", saved)
      const again = yield* ctx.store.save({ ...saved, data: SessionData.fromEntries([["n", 3]]) })
      yield* ensure(again.version === 3, `the second save returned version ${again.version}, expected 3`)
      yield* ctx.expectRecord("load after the second save", again)
    })),
  check(
    "save: a stale version fails with Conflict and changes nothing",
    "save-is-cas",
    (ctx) =>
      Effect.gen(function*() {
        const record = yield* ctx.record(ctx.data())
        yield* ctx.store.create(record)
        const saved = yield* ctx.store.save({ ...record, data: ctx.data() })
        const stale = { ...record, data: ctx.data(), expiresAt: record.expiresAt + LONG }
        yield* ctx.fails("save from a stale version", ctx.store.save(stale), "Conflict")
        yield* ctx.expectRecord("after the stale save", saved)
        yield* ctx.fails(
          "save from a version not reached yet",
          ctx.store.save({ ...stale, version: saved.version + 5 }),
          "Conflict"
        )
        yield* ctx.expectRecord("after the save from the future", saved)
      })
  ),
  check(
    `save: ${RACERS} concurrent saves from one version give exactly one success`,
    "save-is-atomic",
    (ctx) =>
      Effect.gen(function*() {
        const record = yield* ctx.record(SessionData.fromEntries([["racer", -1]]))
        yield* ctx.store.create(record)
        const { losses, wins } = yield* race(
          Array.from(
            { length: RACERS },
            (_, i) => ctx.store.save({ ...record, data: SessionData.fromEntries([["racer", i]]) })
          )
        )
        yield* ensure(wins.length === 1, `${wins.length} saves succeeded, expected exactly 1`)
        yield* ensure(losses.every((e) => reasonOf(e) === "Conflict"), "a losing save did not fail with Conflict")
        yield* ensure(wins[0].version === record.version + 1, `the winning save returned version ${wins[0].version}`)
        yield* ctx.expectRecord("load after the race", wins[0])
      })
  ),
  check("save: a deleted session is Gone and stays gone", "save-never-inserts", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(ctx.data())
      yield* ctx.store.create(record)
      yield* ctx.store.delete(record.id)
      yield* ctx.fails("save after delete", ctx.store.save(record), "Gone")
      yield* ctx.expectNone("after the save of a deleted session", record.id)
      const never = yield* ctx.record(ctx.data())
      yield* ctx.fails("save of a never-created id", ctx.store.save(never), "Gone")
      yield* ctx.expectNone("after the save of a never-created id", never.id)
      const recreated = yield* ctx.store.create(record)
      yield* ensure(recreated.version === 1, "create after the refused save did not start at version 1")
      yield* ctx.expectRecord("load after re-creating", record)
    })),
  check("save: an expired session is Gone and stays gone", "save-never-inserts", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(ctx.data(), { lifetime: SHORT })
      yield* ctx.store.create(record)
      yield* ctx.advance(SHORT)
      const extended = yield* ctx.record(ctx.data(), { id: record.id })
      yield* ctx.fails("save of an expired session", ctx.store.save(extended), "Gone")
      yield* ctx.expectNone("after the save of an expired session", record.id)
      yield* ctx.store.create(extended)
      yield* ctx.expectRecord("load after re-creating", extended)
    }))
]

const loadDeleteChecks: ReadonlyArray<ContractCheck> = [
  check(
    "load: an unknown id is none",
    "load-missing-is-none",
    (ctx) => ctx.expectNone("load of an unknown id", ctx.newId())
  ),
  check("load: a record is none from the instant it expires", "load-hides-expired", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(ctx.data(), { lifetime: SHORT })
      yield* ctx.store.create(record)
      yield* ctx.travelTo(record.expiresAt - SHORT / 2)
      yield* ctx.expectRecord("load before expiry", record)
      yield* ctx.travelTo(record.expiresAt)
      yield* ctx.expectNone("load at expiresAt", record.id)
      yield* ctx.advance(LONG)
      yield* ctx.expectNone("load long after expiry", record.id)
    })),
  check("delete: removes the record", "delete-removes", (ctx) =>
    Effect.gen(function*() {
      const record = yield* ctx.record(ctx.data())
      const other = yield* ctx.record(ctx.data())
      yield* ctx.store.create(record)
      yield* ctx.store.create(other)
      yield* ctx.store.delete(record.id)
      yield* ctx.expectNone("load after delete", record.id)
      yield* ctx.expectRecord("another session after delete", other)
    })),
  check(
    "delete: is idempotent (twice, never created, expired)",
    "delete-is-idempotent",
    (ctx) =>
      Effect.gen(function*() {
        const record = yield* ctx.record(ctx.data())
        yield* ctx.store.create(record)
        yield* ctx.store.delete(record.id)
        yield* ctx.store.delete(record.id)
        yield* ctx.store.delete(ctx.newId())
        const expiring = yield* ctx.record(ctx.data(), { lifetime: SHORT })
        yield* ctx.store.create(expiring)
        yield* ctx.advance(SHORT)
        yield* ctx.store.delete(expiring.id)
        yield* ctx.store.delete(expiring.id)
        yield* ctx.expectNone("load after deletes", record.id)
      })
  )
]

const errorChecks: ReadonlyArray<ContractCheck> = [
  check(
    "errors: Collision, Conflict, Gone and Encode carry no token, id or data",
    "errors-carry-no-secrets",
    (ctx) =>
      Effect.gen(function*() {
        const cap = yield* maxDataBytes
        const data = () => SessionData.fromEntries([[ctx.marker(), { value: ctx.marker(), list: [ctx.marker()] }]])
        const record = yield* ctx.record(data())
        yield* ctx.store.create(record)
        yield* ctx.fails("create over a live record", ctx.store.create({ ...record, data: data() }), "Collision")
        const saved = yield* ctx.store.save({ ...record, data: data() })
        yield* ctx.fails("save from a stale version", ctx.store.save({ ...record, data: data() }), "Conflict")
        const gone = yield* ctx.record(data())
        yield* ctx.fails("save of a missing session", ctx.store.save(gone), "Gone")
        for (const [what, bad] of refusedData(ctx.marker(), cap)) {
          yield* ctx.fails(
            `create with ${what}`,
            ctx.store.create({ ...gone, data: bad as SessionData.SessionData }),
            "Encode"
          )
          yield* ctx.fails(
            `save with ${what}`,
            ctx.store.save({ ...saved, data: bad as SessionData.SessionData }),
            "Encode"
          )
        }
      })
  )
]

const expiredDeletionChecks: ReadonlyArray<ContractCheck> = [
  check(
    "deleteExpired: removes the expired records and only those",
    "delete-expired-removes-only-expired",
    (ctx) =>
      Effect.gen(function*() {
        const deletion = yield* SessionStore.ExpiredDeletion
        const expiring = yield* Effect.forEach(
          Array.from({ length: 5 }, () => ctx.data()),
          (data) => Effect.flatMap(ctx.record(data, { lifetime: SHORT }), ctx.store.create)
        )
        const live = yield* Effect.forEach(
          Array.from({ length: 5 }, () => ctx.data()),
          (data) => Effect.flatMap(ctx.record(data), ctx.store.create)
        )
        yield* ctx.advance(SHORT + 1_000)
        const count = yield* deletion.deleteExpired({ batchSize: 2 })
        yield* ensure(count >= expiring.length, `deleteExpired returned ${count}, expected at least ${expiring.length}`)
        // Back at the original time the expired group would be live again if it were still stored.
        yield* ctx.reset
        for (const record of expiring) yield* ctx.expectNone("a record deleteExpired should have removed", record.id)
        for (const record of live) yield* ctx.expectRecord("a live record after deleteExpired", record)
      }),
    { requiresExpiredDeletion: true }
  )
]

/**
 * Every check of the store contract.
 *
 * @since 0.1.0
 */
export const checks: ReadonlyArray<ContractCheck> = [
  ...roundTripChecks,
  ...encodeChecks,
  ...createChecks,
  ...saveChecks,
  ...loadDeleteChecks,
  ...errorChecks,
  ...expiredDeletionChecks
]
