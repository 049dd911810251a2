/**
 * The contract logic of in-process stores (`MemoryStore`, `LruStore`) once: a `SessionStore.Backend` over
 * any table of JSON entries. The table only gets, puts and removes; create-or-`Collision`, the
 * compare-and-set `save` (`Conflict` / `Gone`, never an insert) and decoding on load live here.
 *
 * Each operation runs synchronously, so it is atomic with respect to every other fiber.
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as SessionData from "../SessionData.js"
import type * as SessionRecord from "../SessionRecord.js"
import type * as SessionStore from "../SessionStore.js"
import * as StoreError from "../StoreError.js"
import * as Binding from "./binding.js"

/**
 * What an in-process store offers besides the `SessionStore` contract (the `Service` of `MemoryStore` and
 * `LruStore`).
 *
 * @since 0.1.0
 */
export interface InProcessService {
  /** The `SessionStore` service of this store. */
  readonly store: SessionStore.Service
  /** `size` succeeds with the number of entries held, including expired ones not yet removed. */
  readonly size: Effect.Effect<number>
}

/**
 * `sizeOf(tag)` succeeds with the number of entries the in-process store under `tag` holds.
 *
 * @since 0.1.0
 */
export const sizeOf = <I, S extends InProcessService>(tag: Context.Tag<I, S>): Effect.Effect<number, never, I> =>
  Effect.flatMap(tag, (service) => service.size)

/**
 * One stored session: its data as JSON text (never the caller's object), its expiry and its version.
 *
 * @since 0.1.0
 */
export interface JsonEntry {
  readonly json: string
  readonly expiresAt: number
  readonly version: number
  /** The index key of the user the session is bound to (`binding.userKey`), for a store that keeps an index. */
  readonly user?: string | undefined
}

/**
 * What an in-process store implements; every method is synchronous and receives the `now` of the call.
 *
 * @since 0.1.0
 */
export interface EntryTable {
  /** The entry under `id`, expired or not, or `undefined`. */
  readonly get: (id: string, now: number) => JsonEntry | undefined
  /** Stores `entry` under `id`, replacing what is there. */
  readonly put: (id: string, entry: JsonEntry, now: number) => void
  /** Removes `id`; a missing id is fine. */
  readonly remove: (id: string, now: number) => void
}

/**
 * `makeEntryBackend(name, table)` is the `SessionStore.Backend` of an in-process store on `table`.
 *
 * @since 0.1.0
 */
export const makeEntryBackend = (
  name: string,
  table: EntryTable,
  options?: { readonly indexed?: boolean | undefined }
): SessionStore.Backend => {
  const indexed = options?.indexed === true
  const entry = (record: SessionRecord.SessionRecord, json: string, version: number): JsonEntry =>
    indexed
      ? { json, expiresAt: record.expiresAt, version, user: Binding.userKeyOf(record.data) }
      : { json, expiresAt: record.expiresAt, version }
  /** The live entry under `id` at `now`; an expired one is removed on the way. */
  const live = (id: string, now: number): JsonEntry | undefined => {
    const entry = table.get(id, now)
    if (entry === undefined || entry.expiresAt > now) return entry
    table.remove(id, now)
    return undefined
  }
  return {
    name,
    create: (record, json, now) =>
      Effect.suspend(() => {
        if (live(record.id, now) !== undefined) return Effect.fail(StoreError.make("Collision", "create"))
        table.put(record.id, entry(record, json, record.version), now)
        return Effect.succeed(record)
      }),
    save: (record, json, now) =>
      Effect.suspend(() => {
        const current = live(record.id, now)
        if (current === undefined) return Effect.fail(StoreError.make("Gone", "save"))
        if (current.version !== record.version) return Effect.fail(StoreError.make("Conflict", "save"))
        const version = current.version + 1
        table.put(record.id, entry(record, json, version), now)
        return Effect.succeed<SessionRecord.SessionRecord>({
          id: record.id,
          data: record.data,
          expiresAt: record.expiresAt,
          version
        })
      }),
    load: (id, now) =>
      Effect.suspend(() => {
        const entry = live(id, now)
        if (entry === undefined) return Effect.succeed(Option.none())
        const data = SessionData.decode(entry.json)
        return Either.isRight(data)
          ? Effect.succeed(Option.some({ id, data: data.right, expiresAt: entry.expiresAt, version: entry.version }))
          : Effect.fail(StoreError.rule("Decode", "load", data.left))
      }),
    delete: (id, now) =>
      Effect.sync(() => {
        table.remove(id, now)
      })
  }
}
