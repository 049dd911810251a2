/**
 * Session store on PostgreSQL, MySQL/MariaDB or SQLite, through whatever `@effect/sql` `SqlClient` the app
 * provides (`@effect/sql-pg`'s `PgClient`, `@effect/sql-mysql2`'s `MysqlClient`, `@effect/sql-sqlite-node`'s
 * `SqliteClient`). Use it when sessions must outlive the process or be shared by several app instances.
 *
 * One table holds the sessions: `id` (the session id, never the token), `data` as JSON the database can
 * query (`jsonb` in Postgres, `json` in MySQL/MariaDB, JSON text in SQLite), `expires_at` as BIGINT epoch
 * milliseconds with an index, `version` for compare-and-set, and `user_key` with an index: the
 * `SessionIndex.userKey` digest of the user the session is bound to (`NULL` when unbound), which every write sets
 * from the data it writes, in the same statement, so the store also provides `SessionIndex`. The layer creates
 * the table unless `migrate` is `false`, and adds `user_key` and its index to a table made without them; the
 * migration is idempotent and safe when several instances start at once. A session bound before that upgrade
 * is listed (and revoked) once it is next written.
 *
 * Every operation is atomic: `create` is one statement on Postgres and SQLite (an insert that replaces only an
 * expired row), and on MySQL an `INSERT` followed, on a duplicate key, by an `UPDATE` of the expired row only;
 * `save` is one compare-and-set `UPDATE`. `SessionIndex.revoke` is one `DELETE ... RETURNING` on Postgres and
 * SQLite, and on MySQL/MariaDB a transaction that locks the user's rows (`SELECT ... FOR UPDATE`) and deletes
 * them. Expiry is judged by the application's `Clock`, passed to every statement, never by the database's clock.
 *
 * On PostgreSQL and MySQL the statements run on connections the store reserves from the app's pool while it
 * has operations in flight (`reservedConnections`); inside the app's transaction, on the transaction's. On
 * PostgreSQL they are prepared once per connection under a name (`preparedStatements`), as mysql2 already
 * prepares them on MySQL.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { SessionStore } from "effect-sessions"
 * import * as SqlStore from "effect-sessions/SqlStore"
 * import { Layer } from "effect"
 *
 * // SessionStore, ExpiredDeletion and SessionIndex on the app's Postgres, expired rows removed every 5 minutes.
 * const SessionsLive = SessionStore.layerExpiredDeletion({ interval: "5 minutes" }).pipe(
 *   Layer.provideMerge(SqlStore.layer({ table: "sessions" })),
 *   Layer.provide(PgClient.layer({ database: "app" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Binding from "./internal/binding.js"
import * as IndexService from "./internal/indexService.js"
import * as InvalidationCore from "./internal/invalidation.js"
import * as InvalidationPg from "./internal/invalidationPg.js"
import * as OptionChecks from "./internal/optionChecks.js"
import * as PgPrepared from "./internal/pgPrepared.js"
import * as Connections from "./internal/sqlConnections.js"
import * as Dialect from "./internal/sqlDialect.js"
import { spanIfTraced } from "./internal/tracing.js"
import * as Invalidation from "./Invalidation.js"
import type { SessionId } from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import * as SessionRecord from "./SessionRecord.js"
import * as SessionStore from "./SessionStore.js"
import * as StoreError from "./StoreError.js"

/**
 * Options of `make`, `layer` and `layerConfig`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * The sessions table. Default `effect_sessions`. A plain identifier (a letter or `_`, then letters, digits
   * or `_`, at most 48 characters); anything else is refused at construction.
   */
  readonly table?: string | undefined
  /** PostgreSQL only: the schema of the table (created by the migration). Default: the connection's `search_path`. */
  readonly schema?: string | undefined
  /** Create the table and its index when missing. Default `true`. Set `false` when you migrate with your own tools. */
  readonly migrate?: boolean | undefined
  /** Cap on a session's encoded JSON in UTF-8 bytes. Default 65,536 (64 KiB). */
  readonly maxDataBytes?: number | undefined
  /** Wrap each operation in a span (`SqlStore.load`, ...). Default `true`. */
  readonly spans?: boolean | undefined
  /**
   * PostgreSQL and MySQL/MariaDB: the most connections the store reserves from the app's pool (through
   * `SqlClient.reserve`) for its statements, which it sends on them directly instead of through the client's
   * statement path (about a third less CPU per operation). It holds a connection only while it has operations in
   * flight: never more connections than operations, none when idle. Each connection goes back to the pool
   * after 200 statements, so under sustained load the app's own statements still get connections in the
   * pool's order. Default 10 (the default pool size of `pg` and `mysql2`); `0` sends every statement through
   * the client's statement path. Inside the app's transaction the store always uses the transaction's
   * connection. SQLite has a single connection: anything but `0` is refused there.
   */
  readonly reservedConnections?: number | undefined
  /**
   * PostgreSQL only: prepare the store's statements (load, create, save, delete) once per connection under a
   * name, `effect_sessions_` and a hash of the statement, as `sqlx` and mysql2's `execute` do, instead of sending
   * them unnamed for the server to parse and plan every time. Default `true` (with `reservedConnections` above 0,
   * which it needs). A statement the server forgot (`DISCARD ALL`) or must re-plan (a column changed type) runs
   * again under a new name. Set `false` behind a pooler in transaction mode without prepared-statement support
   * (PgBouncer before 1.21, or with `max_prepared_statements = 0`), or when the client's connections do not come
   * from `@effect/sql-pg` (then statements are sent unnamed anyway).
   */
  readonly preparedStatements?: boolean | undefined
}

