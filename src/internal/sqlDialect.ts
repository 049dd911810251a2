/**
 * The SQL of `SqlStore`, per dialect: identifier checks, the DDL, the statement texts, and how a
 * driver's error codes read. Everything here is pure; `SqlStore` runs it through the app's `SqlClient`.
 *
 * Statements take their parameters in the same order on every dialect (only the placeholder differs),
 * so the code that runs them is written once:
 *
 * | statement        | parameters                              | result                                 |
 * | ---------------- | --------------------------------------- | -------------------------------------- |
 * | `load`           | id, now                                 | rows `data, expires_at, version`       |
 * | `create`         | id, data, userKey, expiresAt, version, now | pg/sqlite: a row when written; mysql: plain `INSERT` |
 * | `replaceExpired` | data, userKey, expiresAt, version, id, now | mysql only: affected rows           |
 * | `save`           | data, userKey, expiresAt, id, version, now | pg/sqlite: a row when written; mysql: affected rows |
 * | `current`        | id, now                                 | rows `version` of the live record      |
 * | `delete`         | id                                      | -                                      |
 * | `deleteExpired`  | now (the batch size is a literal)       | pg: row `n`; sqlite: one row per record; mysql: affected rows |
 * | `list`           | userKey, now                            | rows `id, data, expires_at, version`   |
 * | `revoke`         | userKey, except (`''` for none)         | pg/sqlite: rows `id, expires_at` deleted; mysql: none (see `lockUser`) |
 * | `lockUser`       | userKey, except (`''` for none)         | mysql only: rows `id, expires_at`, locked (`FOR UPDATE`) |
 *
 * `user_key` is `SessionIndex.userKey` of the user the record's data is bound to, `NULL` when it is bound to no
 * one (a moved session's tombstone included); every write sets it from the data it writes, in the same statement.
 *
 * @internal
 */

/** @internal */
export type Dialect = "pg" | "mysql" | "sqlite"

/** @internal */
export const DEFAULT_TABLE = "effect_sessions"

/**
 * Longest accepted table or schema name: leaves room for the index name within every dialect's limit (63/64).
 *
 * @internal
 */
export const MAX_IDENTIFIER_LENGTH = 48

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * `checkIdentifier` names what is wrong with a table or schema name, or is `undefined` for a plain
 * identifier (a letter or `_`, then letters, digits and `_`, at most 48 characters).
 *
 * @internal
 */
export const checkIdentifier = (what: string, value: unknown): string | undefined => {
  if (typeof value !== "string") return `${what} must be a string`
  if (value.length === 0) return `${what} must not be empty`
  if (value.length > MAX_IDENTIFIER_LENGTH || !identifierPattern.test(value)) {
    // JSON.stringify escapes control characters, so a hostile name cannot forge log lines.
    return `${what} ${JSON.stringify(value.slice(0, 80))} is not a plain identifier ` +
      `(a letter or _, then letters, digits or _, at most ${MAX_IDENTIFIER_LENGTH} characters)`
  }
  return undefined
}

/** @internal */
export interface Names {
  readonly table: string
  readonly schema: string | undefined
}

/** @internal */
export interface Statements {
  readonly dialect: Dialect
  /** The quoted, qualified table name. */
  readonly qualified: string
  /**
   * The DDL of a new table, with its indexes: idempotent statements, run in order (Postgres: inside a
   * transaction under `migrationLock`). On Postgres it also adds the user key to a table made without it.
   */
  readonly ddl: ReadonlyArray<string>
  /** The table and its expiry index, as `ddl` creates them (the table with its user key column). */
  readonly createTable: ReadonlyArray<string>
  /** Adds the user key column to a table made without it (Postgres: `IF NOT EXISTS`). */
  readonly addUserKey: string
  /** Creates the user key's index (Postgres and SQLite: `IF NOT EXISTS`). */
  readonly userKeyIndex: string
  /** The user key index's name, unquoted. */
  readonly userKeyIndexName: string
  readonly load: string
  readonly create: string
  readonly replaceExpired: string
  readonly save: string
  readonly current: string
  readonly delete: string
  readonly deleteExpired: (limit: number) => string
  readonly list: string
  readonly revoke: string
  readonly lockUser: string
  /** MySQL: deletes the rows of the given ids (as many placeholders as ids). */
  readonly deleteIds: (count: number) => string
}

