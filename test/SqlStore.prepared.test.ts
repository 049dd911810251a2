/**
 * SqlStore's named prepared statements on PostgreSQL (`preparedStatements`, src/internal/pgPrepared.ts) against the
 * real server: what is prepared and under which names, the store working on after the server forgot its
 * statements (`DISCARD ALL`) or must re-plan them (a column changed type), a client that keeps losing them, the
 * path without, and the option's validation.
 *
 * Each test uses a pool of one connection, so the app's own statements (`pg_prepared_statements` is per
 * connection) run on the connection the store prepared on.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Option } from "effect"
import { SessionData, type SessionRecord } from "effect-sessions"
import * as SqlStore from "effect-sessions/SqlStore"
import * as PgPrepared from "../src/internal/pgPrepared.js"
import * as Dialect from "../src/internal/sqlDialect.js"
import { describeService } from "./support/services.js"
import { dropTable, freshId, postgres, record, sqlite, uniqueTable, withClient } from "./support/sql.js"

/** The statements prepared on the pool's one connection under effect-sessions' names. */
const preparedOn = (client: SqlClient.SqlClient) =>
  client.unsafe<{ name: string; statement: string }>(
    "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'effect\\_sessions\\_%' ORDER BY name"
  ).withoutTransform

/** A store on a new table of a one-connection pool, with three sessions created. */
const seeded = (options?: SqlStore.Options) =>
  Effect.gen(function*() {
    const client = yield* postgres.clientWithPool(1)
    const table = uniqueTable("prep")
    yield* Effect.addFinalizer(() => dropTable(client, "pg", table))
    const { store } = yield* withClient(client, SqlStore.make({ ...options, table }))
    const now = yield* Clock.currentTimeMillis
    const records = [0, 1, 2].map((n) => record(freshId(), now, [["n", n]]))
    yield* Effect.forEach(records, (r) => store.create(r), { discard: true })
    const st = Dialect.statements("pg", { table, schema: undefined })
    return { client, store, records, st }
  })

/** Loads every record and checks its data. */
const loadsAll = (store: SqlStore.Service["store"], records: ReadonlyArray<SessionRecord.SessionRecord>) =>
  Effect.forEach(records, (r) =>
    Effect.map(store.load(r.id), (found) => {
      assert.isTrue(Option.isSome(found))
      assert.deepStrictEqual(Option.getOrThrow(found).data, r.data)
    }), { discard: true })