/**
 * What a SQL store offers: the `SessionStore` service, its `ExpiredDeletion`, its `SessionIndex`, and the
 * dialect it runs on.
 *
 * @since 0.1.0
 */
export interface Service extends SessionStore.WithExpiredDeletion {
  /** The `@effect/sql` dialect of the client. */
  readonly dialect: Dialect.Dialect
  /** The per-user index of this store: the `user_key` column and its index. */
  readonly index: SessionIndex.Service
}

interface Resolved {
  readonly names: Dialect.Names
  readonly migrate: boolean
  readonly reservedConnections: number
  readonly preparedStatements: boolean
}

/** Default of `reservedConnections` on PostgreSQL and MySQL: the default pool size of `pg` and `mysql2`. */
const DEFAULT_RESERVED_CONNECTIONS = 10

const resolve = (
  dialect: Dialect.Dialect,
  options: Options | undefined
): Either.Either<Resolved, StoreError.StoreConfigError> => {
  const invalid = (option: string, message: string) =>
    Either.left(StoreError.invalidOption("SqlStore", option, message))
  const pgOnly = (option: string) =>
    invalid(option, `the ${option} option is supported on PostgreSQL only (this client is ${dialect})`)
  const badSize = OptionChecks.positiveInteger("SqlStore", "maxDataBytes", options?.maxDataBytes)
  if (badSize !== undefined) return Either.left(badSize)
  const table = options?.table ?? Dialect.DEFAULT_TABLE
  const badTable = Dialect.checkIdentifier("table name", table)
  if (badTable !== undefined) return invalid("table", badTable)
  const schema = options?.schema
  if (schema !== undefined) {
    if (dialect !== "pg") return pgOnly("schema")
    const badSchema = Dialect.checkIdentifier("schema name", schema)
    if (badSchema !== undefined) return invalid("schema", badSchema)
  }
  const reserved = options?.reservedConnections
  if (reserved !== undefined) {
    if (!Number.isSafeInteger(reserved) || reserved < 0) {
      return invalid(
        "reservedConnections",
        `reservedConnections must be a whole number, 0 or more (got ${String(reserved)})`
      )
    }
    if (dialect === "sqlite" && reserved > 0) {
      return invalid(
        "reservedConnections",
        "reservedConnections must be 0 on SQLite, whose client has a single connection"
      )
    }
  }
  const reservedConnections = reserved ?? (dialect === "sqlite" ? 0 : DEFAULT_RESERVED_CONNECTIONS)
  const prepared = options?.preparedStatements
  if (prepared !== undefined) {
    if (typeof prepared !== "boolean") {
      return invalid("preparedStatements", `preparedStatements must be true or false (got ${typeof prepared})`)
    }
    if (dialect !== "pg") return pgOnly("preparedStatements")
    if (prepared && reservedConnections === 0) {
      return invalid(
        "preparedStatements",
        "preparedStatements needs reserved connections: it cannot be true with reservedConnections 0"
      )
    }
  }
  return Either.right({
    names: { table, schema },
    migrate: options?.migrate ?? true,
    reservedConnections,
    preparedStatements: dialect === "pg" && reservedConnections > 0 && (prepared ?? true)
  })
}