const quoteWith = (q: string) => (name: string): string => q + name.split(q).join(q + q) + q

/**
 * `statements` builds every statement of one table in one dialect. Names must have passed `checkIdentifier`
 * (they are quoted all the same).
 *
 * @internal
 */
export const statements = (dialect: Dialect, names: Names): Statements => {
  const quote = quoteWith(dialect === "mysql" ? "`" : "\"")
  const t = names.schema !== undefined ? `${quote(names.schema)}.${quote(names.table)}` : quote(names.table)
  const index = quote(`${names.table}_expires_at_idx`)
  let n = 0
  // Placeholders in order of appearance; each statement restarts the count.
  const p = (): string => (dialect === "pg" ? `$${++n}` : "?")
  const stmt = (build: () => string): string => {
    n = 0
    return build()
  }

  const userKeyIndexName = `${names.table}_user_key_idx`
  const userIndex = quote(userKeyIndexName)
  const createTable: Array<string> = []
  let addUserKey: string
  let userKeyIndex: string
  switch (dialect) {
    case "pg":
      if (names.schema !== undefined) createTable.push(`CREATE SCHEMA IF NOT EXISTS ${quote(names.schema)}`)
      createTable.push(
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
          `  id text COLLATE "C" PRIMARY KEY,\n` +
          `  data jsonb NOT NULL,\n` +
          `  expires_at bigint NOT NULL,\n` +
          `  version bigint NOT NULL,\n` +
          `  user_key text COLLATE "C"\n` +
          `)`,
        `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at)`
      )
      addUserKey = `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS user_key text COLLATE "C"`
      // Partial: unbound sessions, often most of them, cost the index nothing.
      userKeyIndex = `CREATE INDEX IF NOT EXISTS ${userIndex} ON ${t} (user_key) WHERE user_key IS NOT NULL`
      break
    case "mysql":
      createTable.push(
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
          `  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,\n` +
          `  data JSON NOT NULL,\n` +
          `  expires_at BIGINT NOT NULL,\n` +
          `  version BIGINT NOT NULL,\n` +
          `  user_key VARCHAR(43) CHARACTER SET ascii COLLATE ascii_bin NULL,\n` +
          `  INDEX ${index} (expires_at),\n` +
          `  INDEX ${userIndex} (user_key)\n` +
          `) ENGINE=InnoDB`
      )
      // MySQL has no `ADD COLUMN IF NOT EXISTS`: the migration checks information_schema first.
      addUserKey = `ALTER TABLE ${t} ADD COLUMN user_key VARCHAR(43) CHARACTER SET ascii COLLATE ascii_bin NULL`
      userKeyIndex = `CREATE INDEX ${userIndex} ON ${t} (user_key)`
      break
    case "sqlite":
      createTable.push(
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
          `  id TEXT NOT NULL PRIMARY KEY,\n` +
          `  data TEXT NOT NULL,\n` +
          `  expires_at INTEGER NOT NULL,\n` +
          `  version INTEGER NOT NULL,\n` +
          `  user_key TEXT\n` +
          `) WITHOUT ROWID`,
        `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at)`
      )
      // SQLite has no `ADD COLUMN IF NOT EXISTS`: the migration reads `pragma table_info` first.
      addUserKey = `ALTER TABLE ${t} ADD COLUMN user_key TEXT`
      userKeyIndex = `CREATE INDEX IF NOT EXISTS ${userIndex} ON ${t} (user_key) WHERE user_key IS NOT NULL`
      break
  }
  const ddl = dialect === "pg"
    ? [...createTable, addUserKey, userKeyIndex]
    : dialect === "sqlite"
    ? [...createTable, userKeyIndex]
    : createTable

  const returning = dialect === "mysql" ? "" : " RETURNING version"

  return {
    dialect,
    qualified: t,
    ddl,
    createTable,
    addUserKey,
    userKeyIndex,
    userKeyIndexName,
    load: stmt(() => `SELECT data, expires_at, version FROM ${t} WHERE id = ${p()} AND expires_at > ${p()}`),
    // pg/sqlite: one statement; an existing row is replaced only when expired, else nothing is returned.
    // mysql: a plain INSERT; on a duplicate key, `replaceExpired` follows.
    create: stmt(() =>
      dialect === "mysql"
        ? `INSERT INTO ${t} (id, data, user_key, expires_at, version) VALUES (${p()}, ${p()}, ${p()}, ${p()}, ${p()})`
        : `INSERT INTO ${t} AS cur (id, data, user_key, expires_at, version) ` +
          `VALUES (${p()}, ${p()}, ${p()}, ${p()}, ${p()}) ` +
          `ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_key = excluded.user_key, ` +
          `expires_at = excluded.expires_at, version = excluded.version WHERE cur.expires_at <= ${p()}${returning}`
    ),
    replaceExpired: stmt(() =>
      `UPDATE ${t} SET data = ${p()}, user_key = ${p()}, expires_at = ${p()}, version = ${p()} ` +
      `WHERE id = ${p()} AND expires_at <= ${p()}`
    ),
    // The version always changes, so mysql's affected-row count (FOUND_ROWS or not) is exact.
    save: stmt(() =>
      `UPDATE ${t} SET data = ${p()}, user_key = ${p()}, expires_at = ${p()}, version = version + 1 ` +
      `WHERE id = ${p()} AND version = ${p()} AND expires_at > ${p()}${returning}`
    ),
    current: stmt(() => `SELECT version FROM ${t} WHERE id = ${p()} AND expires_at > ${p()}`),
    delete: stmt(() => `DELETE FROM ${t} WHERE id = ${p()}`),
    deleteExpired: (limit) => {
      const l = Math.max(1, Math.floor(limit))
      switch (dialect) {
        case "pg":
          return `WITH deleted AS (DELETE FROM ${t} WHERE id IN ` +
            `(SELECT id FROM ${t} WHERE expires_at <= $1 LIMIT ${l} FOR UPDATE SKIP LOCKED) RETURNING 1) ` +
            `SELECT count(*)::int AS n FROM deleted`
        case "mysql":
          return `DELETE FROM ${t} WHERE expires_at <= ? LIMIT ${l}`
        case "sqlite":
          return `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE expires_at <= ? LIMIT ${l}) RETURNING 1`
      }
    },
    // `expires_at + 0` keeps the planner off the expiry index: without statistics (a freshly loaded table)
    // Postgres would intersect the user's few rows with every live session's entry in it.
    list: stmt(() =>
      `SELECT id, data, expires_at, version FROM ${t} WHERE user_key = ${p()} AND expires_at + 0 > ${p()}`
    ),
    revoke: stmt(() => `DELETE FROM ${t} WHERE user_key = ${p()} AND id <> ${p()} RETURNING id, expires_at`),
    lockUser: stmt(() => `SELECT id, expires_at FROM ${t} WHERE user_key = ${p()} AND id <> ${p()} FOR UPDATE`),
    deleteIds: (count) => `DELETE FROM ${t} WHERE id IN (${Array.from({ length: count }, () => "?").join(", ")})`
  }
}

