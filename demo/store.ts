/**
 * The demo's session store, chosen by `SESSION_STORE`: `sqlite` (default, a file under `.data/`),
 * `memory`, `postgres`, `mysql` or `redis`. Connection settings come from the environment, with the
 * machine's defaults (127.0.0.1, database `test`).
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { MemoryStore, type SessionIndex, SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import * as SqlStore from "effect-sessions/SqlStore"
import type * as ConfigError from "effect/ConfigError"
import * as path from "node:path"

/** A store, and how the start-up line names it (never with a password). */
export interface DemoStore {
  readonly description: string
  readonly layer: Layer.Layer<SessionStore.SessionStore | SessionIndex.SessionIndex, unknown>
}

const env = <A>(config: Config.Config<A>, fallback: A) => Config.withDefault(config, fallback)

/** An SQL store on `client`, its expired sessions deleted in the background. */
const sqlStore = <E>(client: Layer.Layer<SqlClient.SqlClient, E>) =>
  SessionStore.layerExpiredDeletion({ interval: "10 minutes" }).pipe(
    Layer.provideMerge(SqlStore.layer()),
    Layer.provide(client)
  )

const sqlite = Effect.gen(function*() {
  const filename = yield* env(Config.string("SQLITE_FILE"), path.join(".data", "demo-sessions.db"))
  const directory = Layer.effectDiscard(
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(path.dirname(filename), { recursive: true }))
  ).pipe(Layer.provide(NodeFileSystem.layer))
  return {
    description: `sqlite (${filename})`,
    layer: sqlStore(SqliteClient.layer({ filename }).pipe(Layer.provide(directory)))
  }
})

/** Settings of a database server from the environment, e.g. `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`. */
const serverSettings = (
  vars: {
    readonly host: string
    readonly port: string
    readonly user: string
    readonly database: string
    readonly password: string
  },
  defaults: { readonly port: number; readonly username: string }
) =>
  Config.all({
    host: env(Config.string(vars.host), "127.0.0.1"),
    port: env(Config.port(vars.port), defaults.port),
    username: env(Config.string(vars.user), defaults.username),
    database: env(Config.string(vars.database), "test"),
    password: Config.map(Config.option(Config.redacted(vars.password)), Option.getOrUndefined)
  })

const describeServer = (kind: string, o: { host: string; port: number; username: string; database: string }) =>
  `${kind} (${o.username}@${o.host}:${o.port}/${o.database})`

const postgres = Effect.map(
  serverSettings(
    { host: "PGHOST", port: "PGPORT", user: "PGUSER", database: "PGDATABASE", password: "PGPASSWORD" },
    { port: 5432, username: "postgres" }
  ),
  (options) => ({ description: describeServer("postgres", options), layer: sqlStore(PgClient.layer(options)) })
)

const mysql = Effect.map(
  serverSettings(
    {
      host: "MYSQL_HOST",
      port: "MYSQL_PORT",
      user: "MYSQL_USER",
      database: "MYSQL_DATABASE",
      password: "MYSQL_PASSWORD"
    },
    { port: 3306, username: "root" }
  ),
  (options) => ({ description: describeServer("mysql", options), layer: sqlStore(MysqlClient.layer(options)) })
)

const redis = Effect.gen(function*() {
  const url = yield* Config.option(Config.redacted("REDIS_URL"))
  const host = yield* env(Config.string("REDIS_HOST"), "127.0.0.1")
  const port = yield* env(Config.port("REDIS_PORT"), 6379)
  return {
    description: Option.isSome(url) ? "redis (REDIS_URL)" : `redis (${host}:${port})`,
    layer: RedisStore.layer({ url: Option.getOrElse(url, () => Redacted.make(`redis://${host}:${port}`)) })
  }
})

const memory = Effect.succeed({
  description: "memory (sessions end with the process)",
  layer: MemoryStore.layer()
})

const stores: Record<string, Effect.Effect<DemoStore, ConfigError.ConfigError>> = {
  sqlite,
  memory,
  postgres,
  mysql,
  redis
}

/** `fromEnv` reads `SESSION_STORE` (default `sqlite`) and the chosen store's settings. */
export const fromEnv: Effect.Effect<DemoStore, ConfigError.ConfigError> = Effect.flatMap(
  env(Config.literal("sqlite", "memory", "postgres", "mysql", "redis")("SESSION_STORE"), "sqlite"),
  (name) => stores[name]
)
