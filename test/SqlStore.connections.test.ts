/**
 * SqlStore's reserved connections (`reservedConnections`, src/internal/sqlConnections.ts) against the real
 * PostgreSQL and MariaDB: how many it holds and when, the app's own statements under sustained store load,
 * interruption, a connection killed under it, and the path with none reserved.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Option } from "effect"
import { SessionData } from "effect-sessions"
import * as SqlStore from "effect-sessions/SqlStore"
import { randomBytes } from "node:crypto"
import * as Connections from "../src/internal/sqlConnections.js"
import * as Dialect from "../src/internal/sqlDialect.js"
import { describeService } from "./support/services.js"
import {
  dropTable,
  freshId,
  mariadb,
  pgConfig,
  postgres,
  record,
  sqlite,
  type Target,
  uniqueTable,
  withClient
} from "./support/sql.js"

/** A store on a new table of `client`, with `count` sessions created; returns the store and the ids. */
const seeded = (client: SqlClient.SqlClient, dialect: Target["dialect"], count: number, options?: SqlStore.Options) =>
  Effect.gen(function*() {
    const table = uniqueTable("conn")
    yield* Effect.addFinalizer(() => dropTable(client, dialect, table))
    const { store } = yield* withClient(client, SqlStore.make({ ...options, table }))
    const now = yield* Clock.currentTimeMillis
    const ids = Array.from({ length: count }, freshId)
    yield* Effect.forEach(ids, (id, i) => store.create(record(id, now, [["n", i]])), { concurrency: 16, discard: true })
    return { store, ids }
  })

/** A statement that takes a little while on the server. */
const slow = (client: SqlClient.SqlClient) =>
  client.onDialectOrElse({ pg: () => "SELECT pg_sleep(0.005) AS s", orElse: () => "SELECT SLEEP(0.005) AS s" })

const connectionSuite = (target: Target) =>
  describe(`reserved connections on ${target.label}`, () => {
    it.live("an idle store holds no connection; under 64 operations in flight it holds at most the limit", () =>
      Effect.gen(function*() {
        const client = yield* target.clientWithPool(12)
        const connections = Connections.make(client, 3, Dialect.isStatementError)
        const text = slow(client)
        let most = 0
        yield* Effect.forEach(
          Array.from({ length: 64 }),
          () =>
            connections.run((c) =>
              Effect.tap(c.execute(text, [], undefined), () =>
                Effect.sync(() => {
                  most = Math.max(most, connections.held())
                }))
            ),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual(most, 3)
        assert.strictEqual(connections.held(), 0)
        // a single operation reserves one connection and gives it back
        yield* connections.run((c) => c.execute(text, [], undefined))
        assert.strictEqual(connections.held(), 0)
      }).pipe(Effect.scoped))

    it.live("under sustained store load on a pool of 2, the app's own statements still get connections", () =>
      Effect.gen(function*() {
        const client = yield* target.clientWithPool(2)
        const { ids, store } = yield* seeded(client, target.dialect, 64, { reservedConnections: 10 })
        let stop = false
        let loads = 0
        const worker = (i: number): Effect.Effect<void, unknown> =>
          stop ? Effect.void : Effect.flatMap(store.load(ids[i]), () => {
            loads++
            return worker(i)
          })
        const load = yield* Effect.fork(Effect.forEach(ids, (_, i) =>
          worker(i), { concurrency: "unbounded", discard: true }))
        yield* Effect.sleep(Duration.millis(100))
        const before = loads
        // each of these waits in the pool's queue behind the store's reservations, never for the load to end
        for (let i = 0; i < 5; i++) {
          const rows = yield* client.unsafe<{ one: number }>("SELECT 1 AS one").withoutTransform
          assert.strictEqual(Number(rows[0].one), 1)
        }
        const during = loads
        stop = true
        yield* Fiber.join(load)
        assert.isAbove(before, 0)
        assert.isAbove(during, before, "the store kept loading while the app's statements ran")
      }).pipe(Effect.scoped), 30_000)

    it.live("interrupted operations never fail the others", () =>
      Effect.gen(function*() {
        const client = yield* target.clientWithPool(12)
        const connections = Connections.make(client, 4, Dialect.isStatementError)
        const text = slow(client)
        // victims and others alternate, so each connection's queue holds both
        const fibers = yield* Effect.forEach(
          Array.from({ length: 96 }),
          () =>
            Effect.fork(Effect.exit(connections.run((c) =>
              c.execute(text, [], undefined)
            ))),
          { concurrency: "unbounded" }
        )
        const victims = fibers.filter((_, i) =>
          i % 2 === 0
        )
        const others = fibers.filter((_, i) => i % 2 === 1)
        for (const pause of [12, 8, 8]) {
          yield* Effect.sleep(Duration.millis(pause))
          yield* Effect.forEach(victims.splice(0, 16), Fiber.interrupt, { concurrency: "unbounded", discard: true })
        }
        const exits = yield* Effect.forEach(others, Fiber.join)
        assert.deepStrictEqual(exits.filter(Exit.isFailure).length, 0)
        assert.strictEqual(connections.held(), 0)
      }).pipe(Effect.scoped), 30_000)

    it.live("with reservedConnections: 0 every statement goes through the client; the store works the same", () =>
      Effect.gen(function*() {
        const client = yield* target.clientWithPool(12)
        const { ids, store } = yield* seeded(client, target.dialect, 40, { reservedConnections: 0 })
        const loaded = yield* Effect.forEach(ids, (id) => store.load(id), { concurrency: "unbounded" })
        assert.isTrue(loaded.every(Option.isSome))
        const first = Option.getOrThrow(loaded[0])
        yield* store.save({ ...first, data: SessionData.fromEntries([["n", -1]]) })
        assert.strictEqual((yield* Effect.exit(store.save(first)))._tag, "Failure")
      }).pipe(Effect.scoped))
  })

describe("reservedConnections option", () => {
  it.scoped("is refused when negative or fractional, and on SQLite when above 0", () =>
    Effect.gen(function*() {
      const client = yield* sqlite(":memory:").client
      for (const reservedConnections of [-1, 1.5, Number.NaN, 1]) {
        const exit = yield* Effect.exit(withClient(client, SqlStore.make({ reservedConnections })))
        assert.isTrue(Exit.isFailure(exit), String(reservedConnections))
        const error = Exit.isFailure(exit) ? exit.cause : undefined
        assert.include(JSON.stringify(error), "reservedConnections")
      }
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(withClient(client, SqlStore.make({ reservedConnections: 0 })))))
    }))

  it("tells statement errors (the connection is fine) from connection errors", () => {
    // pg: a server error carries a severity and a SQLSTATE
    assert.isTrue(Dialect.isStatementError({ severity: "ERROR", code: "23505" }))
    assert.isTrue(Dialect.isStatementError({ severity: "ERROR", code: "42P01" }))
    assert.isFalse(Dialect.isStatementError({ severity: "FATAL", code: "57P01" })) // admin shutdown
    assert.isFalse(Dialect.isStatementError({ severity: "FATAL", code: "08006" })) // connection failure
    // mysql2: a server error carries a SQL state; `fatal` ones closed the connection
    assert.isTrue(Dialect.isStatementError({ code: "ER_DUP_ENTRY", sqlState: "23000", errno: 1062 }))
    assert.isFalse(Dialect.isStatementError({ code: "ER_SERVER_SHUTDOWN", sqlState: "08S01", fatal: true }))
    // the drivers' own errors on a lost connection have neither
    assert.isFalse(Dialect.isStatementError(new Error("Connection terminated unexpectedly")))
    assert.isFalse(Dialect.isStatementError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })))
    assert.isFalse(Dialect.isStatementError(undefined))
  })
})