/**
 * Postgres' migration lock: one advisory transaction lock for every effect-sessions migration in the database
 * (concurrent `CREATE TABLE IF NOT EXISTS` or `CREATE SCHEMA IF NOT EXISTS` can fail on a unique violation).
 *
 * @internal
 */
export const pgMigrationLock = "SELECT pg_advisory_xact_lock(hashtext('effect-sessions'), hashtext('migrate'))"

/**
 * `driverCode` reads a driver error's code: Postgres' SQLSTATE, mysql2's `code` (`ER_DUP_ENTRY`),
 * better-sqlite3's extended code (`SQLITE_CONSTRAINT_PRIMARYKEY`).
 *
 * @internal
 */
export const driverCode = (cause: unknown): string | undefined => {
  if (typeof cause === "object" && cause !== null && "code" in cause) {
    const code = (cause as { readonly code: unknown }).code
    if (typeof code === "string") return code
  }
  return undefined
}

const duplicateCodes = new Set([
  "23505", // pg unique_violation
  "ER_DUP_ENTRY", // mysql 1062
  "SQLITE_CONSTRAINT_PRIMARYKEY",
  "SQLITE_CONSTRAINT_UNIQUE"
])

/**
 * Errors after which the statement had no effect and may simply run again (outside a transaction):
 * deadlocks, serialization failures, lock waits, a busy SQLite file.
 */
