/**
 * Test support for SqlStore: a client per dialect against the machine's real servers (PostgreSQL, MariaDB)
 * or a SQLite file, unique table names per run (dropped afterwards), a shifted Clock, and a span recorder.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Effect, Either, Exit, Layer, Option, type Scope, String as Str, Tracer } from "effect"
import type { SessionId } from "effect-sessions"
import { SessionData, type SessionRecord, type StoreError } from "effect-sessions"
import * as SqlStore from "effect-sessions/SqlStore"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { env, freshId, shiftClock } from "./services.js"

export type Dialect = "pg" | "mysql" | "sqlite"

export interface Target {
  /** Shown in test names. */
  readonly label: string
  readonly dialect: Dialect
  /** The server to probe before running (none for SQLite). */
  readonly server: { readonly host: string; readonly port: number } | undefined
  /** A new client with its own pool (SQLite: its own connection to the same file). */
  readonly client: Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope>
  /** The same, renaming result columns snake_case -> camelCase and query names back, as many apps configure it. */
  readonly transformingClient: Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope>
  /** A new client whose pool has `maxConnections` connections (SQLite: the same as `client`). */
  readonly clientWithPool: (maxConnections: number) => Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope>
}

const transforms = { transformResultNames: Str.snakeToCamel, transformQueryNames: Str.camelToSnake }

/** Pools large enough for real parallelism in the concurrency tests. */
const MAX_CONNECTIONS = 12

export const pgConfig: PgClient.PgClientConfig = {
  host: env.pgHost,
  port: env.pgPort,
  username: env.pgUser,
  database: env.pgDatabase,
  maxConnections: MAX_CONNECTIONS
}

export const postgres: Target = {
  label: "PostgreSQL",
  dialect: "pg",
  server: { host: env.pgHost, port: env.pgPort },
  client: Effect.provide(PgClient.make(pgConfig), Reactivity.layer),
  transformingClient: Effect.provide(PgClient.make({ ...pgConfig, ...transforms }), Reactivity.layer),
  clientWithPool: (maxConnections) => Effect.provide(PgClient.make({ ...pgConfig, maxConnections }), Reactivity.layer)
}

const mysqlConfig: MysqlClient.MysqlClientConfig = {
  host: env.mysqlHost,
  port: env.mysqlPort,
  username: env.mysqlUser,
  database: env.mysqlDatabase,
  maxConnections: MAX_CONNECTIONS
}

export const mariadb: Target = {
  label: "MySQL/MariaDB",
  dialect: "mysql",
  server: { host: env.mysqlHost, port: env.mysqlPort },
  client: Effect.provide(MysqlClient.make(mysqlConfig), Reactivity.layer),
  transformingClient: Effect.provide(MysqlClient.make({ ...mysqlConfig, ...transforms }), Reactivity.layer),
  clientWithPool: (maxConnections) =>
    Effect.provide(MysqlClient.make({ ...mysqlConfig, maxConnections }), Reactivity.layer)
}

/** A SQLite target on `filename`: every client opens its own connection to it (WAL). */
export const sqlite = (filename: string, label = "SQLite"): Target => ({
  label,
  dialect: "sqlite",
  server: undefined,
  client: Effect.provide(SqliteClient.make({ filename }), Reactivity.layer),
  transformingClient: Effect.provide(SqliteClient.make({ filename, ...transforms }), Reactivity.layer),
  clientWithPool: () => Effect.provide(SqliteClient.make({ filename }), Reactivity.layer)
})

const tempDirs: Array<string> = []
// vitest ends its workers without an "exit" event: remove the directories after each test file
afterAll(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh temporary directory's SQLite file path; the directory is removed after the test file. */
export const tempSqliteFile = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-sql-"))
  tempDirs.push(dir)
  return path.join(dir, "sessions.db")
}

/** A table name no other test run uses. */
export const uniqueTable = (label = "t"): string => `es_test_${label}_${randomBytes(5).toString("hex")}`