await describeService("SqlStore connections (PostgreSQL)", postgres.server!.host, postgres.server!.port, () => {
  connectionSuite(postgres)

  it.live("connections killed under the store are replaced; later operations succeed", () =>
    Effect.gen(function*() {
      const applicationName = `es_kill_${randomBytes(4).toString("hex")}`
      const client = yield* Effect.provide(
        PgClient.make({ ...pgConfig, maxConnections: 12, applicationName }),
        Reactivity.layer
      )
      const killer = yield* postgres.client
      const { ids, store } = yield* seeded(client, "pg", 32)
      let stop = false
      const failures: Array<number> = []
      let done = 0
      const worker = (i: number): Effect.Effect<void> =>
        stop ? Effect.void : Effect.flatMap(Effect.exit(store.load(ids[i])), (exit) => {
          if (Exit.isFailure(exit)) failures.push(done)
          done++
          return worker(i)
        })
      const load = yield* Effect.fork(
        Effect.forEach(ids, (_, i) => worker(i), { concurrency: "unbounded", discard: true })
      )
      yield* Effect.sleep(Duration.millis(150))
      const killed = yield* killer.unsafe<{ pid: number }>(
        "SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity WHERE application_name = $1",
        [applicationName]
      ).withoutTransform
      const atKill = done
      yield* Effect.sleep(Duration.millis(400))
      stop = true
      yield* Fiber.join(load)
      assert.isAbove(killed.length, 0, "the store's connections were killed")
      assert.isAbove(done, atKill + 100, "operations went on after the kill")
      // only statements outstanding on the killed connections fail; everything after them succeeds
      const lastFailure = failures.length === 0 ? 0 : failures[failures.length - 1]
      assert.isBelow(
        lastFailure,
        atKill + 64 * 2,
        `failures: ${failures.length}, last at ${lastFailure}, kill at ${atKill}`
      )
      const after = yield* Effect.forEach(ids, (id) => store.load(id), { concurrency: "unbounded" })
      assert.isTrue(after.every(Option.isSome))
    }).pipe(Effect.scoped), 30_000)
})

await describeService("SqlStore connections (MySQL/MariaDB)", mariadb.server!.host, mariadb.server!.port, () => {
  connectionSuite(mariadb)
})
