/**
 * SqlStore construction: what is refused before any statement runs, the DDL per dialect, `layerConfig`.
 * (The dialect suites, against the real servers, are SqlStore.pg / .mysql / .sqlite.test.ts.)
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Statement from "@effect/sql/Statement"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Config, ConfigProvider, Effect, Either, Exit, Layer, Option } from "effect"
import { SessionData, SessionId, SessionStore, SessionToken } from "effect-sessions"
import * as SqlStore from "effect-sessions/SqlStore"
import { sqlite, withClient } from "./support/sql.js"

const failure = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("SqlStore construction", () => {
  it.effect("a client of an unsupported dialect is refused without running a statement", () =>
    Effect.gen(function*() {
      // A real @effect/sql client of the mssql dialect whose connection dies if anything tries to use it.
      const client = yield* SqlClient.make({
        acquirer: Effect.dieMessage("SqlStore ran a statement on an unsupported dialect"),
        compiler: Statement.makeCompiler({
          dialect: "mssql",
          placeholder: (i) => `@p${i}`,
          onIdentifier: (s) => `[${s}]`,
          onRecordUpdate: () => ["", []],
          onCustom: () => ["", []]
        }),
        spanAttributes: []
      }).pipe(Effect.provide(Reactivity.layer))
      const error = failure(yield* Effect.exit(withClient(client, SqlStore.make())))
      assert.strictEqual(error?._tag, "StoreConfigError")
      assert.strictEqual(error?._tag === "StoreConfigError" ? error.reason : undefined, "UnsupportedDialect")
      assert.include(error?.message, "not supported")
    }))

  it.scoped("the schema option is refused outside PostgreSQL", () =>
    Effect.gen(function*() {
      const client = yield* sqlite(":memory:").client
      const error = failure(yield* Effect.exit(withClient(client, SqlStore.make({ schema: "main" }))))
      assert.strictEqual(error?._tag, "StoreConfigError")
      assert.include(error?.message, "PostgreSQL only")
    }))

  it("ddl gives each dialect's table: JSON data, BIGINT milliseconds with an index, a version, the user key with an index", () => {
    const pg = Either.getOrThrow(SqlStore.ddl("pg", { table: "sessions", schema: "auth" }))
    assert.deepStrictEqual(pg.length, 5)
    assert.include(pg[0], "CREATE SCHEMA IF NOT EXISTS \"auth\"")
    assert.include(pg[1], "\"auth\".\"sessions\"")
    assert.include(pg[1], "data jsonb NOT NULL")
    assert.include(pg[1], "expires_at bigint NOT NULL")
    assert.include(pg[1], "user_key text COLLATE \"C\"\n")
    assert.include(pg[2], "ON \"auth\".\"sessions\" (expires_at)")
    // a table made without the user key gets it
    assert.include(pg[3], "ALTER TABLE \"auth\".\"sessions\" ADD COLUMN IF NOT EXISTS user_key text COLLATE \"C\"")
    assert.include(
      pg[4],
      "CREATE INDEX IF NOT EXISTS \"sessions_user_key_idx\" ON \"auth\".\"sessions\" (user_key) WHERE user_key IS NOT NULL"
    )
    const mysql = Either.getOrThrow(SqlStore.ddl("mysql"))
    assert.strictEqual(mysql.length, 1)
    assert.include(mysql[0], "`effect_sessions`")
    assert.include(mysql[0], "data JSON NOT NULL")
    assert.include(mysql[0], "COLLATE ascii_bin") // ids are case-sensitive
    assert.include(mysql[0], "INDEX `effect_sessions_expires_at_idx` (expires_at)")
    assert.include(mysql[0], "user_key VARCHAR(43) CHARACTER SET ascii COLLATE ascii_bin NULL") // so are user keys
    assert.include(mysql[0], "INDEX `effect_sessions_user_key_idx` (user_key)")
    const lite = Either.getOrThrow(SqlStore.ddl("sqlite"))
    assert.strictEqual(lite.length, 3)
    assert.include(lite[0], "data TEXT NOT NULL")
    assert.include(lite[0], "user_key TEXT\n")
    assert.include(lite[1], "CREATE INDEX IF NOT EXISTS")
    assert.include(
      lite[2],
      "\"effect_sessions_user_key_idx\" ON \"effect_sessions\" (user_key) WHERE user_key IS NOT NULL"
    )
    assert.isTrue(Either.isLeft(SqlStore.ddl("pg", { table: "sessions; DROP TABLE users" })))
    assert.isTrue(Either.isLeft(SqlStore.ddl("sqlite", { schema: "main" })))
  })

  it.scoped("layerConfig reads the options from Config and refuses a hostile name from there too", () =>
    Effect.gen(function*() {
      const client = yield* sqlite(":memory:").client
      const layer = SqlStore.layerConfig({ table: Config.string("SESSIONS_TABLE") }).pipe(
        Layer.provide(Layer.succeed(SqlClient.SqlClient, client))
      )
      const withEnv = (table: string) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SESSIONS_TABLE", table]])))
      const id = SessionId.fromToken(SessionToken.unsafeGenerate())
      const now = yield* Clock.currentTimeMillis
      yield* Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        yield* store.create({ id, data: SessionData.fromEntries([["a", 1]]), expiresAt: now + 60_000, version: 1 })
      }).pipe(Effect.provide(layer), withEnv("configured_sessions"))
      const rows = yield* client.unsafe<{ n: number }>("SELECT count(*) AS n FROM configured_sessions").withoutTransform
      assert.strictEqual(rows[0].n, 1)

      const hostile = failure(
        yield* Effect.exit(Effect.provide(Effect.void, layer).pipe(withEnv("x; DROP TABLE configured_sessions")))
      )
      assert.strictEqual(hostile?._tag, "StoreConfigError")
      const missing = failure(
        yield* Effect.exit(
          Effect.provide(Effect.void, layer).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
        )
      )
      assert.isTrue(missing !== undefined && missing._tag !== "StoreConfigError" && missing._tag !== "StoreError")
    }))
})