/** Runs `self` with the SQL client provided. */
export const withClient = <A, E, R>(
  client: SqlClient.SqlClient,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<R, SqlClient.SqlClient>> => Effect.provideService(self, SqlClient.SqlClient, client)

/** Drops the table (quoted for the dialect); errors are ignored. */
export const dropTable = (client: SqlClient.SqlClient, dialect: Dialect, table: string): Effect.Effect<void> =>
  Effect.ignore(client.unsafe(`DROP TABLE IF EXISTS ${quote(dialect, table)}`).withoutTransform)

export const quote = (dialect: Dialect, name: string): string => dialect === "mysql" ? `\`${name}\`` : `"${name}"`

/** A client from `target`, the table dropped when the scope closes. */
export const clientWithTable = (
  target: Target,
  table: string
): Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope> =>
  Effect.tap(target.client, (client) => Effect.addFinalizer(() => dropTable(client, target.dialect, table)))

/** `SqlStore.layer` on a new client of `target`, on `table`, dropped when the layer closes. */
export const storeLayer = (target: Target, table: string, options?: SqlStore.Options) =>
  Layer.unwrapScoped(
    Effect.map(
      clientWithTable(target, table),
      (client) => SqlStore.layer({ ...options, table }).pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, client)))
    )
  )

/** Runs `self` under a `Clock` `ms` ahead of the current one. */
export const shifted = (ms: number) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.clock, (base) => Effect.withClock(self, shiftClock(base, ms)))

export interface RecordedSpan {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
}

/** Runs `self` with a tracer that records every span (name and attributes) it opens. */
export const recordingSpans = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<readonly [A, ReadonlyArray<RecordedSpan>], E, R> =>
  Effect.flatMap(Effect.tracer, (native) => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (...args) => {
        const span = native.span(...args)
        spans.push(span)
        return span
      },
      context: (f, fiber) => native.context(f, fiber)
    })
    return Effect.map(
      Effect.withTracer(self, tracer),
      (a) => [a, spans.map((s) => ({ name: s.name, attributes: s.attributes }))] as const
    )
  })

// ---------------------------------------------------------------------------------------------------------
// The dialect tests every SQL target runs (test/SqlStore.<dialect>.test.ts call this).

export { freshId }

/** A new record expiring a minute after `now`, with `entries` as its data. */
export const record = (
  id: SessionId.SessionId,
  now: number,
  entries: ReadonlyArray<readonly [string, SessionData.JsonValue]> = []
) =>
  ({
    id,
    data: SessionData.fromEntries(entries),
    expiresAt: now + 60_000,
    version: 1
  }) satisfies SessionRecord.SessionRecord