await describeService("SqlStore prepared statements (PostgreSQL)", postgres.server!.host, postgres.server!.port, () => {
  it.live("the store's statements are prepared once per connection, under names that hold no session data", () =>
    Effect.gen(function*() {
      const { client, records, st, store } = yield* seeded()
      yield* loadsAll(store, records)
      const saved = yield* store.save({ ...records[0], data: SessionData.fromEntries([["n", 10]]) })
      assert.strictEqual((yield* Effect.exit(store.save(records[0])))._tag, "Failure") // a Conflict runs `current`
      yield* store.delete(records[1].id)
      const first = yield* preparedOn(client)
      const byStatement = new Map(first.map((row) => [row.statement, row.name]))
      for (const text of [st.create, st.load, st.save, st.current, st.delete]) {
        const name = byStatement.get(text)
        assert.isDefined(name, text)
        assert.match(name!, /^effect_sessions_[0-9a-f]{16}_0$/)
        assert.strictEqual(name, `${PgPrepared.nameOf(text)}_0`)
      }
      assert.strictEqual(first.length, 5)
      // more operations reuse them
      yield* loadsAll(store, [saved, records[2]])
      yield* store.save(saved)
      assert.deepStrictEqual(yield* preparedOn(client), first)
    }).pipe(Effect.scoped))

  it.live("with preparedStatements: false nothing is prepared; the store works the same", () =>
    Effect.gen(function*() {
      const { client, records, store } = yield* seeded({ preparedStatements: false })
      yield* loadsAll(store, records)
      yield* store.save(records[0])
      assert.deepStrictEqual(yield* preparedOn(client), [])
    }).pipe(Effect.scoped))

  it.live("after DISCARD ALL on its connection the store prepares its statements again and loses nothing", () =>
    Effect.gen(function*() {
      const { client, records, st, store } = yield* seeded()
      yield* loadsAll(store, records)
      yield* client.unsafe("DISCARD ALL").withoutTransform
      assert.deepStrictEqual(yield* preparedOn(client), [])
      yield* loadsAll(store, records)
      const saved = yield* store.save({ ...records[0], data: SessionData.fromEntries([["n", 20]]) })
      assert.strictEqual(saved.version, 2)
      const names = (yield* preparedOn(client)).map((row) => row.name)
      assert.include(names, `${PgPrepared.nameOf(st.load)}_1`)
      assert.include(names, `${PgPrepared.nameOf(st.save)}_1`)
    }).pipe(Effect.scoped))

  it.live("a column changing type under a prepared statement: the statement is prepared again", () =>
    Effect.gen(function*() {
      const { client, records, st, store } = yield* seeded()
      yield* loadsAll(store, records)
      // the result type of `load` changes: the server refuses the cached plan (0A000)
      yield* client.unsafe(`ALTER TABLE ${st.qualified} ALTER COLUMN data TYPE json USING data::json`).withoutTransform
      yield* loadsAll(store, records)
    }).pipe(Effect.scoped))

  it.live("a client that keeps losing its statements gets unnamed statements from then on", () =>
    Effect.gen(function*() {
      const { client, records, store } = yield* seeded()
      for (let i = 0; i <= PgPrepared.MAX_REPREPARES + 1; i++) {
        yield* client.unsafe("DISCARD ALL").withoutTransform
        yield* loadsAll(store, records)
      }
      // the last loads ran unnamed: nothing was prepared after the last DISCARD ALL
      assert.deepStrictEqual(yield* preparedOn(client), [])
      yield* store.save(records[0])
      assert.deepStrictEqual(yield* preparedOn(client), [])
    }).pipe(Effect.scoped))

  it.live("on a connection without a pg client the statement is sent unnamed", () =>
    Effect.gen(function*() {
      const client = yield* postgres.clientWithPool(1)
      const connection = yield* client.reserve
      // only what the Connection interface offers: no `pg` field
      const plain = { execute: connection.execute.bind(connection) } as unknown as typeof connection
      assert.isUndefined(PgPrepared.pgClientOf(plain))
      const rows = yield* PgPrepared.run(
        plain,
        "SELECT $1::int + 1 AS n",
        PgPrepared.nameOf("SELECT $1::int + 1 AS n"),
        [41]
      )
      assert.strictEqual(Number(rows[0].n), 42)
      const prepared = yield* connection.execute("SELECT name FROM pg_prepared_statements", [], undefined)
      assert.deepStrictEqual(prepared, [])
      // the reserved connection itself has one, and there the statement is prepared
      assert.isDefined(PgPrepared.pgClientOf(connection))
      yield* PgPrepared.run(connection, "SELECT $1::int + 1 AS n", PgPrepared.nameOf("SELECT $1::int + 1 AS n"), [1])
      const after = yield* connection.execute("SELECT name FROM pg_prepared_statements", [], undefined)
      assert.strictEqual(after.length, 1)
    }).pipe(Effect.scoped))

  it.scoped("preparedStatements: true with reservedConnections: 0 is refused, before any statement", () =>
    Effect.gen(function*() {
      const client = yield* postgres.client
      const exit = yield* Effect.exit(
        withClient(
          client,
          SqlStore.make({ table: uniqueTable("never"), reservedConnections: 0, preparedStatements: true })
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(JSON.stringify(Exit.isFailure(exit) ? exit.cause : undefined), "preparedStatements")
      assert.isTrue(Exit.isSuccess(
        yield* Effect.exit(withClient(client, SqlStore.migrate({ table: uniqueTable("never") })).pipe(Effect.asVoid))
      ))
    }))
})

describe("preparedStatements option", () => {
  it.scoped("is refused on SQLite, and when it is not a boolean", () =>
    Effect.gen(function*() {
      const client = yield* sqlite(":memory:").client
      for (const preparedStatements of [true, false, "yes" as unknown as boolean]) {
        const exit = yield* Effect.exit(withClient(client, SqlStore.make({ preparedStatements })))
        assert.isTrue(Exit.isFailure(exit), String(preparedStatements))
        assert.include(JSON.stringify(Exit.isFailure(exit) ? exit.cause : undefined), "preparedStatements")
      }
    }))

  it("takes a pg client only: a pool, or an object without query, is not one", () => {
    const connection = (pg: unknown) => ({ pg }) as unknown as Parameters<typeof PgPrepared.pgClientOf>[0]
    assert.isUndefined(PgPrepared.pgClientOf(connection(undefined)))
    assert.isUndefined(PgPrepared.pgClientOf(connection({ query: () => undefined }))) // a Pool has no `connection`
    assert.isUndefined(PgPrepared.pgClientOf(connection({ connection: {} })))
    const client = { query: () => undefined, connection: {} }
    assert.strictEqual(PgPrepared.pgClientOf(connection(client)), client)
  })

  it("names a statement by a hash of its text, never the text", () => {
    const text = "SELECT data FROM \"secret_table\" WHERE id = $1"
    const name = PgPrepared.nameOf(text)
    assert.match(name, /^effect_sessions_[0-9a-f]{16}$/)
    assert.notInclude(name, "secret")
    assert.notStrictEqual(PgPrepared.nameOf(`${text} `), name)
  })
})