const dialectOf = (sql: SqlClient.SqlClient): Either.Either<Dialect.Dialect, StoreError.StoreConfigError> =>
  sql.onDialectOrElse({
    pg: (): Either.Either<Dialect.Dialect, StoreError.StoreConfigError> => Either.right("pg"),
    mysql: (): Either.Either<Dialect.Dialect, StoreError.StoreConfigError> => Either.right("mysql"),
    sqlite: (): Either.Either<Dialect.Dialect, StoreError.StoreConfigError> => Either.right("sqlite"),
    orElse: (): Either.Either<Dialect.Dialect, StoreError.StoreConfigError> =>
      Either.left(
        new StoreError.StoreConfigError({
          reason: "UnsupportedDialect",
          store: "SqlStore",
          option: undefined,
          message: "SqlStore: the SqlClient's dialect is not supported (PostgreSQL, MySQL/MariaDB and SQLite are)"
        })
      )
  })

/**
 * `ddl` returns the statements that create the table and its indexes for a dialect, for apps that migrate with
 * their own tools (on PostgreSQL they also add the user key to a table made without it; on MySQL and SQLite
 * that takes the `ALTER TABLE` in the README); it fails like the layer on a name that is not a plain identifier.
 *
 * @since 0.1.0
 */
export const ddl = (
  dialect: Dialect.Dialect,
  options?: Pick<Options, "table" | "schema">
): Either.Either<ReadonlyArray<string>, StoreError.StoreConfigError> =>
  Either.map(resolve(dialect, options), (r) => Dialect.statements(dialect, r.names).ddl)

// ---------------------------------------------------------------------------------------------------------
// running statements

/** Attempts of a statement that failed with a deadlock, lock timeout or busy file (outside a transaction). */
const MAX_ATTEMPTS = 8

/** A pause on the real timer: retries must not wait on a `TestClock`. */
const pause = (attempt: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const ms = Math.min(200, 2 ** attempt) * (0.5 + Math.random())
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * `retrying` runs a single statement again when it failed without effect (deadlock, serialization failure,
 * lock wait, busy file). Inside the app's transaction it never retries: the transaction as a whole failed.
 */
const retrying = <A>(effect: Effect.Effect<A, SqlError>, attempt = 1): Effect.Effect<A, SqlError> =>
  Effect.catchAll(effect, (error) =>
    attempt >= MAX_ATTEMPTS || !Dialect.isTransient(error.cause)
      ? Effect.fail(error)
      : Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (
          tx
        ) => (Option.isSome(tx) ? Effect.fail(error) : Effect.zipRight(pause(attempt), retrying(effect, attempt + 1)))
      ))

/** A driver error as a `StoreError`; `StoreError.make` keeps the driver error's name and code only. */
const unavailable = (method: StoreError.Method) => (error: SqlError): StoreError.StoreError =>
  StoreError.make("Unavailable", method, error.cause ?? error)

const unexpectedResult = (method: StoreError.Method): StoreError.StoreError =>
  StoreError.make("Unavailable", method, { _tag: "UnexpectedDriverResult" })

type Row = Record<string, unknown>

// Callbacks on the hot paths below are hoisted or inline, so an operation allocates no named closures.
const createError = unavailable("create")
const saveError = unavailable("save")
const loadError = unavailable("load")
const deleteError = unavailable("delete")
const deleteExpiredError = unavailable("deleteExpired")
const listError = unavailable("list")
/** Ids per `DELETE` of a revoke on MySQL. */
const DELETE_CHUNK = 1_000
const revokeError = unavailable("revoke")