/** The failure of an exit as a `StoreError`, or `undefined` for a success (a defect fails the test). */
const storeError = <A>(exit: Exit.Exit<A, StoreError.StoreError>): StoreError.StoreError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a StoreError, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const countReasons = (exits: ReadonlyArray<Exit.Exit<unknown, StoreError.StoreError>>) => {
  const counts: Record<string, number> = { success: 0 }
  for (const exit of exits) {
    const error = storeError(exit)
    const key = error === undefined ? "success" : error.reason
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

/** Builds a store on `client` (migrating `table`). */
const storeOn = (client: SqlClient.SqlClient, table: string, options?: SqlStore.Options) =>
  withClient(client, SqlStore.make({ ...options, table }))

/** `INSERT ... SELECT` of `count` generated rows in one statement: ids `${prefix}${n}` for n in [from, from + count). */
const bulkInsert = (
  client: SqlClient.SqlClient,
  dialect: Dialect,
  table: string,
  prefix: string,
  from: number,
  count: number,
  expiresAt: number
) => {
  const digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
    "UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
  const n = "(a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d)"
  const id = dialect === "mysql" ? `CONCAT('${prefix}', ${n} + ${from})` : `'${prefix}' || (${n} + ${from})`
  return client.unsafe(
    `INSERT INTO ${quote(dialect, table)} (id, data, expires_at, version) ` +
      `SELECT ${id}, '{"k":1}', ${expiresAt}, 1 FROM ${digits} a, ${digits} b, ${digits} c, ${digits} e, ${digits} f ` +
      `WHERE ${n} < ${count}`
  ).withoutTransform
}

export const insertRow = (
  client: SqlClient.SqlClient,
  dialect: Dialect,
  table: string,
  row: { readonly id: string; readonly data: string; readonly expiresAt: number; readonly version: number }
) => {
  const p = dialect === "pg" ? ["$1", "$2", "$3", "$4"] : ["?", "?", "?", "?"]
  return client.unsafe(
    `INSERT INTO ${quote(dialect, table)} (id, data, expires_at, version) VALUES (${p.join(", ")})`,
    [row.id, row.data, row.expiresAt, row.version]
  ).withoutTransform
}

/**
 * `sqlStoreSuite(target)` registers the SqlStore tests of one dialect: atomicity under concurrency (across two
 * clients, so two pools or two SQLite connections), CAS, migration, identifier checks, corrupt rows, cleanup.
 */
export const sqlStoreSuite = (target: Target): void => {
  const { dialect } = target

  /** Two stores on one new table, each on its own client (pool, or SQLite connection to the same file). */
  const twoStores = (label: string) =>
    Effect.gen(function*() {
      const table = uniqueTable(label)
      const a = yield* clientWithTable(target, table)
      const b = yield* target.client
      return [(yield* storeOn(a, table)).store, (yield* storeOn(b, table, { migrate: false })).store] as const
    })

  describe(`SqlStore on ${target.label}`, () => {
    it.live(
      "1,000 concurrent creates of one new id: exactly one succeeds, every other is a Collision",
      () =>
        Effect.gen(function*() {
          const [storeA, storeB] = yield* twoStores("create")
          const now = yield* Clock.currentTimeMillis
          const id = freshId()
          const exits = yield* Effect.all(
            Array.from(
              { length: 1_000 },
              (_, i) => Effect.exit((i % 2 === 0 ? storeA : storeB).create(record(id, now, [["writer", i]])))
            ),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(countReasons(exits), { success: 1, Collision: 999 })
          const winner = exits.findIndex(Exit.isSuccess)
          const loaded = yield* storeA.load(id)
          assert.isTrue(Option.isSome(loaded))
          assert.strictEqual(Option.getOrThrow(loaded).data.writer, winner)
          // No failure carries the id (MySQL's duplicate-key message names the key).
          for (const exit of exits) {
            const error = storeError(exit)
            if (error !== undefined) {
              assert.notInclude(JSON.stringify(error) + String(error) + error.message, id)
            }
          }
        }).pipe(Effect.scoped),
      120_000
    )

    it.live(
      "100 concurrent creates of one expired id: exactly one replaces it, every other is a Collision",
      () =>
        Effect.gen(function*() {
          const [storeA, storeB] = yield* twoStores("expired")
          const now = yield* Clock.currentTimeMillis
          const id = freshId()
          yield* storeA.create({ ...record(id, now, [["old", true]]), expiresAt: now + 1_000 })
          // An hour later by the app's clock, the stored record has expired.
          const later = now + 3_600_000
          const exits = yield* Effect.all(
            Array.from(
              { length: 100 },
              (_, i) => Effect.exit((i % 2 === 0 ? storeA : storeB).create(record(id, later, [["writer", i]])))
            ),
            { concurrency: "unbounded" }
          ).pipe(shifted(3_600_000))
          assert.deepStrictEqual(countReasons(exits), { success: 1, Collision: 99 })
          const winner = exits.findIndex(Exit.isSuccess)
          const loaded = Option.getOrThrow(yield* shifted(3_600_000)(storeB.load(id)))
          assert.strictEqual(loaded.data.writer, winner)
          assert.isUndefined(loaded.data.old)
          assert.strictEqual(loaded.version, 1)
        }).pipe(Effect.scoped),
      60_000
    )

    it.live(
      "50 concurrent compare-and-set saves of one version: exactly one wins, the others are Conflicts",
      () =>
        Effect.gen(function*() {
          const [storeA, storeB] = yield* twoStores("cas")
          const now = yield* Clock.currentTimeMillis
          const created = yield* storeA.create(record(freshId(), now, [["n", 0]]))
          const exits = yield* Effect.all(
            Array.from({ length: 50 }, (_, i) =>
              Effect.exit(
                (i % 2 === 0 ? storeA : storeB).save({ ...created, data: SessionData.fromEntries([["n", i + 1]]) })
              )),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(countReasons(exits), { success: 1, Conflict: 49 })
          const winner = exits.findIndex(Exit.isSuccess)
          const loaded = Option.getOrThrow(yield* storeB.load(created.id))
          assert.strictEqual(loaded.version, 2)
          assert.strictEqual(loaded.data.n, winner + 1)
          // The winner's next save goes through; a save of the old version is a Conflict.
          const saved = (exits[winner] as Exit.Success<SessionRecord.SessionRecord, never>).value
          assert.strictEqual((yield* storeA.save(saved)).version, 3)
          assert.strictEqual(storeError(yield* Effect.exit(storeA.save(created)))?.reason, "Conflict")
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("save on a deleted or expired record is Gone and writes nothing", () =>
      Effect.gen(function*() {
        const table = uniqueTable("gone")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* storeOn(client, table)
        const now = yield* Clock.currentTimeMillis
        const deleted = yield* store.create(record(freshId(), now))
        yield* store.delete(deleted.id)
        yield* store.delete(deleted.id)
        assert.strictEqual(storeError(yield* Effect.exit(store.save(deleted)))?.reason, "Gone")
        assert.isTrue(Option.isNone(yield* store.load(deleted.id)))

        const expiring = yield* store.create({ ...record(freshId(), now, [["a", 1]]), expiresAt: now + 5_000 })
        const late = yield* Effect.exit(
          store.save({ ...expiring, data: SessionData.fromEntries([["a", 2]]), expiresAt: now + 3_600_000 })
        ).pipe(shifted(10_000))
        assert.strictEqual(storeError(late)?.reason, "Gone")
        // Nothing written: the row still holds the first data and version, expired.
        const rows = yield* client.unsafe<{ data: unknown; version: unknown }>(
          `SELECT data, version FROM ${quote(dialect, table)} WHERE id = ${dialect === "pg" ? "$1" : "?"}`,
          [expiring.id]
        ).withoutTransform
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(Number(rows[0].version), 1)
        assert.isTrue(Option.isSome(yield* store.load(expiring.id)))
        assert.isTrue(Option.isNone(yield* shifted(10_000)(store.load(expiring.id))))
      }).pipe(Effect.scoped))

    it.live("migration runs twice, and from 8 clients at once, succeeding every time", () =>
      Effect.gen(function*() {
        const table = uniqueTable("migrate")
        const first = yield* clientWithTable(target, table)
        const clients = [first, ...(yield* Effect.all(Array.from({ length: 7 }, () => target.client)))]
        const exits = yield* Effect.all(
          clients.map((client) => Effect.exit(withClient(client, SqlStore.migrate({ table })))),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(exits.map(Exit.isSuccess), Array(8).fill(true))
        const { store } = yield* storeOn(first, table)
        const now = yield* Clock.currentTimeMillis
        const created = yield* store.create(record(freshId(), now, [["kept", true]]))
        // Twice more (once through make, once through migrate): the table and its rows stay.
        yield* storeOn(clients[1], table)
        yield* withClient(clients[2], SqlStore.migrate({ table }))
        assert.isTrue(Option.getOrThrow(yield* store.load(created.id)).data.kept === true)
      }).pipe(Effect.scoped), 60_000)

    it.live("a hostile table or schema name is refused before any statement runs", () =>
      Effect.gen(function*() {
        const victim = uniqueTable("victim")
        const client = yield* clientWithTable(target, victim)
        yield* client.unsafe(`CREATE TABLE ${quote(dialect, victim)} (x INTEGER)`).withoutTransform
        const hostile = [
          `x; DROP TABLE ${victim}`,
          `x\`; DROP TABLE ${victim}; --`,
          `x"; DROP TABLE "${victim}"; --`,
          "",
          "a.b",
          "1abc",
          "x".repeat(49)
        ]
        for (const table of hostile) {
          const exit = yield* Effect.exit(storeOn(client, table))
          assert.isTrue(Exit.isFailure(exit), table)
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          assert.isTrue(
            Option.isSome(error) && error.value._tag === "StoreConfigError" && error.value.reason === "InvalidOption"
          )
        }
        const badSchema = yield* Effect.exit(storeOn(client, "ok_name", { schema: `public; DROP TABLE ${victim}` }))
        assert.isTrue(Exit.isFailure(badSchema))
        // The victim table is still there.
        const rows = yield* client.unsafe<{ n: unknown }>(`SELECT count(*) AS n FROM ${quote(dialect, victim)}`)
          .withoutTransform
        assert.strictEqual(Number(rows[0].n), 0)
        assert.isTrue(Either.isLeft(SqlStore.ddl(dialect, { table: `x; DROP TABLE ${victim}` })))
      }).pipe(Effect.scoped))

    it.live("a corrupt row fails its own load with Decode while other rows load", () =>
      Effect.gen(function*() {
        const table = uniqueTable("corrupt")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* storeOn(client, table)
        const now = yield* Clock.currentTimeMillis
        const good = yield* store.create(record(freshId(), now, [["fine", true]]))
        const corrupt = [
          { data: "[1, 2, 3]", version: 1 }, // JSON, but not an object
          { data: "\"text\"", version: 1 },
          { data: "{\"a\": 1}", version: 0 }, // not a valid version
          ...(dialect === "sqlite" ? [{ data: "{not json", version: 1 }] : [])
        ]
        for (const row of corrupt) {
          const id = freshId()
          yield* insertRow(client, dialect, table, {
            id,
            data: row.data,
            expiresAt: now + 60_000,
            version: row.version
          })
          const error = storeError(yield* Effect.exit(store.load(id)))
          assert.strictEqual(error?.reason, "Decode")
          assert.strictEqual(error?.method, "load")
          assert.notInclude(JSON.stringify(error) + String(error), row.data)
          assert.notInclude(JSON.stringify(error) + String(error), id)
        }
        const loaded = Option.getOrThrow(yield* store.load(good.id))
        assert.isTrue(SessionData.equals(loaded.data, { fine: true }))
      }).pipe(Effect.scoped))

    it.live(
      "deleteExpired over 20,000 expired and 1,000 live rows leaves exactly the live ones",
      () =>
        Effect.gen(function*() {
          const table = uniqueTable("cleanup")
          const client = yield* clientWithTable(target, table)
          const service = yield* storeOn(client, table)
          const now = yield* Clock.currentTimeMillis
          yield* bulkInsert(client, dialect, table, "expired-", 0, 20_000, now - 1)
          yield* bulkInsert(client, dialect, table, "live-", 0, 1_000, now + 3_600_000)
          const total = yield* client.unsafe<{ n: unknown }>(`SELECT count(*) AS n FROM ${quote(dialect, table)}`)
            .withoutTransform
          assert.strictEqual(Number(total[0].n), 21_000)
          const removed = yield* service.expiredDeletion.deleteExpired({ batchSize: 1_000 })
          assert.strictEqual(removed, 20_000)
          const left = yield* client.unsafe<{ id: string }>(`SELECT id FROM ${quote(dialect, table)}`).withoutTransform
          const ids = new Set(left.map((r) => r.id))
          assert.strictEqual(ids.size, 1_000)
          for (let i = 0; i < 1_000; i++) assert.isTrue(ids.has(`live-${i}`))
          assert.strictEqual(yield* service.expiredDeletion.deleteExpired(), 0)
        }).pipe(Effect.scoped),
      120_000
    )

    it.live("works on a client that renames result columns (transformResultNames / transformQueryNames)", () =>
      Effect.gen(function*() {
        const table = uniqueTable("transforms")
        yield* clientWithTable(target, table)
        const client = yield* target.transformingClient
        const { expiredDeletion, store } = yield* storeOn(client, table)
        const now = yield* Clock.currentTimeMillis
        const created = yield* store.create(record(freshId(), now, [["snake_case_key", 1]]))
        const saved = yield* store.save({ ...created, data: SessionData.fromEntries([["snake_case_key", 2]]) })
        const loaded = Option.getOrThrow(yield* store.load(created.id))
        assert.deepStrictEqual({ ...loaded.data }, { snake_case_key: 2 })
        assert.strictEqual(loaded.version, saved.version)
        assert.strictEqual(loaded.expiresAt, created.expiresAt)
        assert.strictEqual(storeError(yield* Effect.exit(store.save(created)))?.reason, "Conflict")
        yield* store.create({ ...record(freshId(), now), expiresAt: now - 1 })
        assert.strictEqual(yield* expiredDeletion.deleteExpired(), 1)
      }).pipe(Effect.scoped))

    it.live("spans name the method and the database, never the id or the data", () =>
      Effect.gen(function*() {
        const table = uniqueTable("spans")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* storeOn(client, table)
        const now = yield* Clock.currentTimeMillis
        const id = freshId()
        const secret = "secret-value-" + randomBytes(6).toString("hex")
        const [, spans] = yield* recordingSpans(Effect.gen(function*() {
          const created = yield* store.create(record(id, now, [["s", secret]]))
          yield* store.load(id)
          yield* store.save(created)
          yield* Effect.exit(store.save(created)) // Conflict
          yield* store.delete(id)
        }))
        const names = spans.map((s) => s.name)
        for (const method of ["create", "load", "save", "delete"]) assert.include(names, `SqlStore.${method}`)
        assert.include(names, "sql.execute")
        const system = spans.find((s) => s.name === "SqlStore.load")?.attributes.get("db.system.name")
        assert.include(["postgresql", "mysql", "mariadb", "sqlite"], system)
        for (const span of spans) {
          for (const [key, value] of span.attributes) {
            const text = String(value)
            assert.notInclude(text, id, `${span.name} ${key}`)
            assert.notInclude(text, secret, `${span.name} ${key}`)
          }
        }
      }).pipe(Effect.scoped))

    it.live("inside the app's transaction the store's writes commit and roll back with it", () =>
      Effect.gen(function*() {
        const table = uniqueTable("tx")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* storeOn(client, table)
        const now = yield* Clock.currentTimeMillis
        const kept = freshId()
        const undone = freshId()
        yield* client.withTransaction(store.create(record(kept, now, [["k", 1]])))
        const rolledBack = yield* Effect.exit(client.withTransaction(
          Effect.zipRight(store.create(record(undone, now, [["k", 2]])), Effect.fail("app failure" as const))
        ))
        assert.isTrue(Exit.isFailure(rolledBack))
        assert.isTrue(Option.isSome(yield* store.load(kept)))
        assert.isTrue(Option.isNone(yield* store.load(undone)))
        // the transaction sees its own uncommitted write through the store, and a save in it is undone too
        const saved = yield* Effect.exit(client.withTransaction(Effect.gen(function*() {
          const current = Option.getOrThrow(yield* store.load(kept))
          yield* store.save({ ...current, data: SessionData.fromEntries([["k", 3]]) })
          const seen = Option.getOrThrow(yield* store.load(kept))
          assert.strictEqual(seen.data.k, 3)
          return yield* Effect.fail("undo" as const)
        })))
        assert.isTrue(Exit.isFailure(saved))
        const after = Option.getOrThrow(yield* store.load(kept))
        assert.strictEqual(after.data.k, 1)
        assert.strictEqual(after.version, 1)
      }).pipe(Effect.scoped))

    it.live("a driver failure is Unavailable, redacted to the driver error's name and code", () =>
      Effect.gen(function*() {
        const table = uniqueTable("down")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* storeOn(client, table)
        yield* dropTable(client, dialect, table)
        const id = freshId()
        const error = storeError(yield* Effect.exit(store.load(id)))
        assert.strictEqual(error?.reason, "Unavailable")
        assert.strictEqual(error?.method, "load")
        assert.isDefined(error?.cause?.code)
        assert.notInclude(JSON.stringify(error) + String(error) + error?.message, id)
        assert.notInclude(JSON.stringify(error), table)
      }).pipe(Effect.scoped))
  })
}