const transientCodes = new Set([
  "40P01", // pg deadlock_detected
  "40001", // pg serialization_failure
  "55P03", // pg lock_not_available
  "ER_LOCK_DEADLOCK", // mysql 1213
  "ER_LOCK_WAIT_TIMEOUT", // mysql 1205
  "SQLITE_BUSY",
  "SQLITE_BUSY_SNAPSHOT",
  "SQLITE_BUSY_RECOVERY",
  "SQLITE_LOCKED"
])

/** @internal */
export const isDuplicateKey = (cause: unknown): boolean => {
  const code = driverCode(cause)
  return code !== undefined && duplicateCodes.has(code)
}

/** @internal */
export const isTransient = (cause: unknown): boolean => {
  const code = driverCode(cause)
  return code !== undefined && transientCodes.has(code)
}

/**
 * `affectedRows` reads mysql2's result header (`.raw` of a write), or `undefined` for anything else.
 *
 * @internal
 */
export const affectedRows = (raw: unknown): number | undefined => {
  if (typeof raw === "object" && raw !== null && "affectedRows" in raw) {
    const n = (raw as { readonly affectedRows: unknown }).affectedRows
    if (typeof n === "number") return n
  }
  return undefined
}

/**
 * `isStatementError` is true for an error the server reported about the statement itself (a constraint, a
 * missing table, a deadlock), after which the connection is fine; anything else (a lost connection, a server
 * shutting down, a driver error with no SQL state) means the connection may be broken.
 *
 * @internal
 */
export const isStatementError = (cause: unknown): boolean => {
  if (typeof cause !== "object" || cause === null) return false
  const error = cause as { readonly severity?: unknown; readonly sqlState?: unknown; readonly fatal?: unknown }
  const code = driverCode(cause)
  // pg: a server error has a severity and a SQLSTATE; class 08 (connection exception) and 57P (shutdown,
  // crash, cannot connect now) concern the connection.
  if (typeof error.severity === "string" && code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    return !code.startsWith("08") && !code.startsWith("57P")
  }
  // mysql2: a server error has a SQL state; `fatal` marks errors that closed the connection.
  if (typeof error.sqlState === "string") return error.fatal !== true
  return false
}

/**
 * `isAlreadyMigrated` is true for the error of a migration step another instance took first: MySQL's
 * duplicate column (1060) or duplicate key name (1061), SQLite's "duplicate column name" (its code is the
 * generic `SQLITE_ERROR`, so the message tells).
 *
 * @internal
 */
export const isAlreadyMigrated = (cause: unknown): boolean => {
  const code = driverCode(cause)
  if (code === "ER_DUP_FIELDNAME" || code === "ER_DUP_KEYNAME") return true
  if (code === "SQLITE_ERROR" && typeof cause === "object" && cause !== null && "message" in cause) {
    const message = (cause as { readonly message: unknown }).message
    return typeof message === "string" && message.startsWith("duplicate column name")
  }
  return false
}