const makeBackend = (
  sql: SqlClient.SqlClient,
  st: Dialect.Statements,
  system: string,
  reservedConnections: number,
  preparedStatements: boolean,
  spans: boolean
): {
  readonly backend: SessionStore.Backend
  readonly batch: (limit: number, now: number) => Effect.Effect<number, StoreError.StoreError>
  readonly index: SessionIndex.Service
} => {
  // Rows without the client's name transforms (our column names are ours), and the raw driver result: through
  // reserved connections when the store has them, and through the statement path inside the app's transaction.
  const connections = reservedConnections > 0
    ? Connections.make(sql, reservedConnections, Dialect.isStatementError)
    : undefined
  const onConnection = <A>(
    text: string,
    statement: () => Effect.Effect<A, SqlError>,
    use: (connection: Connection) => Effect.Effect<A, SqlError>
  ): Effect.Effect<A, SqlError> =>
    connections === undefined
      ? Effect.suspend(statement)
      : Effect.withFiberRuntime((fiber) => {
        if (Option.isSome(Context.getOption(fiber.currentContext, SqlClient.TransactionConnection))) return statement()
        // the span `@effect/sql` makes on its statement path, when the app has a tracer
        return spanIfTraced(fiber, connections.run(use), "sql.execute", {
          kind: "client",
          attributes: { "db.system.name": system, "db.query.text": text },
          captureStackTrace: false
        })
      })
  // Postgres: the store's fixed statements are prepared on each connection under a name (`preparedStatements`).
  const names = new Map<string, string>(
    preparedStatements
      ? [st.load, st.create, st.save, st.current, st.delete, st.list, st.revoke].map((text) => [
        text,
        PgPrepared.nameOf(text)
      ])
      : []
  )
  const rows = (text: string, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Row>, SqlError> => {
    const base = names.get(text)
    return retrying(onConnection(
      text,
      () => sql.unsafe<Row>(text, params).withoutTransform,
      base !== undefined
        ? (connection) => PgPrepared.run(connection, text, base, params)
        : (connection) => connection.execute(text, params, undefined) as Effect.Effect<ReadonlyArray<Row>, SqlError>
    ))
  }
  const raw = (text: string, params: ReadonlyArray<unknown>): Effect.Effect<unknown, SqlError> =>
    retrying(
      onConnection(text, () => sql.unsafe(text, params).raw, (connection) => connection.executeRaw(text, params))
    )
  const mysql = st.dialect === "mysql"

  const collision = Effect.fail(StoreError.make("Collision", "create"))
  const conflict = Effect.fail(StoreError.make("Conflict", "save"))
  const gone = Effect.fail(StoreError.make("Gone", "save"))
  const none = Effect.succeed(Option.none<SessionRecord.SessionRecord>())

  // MySQL, after a duplicate key on INSERT: replace the row only if it has expired; zero rows is a Collision.
  const replaceExpired = (record: SessionRecord.SessionRecord, json: string, userKey: string | null, now: number) =>
    Effect.flatMap(
      Effect.mapError(
        raw(st.replaceExpired, [json, userKey, record.expiresAt, record.version, record.id, now]),
        createError
      ),
      (result) => {
        const n = Dialect.affectedRows(result)
        return n === undefined ? Effect.fail(unexpectedResult("create")) : n === 1 ? Effect.succeed(record) : collision
      }
    )

  // The user key comes from the data written, in the same statement: the index never disagrees with the row.
  const create = (record: SessionRecord.SessionRecord, json: string, now: number) => {
    const userKey = Binding.userKeyOf(record.data) ?? null
    return mysql
      ? Effect.catchAll(
        Effect.as(raw(st.create, [record.id, json, userKey, record.expiresAt, record.version]), record),
        (error) =>
          Dialect.isDuplicateKey(error.cause)
            ? replaceExpired(record, json, userKey, now)
            : Effect.fail(createError(error))
      )
      : Effect.flatMap(
        Effect.mapError(
          rows(st.create, [record.id, json, userKey, record.expiresAt, record.version, now]),
          createError
        ),
        (written) => (written.length === 1 ? Effect.succeed(record) : collision)
      )
  }

  // After a compare-and-set: one row written is the saved record; none means a live record with another
  // version won (Conflict) or there is no live record (Gone).
  const saved = (record: SessionRecord.SessionRecord, now: number, written: number | undefined) =>
    written === 1
      ? Effect.succeed<SessionRecord.SessionRecord>({
        id: record.id,
        data: record.data,
        expiresAt: record.expiresAt,
        version: record.version + 1
      })
      : written === undefined
      ? Effect.fail(unexpectedResult("save"))
      : Effect.flatMap(
        Effect.mapError(rows(st.current, [record.id, now]), saveError),
        (found) => (found.length > 0 ? conflict : gone)
      )

  const save = (record: SessionRecord.SessionRecord, json: string, now: number) => {
    const params = [json, Binding.userKeyOf(record.data) ?? null, record.expiresAt, record.id, record.version, now]
    return mysql
      ? Effect.flatMap(
        Effect.mapError(raw(st.save, params), saveError),
        (result) => saved(record, now, Dialect.affectedRows(result))
      )
      : Effect.flatMap(
        Effect.mapError(rows(st.save, params), saveError),
        (written) => saved(record, now, written.length)
      )
  }

  const load = (id: SessionRecord.SessionRecord["id"], now: number) =>
    Effect.flatMap(Effect.mapError(rows(st.load, [id, now]), loadError), (found) => {
      if (found.length === 0) return none
      const row = found[0]
      const decoded = SessionRecord.decodeStoredEither({
        id,
        data: row.data,
        expiresAt: row.expires_at,
        version: row.version
      })
      return Either.isRight(decoded)
        ? Effect.succeed(Option.some(decoded.right))
        : Effect.fail(StoreError.rule("Decode", "load", decoded.left))
    })

  const remove = (id: SessionRecord.SessionRecord["id"]) =>
    Effect.asVoid(Effect.mapError(rows(st.delete, [id]), deleteError))

  const batch = (limit: number, now: number): Effect.Effect<number, StoreError.StoreError> => {
    const text = st.deleteExpired(limit)
    switch (st.dialect) {
      case "pg":
        return Effect.map(
          Effect.mapError(rows(text, [now]), deleteExpiredError),
          (r) => Number(r[0]?.n ?? 0)
        )
      case "sqlite":
        return Effect.map(Effect.mapError(rows(text, [now]), deleteExpiredError), (r) => r.length)
      case "mysql":
        return Effect.flatMap(Effect.mapError(raw(text, [now]), deleteExpiredError), (r) => {
          const n = Dialect.affectedRows(r)
          return n === undefined ? Effect.fail(unexpectedResult("deleteExpired")) : Effect.succeed(n)
        })
    }
  }

  // The index: the rows whose user key is the user's, each decoded and checked against its own data (a row
  // that does not decode, or whose data names someone else, is skipped).
  const list = (userId: string, userKey: string, now: number) =>
    Effect.map(Effect.mapError(rows(st.list, [userKey, now]), listError), (found) => {
      const entries: Array<SessionIndex.Entry> = []
      for (const row of found) {
        const decoded = SessionRecord.decodeStoredEither({
          id: row.id,
          data: row.data,
          expiresAt: row.expires_at,
          version: row.version
        })
        if (Either.isLeft(decoded)) continue
        const r = decoded.right
        const entry = Binding.entryOf(r.id, r.data, r.expiresAt, userId)
        if (entry !== undefined) entries.push(entry)
      }
      return entries
    })

  const liveIds = (deleted: ReadonlyArray<Row>, now: number): ReadonlyArray<SessionId> => {
    const ids: Array<SessionId> = []
    for (const row of deleted) if (Number(row.expires_at) > now) ids.push(row.id as SessionId)
    return ids
  }

  // Postgres and SQLite: one `DELETE ... RETURNING`. A save racing it is a compare-and-set `UPDATE` of the same
  // row: it either committed first (and the delete, which re-reads a row it waited for, still sees the user's
  // key unless the save rebound it) or finds no row and is `Gone`.
  // MySQL/MariaDB (MySQL has no `DELETE ... RETURNING`): in one transaction, a locking read of the user's rows,
  // which reads the latest committed versions and holds them until the delete of those ids commits, so no save
  // lands in between and nothing committed before the revoke began is missed.
  const revokeIds = (userKey: string, except: SessionId | undefined, now: number) => {
    const params = [userKey, except ?? ""]
    if (!mysql) return Effect.map(Effect.mapError(rows(st.revoke, params), revokeError), (r) => liveIds(r, now))
    const locked = Effect.flatMap(sql.unsafe<Row>(st.lockUser, params).withoutTransform, (found) => {
      // in chunks: a prepared statement takes at most 65,535 parameters
      const chunks: Array<ReadonlyArray<unknown>> = []
      for (let i = 0; i < found.length; i += DELETE_CHUNK) {
        chunks.push(found.slice(i, i + DELETE_CHUNK).map((row) => row.id))
      }
      return Effect.as(
        Effect.forEach(chunks, (ids) => sql.unsafe(st.deleteIds(ids.length), ids).raw, { discard: true }),
        found
      )
    })
    return Effect.map(Effect.mapError(retrying(sql.withTransaction(locked)), revokeError), (r) => liveIds(r, now))
  }

  const spanOptions = { kind: "client", attributes: { "db.system.name": system }, captureStackTrace: false } as const
  const index = IndexService.make("SqlStore", { spans, span: spanOptions }, { list, revokeIds })

  return {
    backend: { name: "SqlStore", system, create, save, load, delete: remove },
    batch,
    index
  }
}

// ---------------------------------------------------------------------------------------------------------
// migration

const runMigration = (
  sql: SqlClient.SqlClient,
  st: Dialect.Statements,
  names: Dialect.Names
): Effect.Effect<void, StoreError.StoreError> => {
  const exec = (text: string, params: ReadonlyArray<unknown> = []) => sql.unsafe<Row>(text, params).withoutTransform
  const all = (texts: ReadonlyArray<string>) => Effect.forEach(texts, (text) => exec(text), { discard: true })
  // A step another instance took between our check and our statement fails as a duplicate: it is done.
  const unlessPresent = (present: Effect.Effect<ReadonlyArray<Row>, SqlError>, text: string) =>
    retrying(Effect.flatMap(present, (found) =>
      found.length > 0
        ? Effect.void
        : Effect.catchIf(Effect.asVoid(exec(text)), (e) => Dialect.isAlreadyMigrated(e.cause), () => Effect.void)))
  let migration: Effect.Effect<void, SqlError>
  switch (st.dialect) {
    // Postgres: concurrent `CREATE TABLE IF NOT EXISTS` can fail, so instances take turns under an advisory
    // lock. The column is looked up first: `ALTER TABLE` takes the table's strongest lock even when it has
    // nothing to do, which would stall the app's sessions at every start.
    case "pg":
      migration = sql.withTransaction(
        Effect.zipRight(
          exec(Dialect.pgMigrationLock),
          Effect.zipRight(
            all(st.createTable),
            Effect.flatMap(
              exec(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'user_key' " +
                  "AND NOT attisdropped",
                [st.qualified]
              ),
              (found) => found.length > 0 ? exec(st.userKeyIndex) : all([st.addUserKey, st.userKeyIndex])
            )
          )
        )
      )
      break
    // MySQL and SQLite: `CREATE ... IF NOT EXISTS` is safe to run concurrently; neither has `ADD COLUMN IF NOT
    // EXISTS` (MySQL has no `CREATE INDEX IF NOT EXISTS` either), so those steps check the catalog first.
    case "mysql":
      migration = Effect.zipRight(
        retrying(all(st.createTable)),
        Effect.zipRight(
          unlessPresent(
            exec(
              "SELECT 1 FROM information_schema.columns " +
                "WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'user_key'",
              [names.table]
            ),
            st.addUserKey
          ),
          unlessPresent(
            exec(
              "SELECT 1 FROM information_schema.statistics " +
                "WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
              [names.table, st.userKeyIndexName]
            ),
            st.userKeyIndex
          )
        )
      )
      break
    case "sqlite":
      migration = Effect.zipRight(
        retrying(all(st.createTable)),
        Effect.zipRight(
          unlessPresent(
            exec("SELECT 1 FROM pragma_table_info(?) WHERE name = 'user_key'", [names.table]),
            st.addUserKey
          ),
          retrying(exec(st.userKeyIndex))
        )
      )
      break
  }
  return Effect.mapError(migration, unavailable("migrate"))
}

const systemOf = (sql: SqlClient.SqlClient, dialect: Dialect.Dialect): Effect.Effect<string, StoreError.StoreError> => {
  switch (dialect) {
    case "pg":
      return Effect.succeed("postgresql")
    case "sqlite":
      return Effect.succeed("sqlite")
    case "mysql":
      return Effect.mapError(
        Effect.map(
          sql.unsafe<Row>("SELECT VERSION() AS v").withoutTransform,
          (r) => (typeof r[0]?.v === "string" && r[0].v.toLowerCase().includes("mariadb") ? "mariadb" : "mysql")
        ),
        unavailable("migrate")
      )
  }
}

const prepare = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const dialect = yield* dialectOf(sql)
  return { sql, dialect }
})

