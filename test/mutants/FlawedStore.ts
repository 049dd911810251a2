/**
 * A Map store that keeps the contract unless told to break one part of it: the raw material of the
 * mutants. It implements the `SessionStore` service directly (not through `SessionStore.make`), so a flaw
 * can reach what `make` would otherwise guard (the data rules, the expiry filter on load).
 */
import { Clock, Context, Data, Effect, Either, Layer, Option } from "effect"
import { SessionData, type SessionId, type SessionRecord, SessionStore, StoreError } from "effect-sessions"

export interface Flaws {
  /** `create` replaces a live record. */
  readonly createOverwrites?: boolean
  /** `create` refuses an expired record too. */
  readonly createNeverReplacesExpired?: boolean
  /** `create` checks, yields to other fibers, then writes. */
  readonly createRacy?: boolean
  /** `create` returns the record without its data. */
  readonly createReturnsOther?: boolean
  /** `save` writes whatever the stored version. */
  readonly saveIgnoresVersion?: boolean
  /** `save` checks the version, yields to other fibers, then writes. */
  readonly saveRacy?: boolean
  /** `save` inserts when there is no live record. */
  readonly saveInserts?: boolean
  /** `save` keeps the version it was given. */
  readonly saveKeepsVersion?: boolean
  /** `load` returns expired records. */
  readonly loadReturnsExpired?: boolean
  /** `load` of a missing id fails. */
  readonly loadMissingFails?: boolean
  /** `load` rebuilds objects by assignment, so a `__proto__` key sets a prototype. */
  readonly loadAssigns?: boolean
  /** The JSON text goes through latin1, mangling everything beyond it. */
  readonly latin1?: boolean
  /** `expiresAt` is kept in whole seconds. */
  readonly expiresAtInSeconds?: boolean
  /** `delete` does nothing. */
  readonly deleteDoesNothing?: boolean
  /** `delete` of a missing id fails. */
  readonly deleteFailsWhenMissing?: boolean
  /** The data rules are not applied. */
  readonly encodeNotEnforced?: boolean
  /** Error messages name the id. */
  readonly errorsCarryId?: boolean
  /** `deleteExpired` removes every record. */
  readonly deleteExpiredRemovesLive?: boolean
  /** `deleteExpired` removes the expired records but returns 0. */
  readonly deleteExpiredMiscounts?: boolean
}

interface Entry {
  readonly json: string
  readonly expiresAt: number
  readonly version: number
}

/** A `StoreError` look-alike whose message names the id. */
class LeakyStoreError extends Data.TaggedError("StoreError")<{
  readonly reason: StoreError.Reason
  readonly method: StoreError.Method
  readonly message: string
}> {}

const assign = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map(assign)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) out[key] = assign((value as Record<string, unknown>)[key])
  return out
}

export const make = (flaws: Flaws = {}) =>
  Effect.sync(() => {
    const entries = new Map<string, Entry>()
    const fail = (reason: StoreError.Reason, method: StoreError.Method, id: SessionId.SessionId) =>
      Effect.fail(
        flaws.errorsCarryId === true
          // a look-alike, typed as the real thing to fit the service
          ? new LeakyStoreError({
            reason,
            method,
            message: `session store ${method} failed for ${id}: ${reason}`
          }) as unknown as StoreError.StoreError
          : StoreError.make(reason, method)
      )
    const encode = (
      record: SessionRecord.SessionRecord,
      method: StoreError.Method
    ): Effect.Effect<string, StoreError.StoreError> =>
      flaws.encodeNotEnforced === true
        ? Effect.succeed(JSON.stringify(record.data))
        : SessionStore.encodeRecord(record, method)
    const entryOf = (record: SessionRecord.SessionRecord, json: string, version: number): Entry => ({
      json: flaws.latin1 === true ? Buffer.from(json, "utf8").toString("latin1") : json,
      expiresAt: flaws.expiresAtInSeconds === true ? Math.floor(record.expiresAt / 1000) * 1000 : record.expiresAt,
      version
    })
    const live = (id: string, now: number) => {
      const entry = entries.get(id)
      return entry !== undefined && entry.expiresAt > now ? entry : undefined
    }
    const pause = (racy: boolean | undefined) => racy === true ? Effect.yieldNow() : Effect.void

    const store = SessionStore.SessionStore.of({
      create: (record) =>
        Effect.gen(function*() {
          const json = yield* encode(record, "create")
          const now = yield* Clock.currentTimeMillis
          const taken = flaws.createNeverReplacesExpired === true
            ? entries.has(record.id)
            : live(record.id, now) !== undefined
          yield* pause(flaws.createRacy)
          if (taken && flaws.createOverwrites !== true) return yield* fail("Collision", "create", record.id)
          entries.set(record.id, entryOf(record, json, record.version))
          return flaws.createReturnsOther === true ? { ...record, data: SessionData.empty() } : record
        }),
      save: (record) =>
        Effect.gen(function*() {
          const json = yield* encode(record, "save")
          const now = yield* Clock.currentTimeMillis
          const entry = live(record.id, now)
          yield* pause(flaws.saveRacy)
          if (entry === undefined && flaws.saveInserts !== true) return yield* fail("Gone", "save", record.id)
          if (entry !== undefined && entry.version !== record.version && flaws.saveIgnoresVersion !== true) {
            return yield* fail("Conflict", "save", record.id)
          }
          const version = flaws.saveKeepsVersion === true ? record.version : (entry?.version ?? record.version) + 1
          entries.set(record.id, entryOf(record, json, version))
          return { ...record, version }
        }),
      load: (id) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const entry = flaws.loadReturnsExpired === true ? entries.get(id) : live(id, now)
          if (entry === undefined) {
            return flaws.loadMissingFails === true ? yield* fail("Unavailable", "load", id) : Option.none()
          }
          const decoded = SessionData.decode(entry.json)
          if (Either.isLeft(decoded)) return yield* fail("Decode", "load", id)
          const data = flaws.loadAssigns === true
            ? assign(JSON.parse(entry.json)) as SessionData.SessionData
            : decoded.right
          return Option.some({ id, data, expiresAt: entry.expiresAt, version: entry.version })
        }),
      delete: (id) =>
        Effect.suspend(() => {
          if (flaws.deleteDoesNothing === true) return Effect.void
          if (!entries.delete(id) && flaws.deleteFailsWhenMissing === true) return fail("Gone", "delete", id)
          return Effect.void
        })
    })

    const expiredDeletion = SessionStore.ExpiredDeletion.of({
      deleteExpired: () =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          let removed = 0
          for (const [id, entry] of entries) {
            if (entry.expiresAt <= now || flaws.deleteExpiredRemovesLive === true) {
              entries.delete(id)
              removed++
            }
          }
          return flaws.deleteExpiredMiscounts === true ? 0 : removed
        })
    })

    return Context.make(SessionStore.SessionStore, store).pipe(
      Context.add(SessionStore.ExpiredDeletion, expiredDeletion)
    )
  })

export const layer = (flaws: Flaws = {}): Layer.Layer<SessionStore.SessionStore | SessionStore.ExpiredDeletion> =>
  Layer.effectContext(make(flaws))
