/**
 * A Map store that keeps the contract unless told to break one part of it: the raw material of the
 * mutants. It implements the `SessionStore` service directly (not through `SessionStore.make`), so a flaw
 * can reach what `make` would otherwise guard (the data rules, the expiry filter on load).
 */
import { Clock, Context, Data, Effect, Either, Layer, Option } from "effect"
import {
  SessionData,
  type SessionId,
  SessionIndex,
  type SessionRecord,
  SessionStore,
  StoreError
} from "effect-sessions"
import * as Binding from "../../src/internal/binding.js"
import { META_KEY } from "../../src/Session.js"

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
  /** The index's `list` returns every indexed session, whoever's it is. */
  readonly listIgnoresUser?: boolean
  /** The index's entries carry no device details. */
  readonly listDropsDevice?: boolean
  /** The index files a session at `create` only; a `save` that rebinds or unbinds is not refiled. */
  readonly indexNotRefiledOnSave?: boolean
  /** `list` includes expired sessions. */
  readonly listIncludesExpired?: boolean
  /** The index reads the binding of a moved session's tombstone as live. */
  readonly indexFilesTombstones?: boolean
  /** `revoke` counts the expired sessions it removes. */
  readonly revokeCountsExpired?: boolean
  /** `revoke` ignores `except`. */
  readonly revokeIgnoresExcept?: boolean
  /** `revoke` notes each session's version, yields, then deletes only those still at that version. */
  readonly revokeByVersion?: boolean
  /** `create` files the index first, yields, then writes; `revoke` deletes what it listed, then the user's set. */
  readonly indexFiledFirstAndRevokeClearsSet?: boolean
}

interface Entry {
  readonly json: string
  readonly expiresAt: number
  readonly version: number
  readonly user: string | undefined
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
    const byUser = new Map<string, Set<string>>()
    /** The user a record is filed under: `Binding.userOf`, or, flawed, a tombstone's old binding too. */
    const userOf = (data: SessionData.SessionData): string | undefined => {
      if (flaws.indexFilesTombstones !== true) return Binding.userOf(data)
      const meta = data[META_KEY] as { user?: { id?: unknown } } | undefined
      return typeof meta?.user?.id === "string" ? meta.user.id : undefined
    }
    const file = (id: string, user: string | undefined) => {
      if (user === undefined) return
      const ids = byUser.get(user) ?? new Set()
      ids.add(id)
      byUser.set(user, ids)
    }
    const unfile = (id: string, user: string | undefined) => {
      if (user !== undefined) byUser.get(user)?.delete(id)
    }
    const put = (id: string, entry: Entry, refile: boolean) => {
      const old = entries.get(id)
      entries.set(id, entry)
      if (!refile) return
      if (old !== undefined) unfile(id, old.user)
      file(id, entry.user)
    }
    const remove = (id: string): boolean => {
      const old = entries.get(id)
      if (old !== undefined) unfile(id, old.user)
      return entries.delete(id)
    }
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
      version,
      user: userOf(record.data)
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
          const entry = entryOf(record, json, record.version)
          if (flaws.indexFiledFirstAndRevokeClearsSet === true) {
            file(record.id, entry.user)
            yield* Effect.yieldNow()
            // checked again, so that the create stays atomic: only the index is out of step
            if (live(record.id, now) !== undefined) return yield* fail("Collision", "create", record.id)
            entries.set(record.id, entry)
          } else {
            put(record.id, entry, true)
          }
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
          put(record.id, entryOf(record, json, version), flaws.indexNotRefiledOnSave !== true)
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
          if (!remove(id) && flaws.deleteFailsWhenMissing === true) return fail("Gone", "delete", id)
          return Effect.void
        })
    })

    const expiredDeletion = SessionStore.ExpiredDeletion.of({
      deleteExpired: () =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          let removed = 0
          for (const [id, entry] of entries) {
            if (entry.expiresAt <= now || flaws.deleteExpiredRemovesLive === true) {
              remove(id)
              removed++
            }
          }
          return flaws.deleteExpiredMiscounts === true ? 0 : removed
        })
    })

    const index = SessionIndex.make({
      list: (userId) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const ids = flaws.listIgnoresUser === true
            ? Array.from(byUser.values()).flatMap((set) => Array.from(set))
            : Array.from(byUser.get(userId) ?? [])
          const out: Array<SessionIndex.Entry> = []
          for (const id of ids) {
            const entry = entries.get(id)
            if (entry === undefined || (entry.expiresAt <= now && flaws.listIncludesExpired !== true)) continue
            const data = SessionData.decode(entry.json)
            if (Either.isLeft(data)) continue
            const bound = entry.user ?? userId
            const listed = Binding.entryOf(
              id as SessionId.SessionId,
              stripMoved(data.right, flaws),
              entry.expiresAt,
              bound
            )
            if (listed !== undefined) out.push(flaws.listDropsDevice === true ? { ...listed, device: {} } : listed)
          }
          return out.sort(Binding.byRecency)
        }),
      revokeIds: (userId, options) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const ids = Array.from(byUser.get(userId) ?? [])
            .filter((id) => flaws.revokeIgnoresExcept === true || id !== options?.except)
          const versions = new Map(ids.map((id) => [id, entries.get(id)?.version]))
          // a window between listing and deleting, as a store that talks to a server has
          if (flaws.revokeByVersion === true || flaws.indexFiledFirstAndRevokeClearsSet === true) {
            for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
          }
          const revoked: Array<SessionId.SessionId> = []
          for (const id of ids) {
            const entry = entries.get(id)
            if (entry === undefined) continue
            if (flaws.revokeByVersion === true && entry.version !== versions.get(id)) continue
            if (entry.expiresAt > now || flaws.revokeCountsExpired === true) revoked.push(id as SessionId.SessionId)
            remove(id)
          }
          if (flaws.indexFiledFirstAndRevokeClearsSet === true) byUser.delete(userId)
          return revoked
        })
    })

    return Context.make(SessionStore.SessionStore, store).pipe(
      Context.add(SessionStore.ExpiredDeletion, expiredDeletion),
      Context.add(SessionIndex.SessionIndex, index)
    )
  })

/** For the flaw that files tombstones: their entry as if the binding were live. */
const stripMoved = (data: SessionData.SessionData, flaws: Flaws): SessionData.SessionData => {
  if (flaws.indexFilesTombstones !== true) return data
  const meta = data[META_KEY]
  if (typeof meta !== "object" || meta === null || Array.isArray(meta) || !("movedAt" in meta)) return data
  const { movedAt: _, ...rest } = meta as Record<string, SessionData.JsonValue>
  return { ...data, [META_KEY]: rest }
}

export const layer = (
  flaws: Flaws = {}
): Layer.Layer<SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex> =>
  Layer.effectContext(make(flaws))