/**
 * `migrate` creates the table and its indexes when missing, and adds the user key column and its index to a
 * table made without them; it is idempotent and safe to run from several instances at once (Postgres: inside a
 * transaction under an advisory lock; MySQL and SQLite: a step another instance took first counts as done).
 *
 * @since 0.1.0
 */
export const migrate = (
  options?: Pick<Options, "table" | "schema">
): Effect.Effect<void, StoreError.StoreConfigError | StoreError.StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(
    prepare,
    ({ dialect, sql }) =>
      Effect.flatMap(resolve(dialect, options), (r) => runMigration(sql, Dialect.statements(dialect, r.names), r.names))
  )

/**
 * `make` builds the store on the provided `SqlClient`, after running the migration unless `migrate` is `false`.
 * It fails with `StoreConfigError` on a name that is not a plain identifier or an unsupported dialect, before any
 * statement runs.
 *
 * @since 0.1.0
 */
export const make = (
  options?: Options
): Effect.Effect<Service, StoreError.StoreConfigError | StoreError.StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { dialect, sql } = yield* prepare
    const resolved = yield* resolve(dialect, options)
    const st = Dialect.statements(dialect, resolved.names)
    if (resolved.migrate) yield* runMigration(sql, st, resolved.names)
    const system = yield* systemOf(sql, dialect)
    const { backend, batch, index } = makeBackend(
      sql,
      st,
      system,
      resolved.reservedConnections,
      resolved.preparedStatements,
      options?.spans ?? true
    )
    const store = SessionStore.make(backend, { maxDataBytes: options?.maxDataBytes, spans: options?.spans })
    return { store, expiredDeletion: SessionStore.expiredDeletionInBatches(batch), dialect, index }
  })

const contextOf = (service: Service) =>
  Context.add(SessionStore.expiredDeletionContext(service), SessionIndex.SessionIndex, service.index)

/**
 * `layer` provides `SessionStore`, `ExpiredDeletion` and `SessionIndex` on the app's `SqlClient`.
 * Warning: the table and schema names are checked as plain identifiers because `@effect/sql-mysql2` runs
 * multiple statements per query; never build them from user input all the same.
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  StoreError.StoreConfigError | StoreError.StoreError,
  SqlClient.SqlClient
> => Layer.effectContext(Effect.map(make(options), contextOf))

/**
 * `layerConfig` is `layer` with its options read from `Config`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex,
  ConfigError.ConfigError | StoreError.StoreConfigError | StoreError.StoreError,
  SqlClient.SqlClient
> => Layer.effectContext(Effect.flatMap(Config.unwrap(config), (options) => Effect.map(make(options), contextOf)))

/**
 * Options of `layerInvalidation`.
 *
 * @since 0.1.0
 */
export interface InvalidationOptions extends Invalidation.ChannelOptions {
  /**
   * The `LISTEN`/`NOTIFY` channel; every instance sharing the table must use the same. Default
   * `effect_sessions_invalidation`. A plain identifier, as `table`.
   */
  readonly channel?: string | undefined
}

/**
 * `layerInvalidation` provides an invalidation channel on PostgreSQL `LISTEN`/`NOTIFY` (for
 * `CachingStore.layer`'s `invalidation`) through the app's `@effect/sql-pg` client: `pg_notify` through the
 * client (inside the app's transaction, if any: delivered at commit), `LISTEN` on its dedicated listening
 * connection. Construction fails with `StoreConfigError` on a client that
 * is not `@effect/sql-pg`'s (`UnsupportedDialect`) or a refused option, and with `Unavailable` when no
 * subscription works within `connectTimeout`.
 *
 * @since 0.1.0
 */
export const layerInvalidation = (
  options?: InvalidationOptions
): Layer.Layer<
  Invalidation.Invalidation,
  StoreError.StoreError | StoreError.StoreConfigError,
  SqlClient.SqlClient
> =>
  Layer.scoped(
    Invalidation.Invalidation,
    Effect.gen(function*() {
      yield* InvalidationCore.checkOptions("SqlStore", options)
      const channel = options?.channel ?? InvalidationPg.DEFAULT_CHANNEL
      const badChannel = Dialect.checkIdentifier("channel name", channel)
      if (badChannel !== undefined) return yield* StoreError.invalidOption("SqlStore", "channel", badChannel)
      const sql = yield* SqlClient.SqlClient
      const client = InvalidationPg.listening(sql)
      if (client === undefined) {
        return yield* new StoreError.StoreConfigError({
          reason: "UnsupportedDialect",
          store: "SqlStore",
          option: undefined,
          message: "SqlStore: layerInvalidation needs @effect/sql-pg's PgClient (LISTEN/NOTIFY on PostgreSQL)"
        })
      }
      return yield* InvalidationCore.make(
        "SqlStore invalidation channel",
        InvalidationPg.transport(
          client,
          channel,
          Math.max(1, Duration.toMillis(options?.publishTimeout ?? Invalidation.DEFAULT_PUBLISH_TIMEOUT))
        ),
        options
      )
    })
  )
