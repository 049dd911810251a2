/**
 * Named prepared statements on PostgreSQL, for the statements SqlStore sends on its reserved connections.
 *
 * `@effect/sql-pg` sends every statement unnamed: the server parses, analyses and plans it each time, which
 * for a primary-key lookup is most of the server's work (bench/README.md). `sqlx`, under tower-sessions,
 * prepares and caches its statements per connection the same way, and `@effect/sql-mysql2` already does
 * (mysql2's `execute`).
 *
 * `@effect/sql`'s `Connection` has no way to name a statement, so this module sends the statement on the `pg`
 * client behind a connection reserved from `@effect/sql-pg` (its `pg` field), with the same callback and the
 * same `SqlError` as `@effect/sql-pg` uses. When the connection has no such client (another driver, another
 * version of `@effect/sql-pg`), the statement goes through `Connection.execute` unnamed.
 *
 * The server can forget a statement the client believes prepared (`DISCARD ALL`, a pooler that moved the
 * client to another server) or refuse to run it (`cached plan must not change result type` after a column
 * changed type). Then the statement runs again, once, under a new name, which `pg` prepares afresh; a client
 * that keeps losing its statements (a transaction-mode pooler) gets unnamed statements from then on.
 *
 * @internal
 */
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { driverCode } from "./sqlDialect.js"

/** What this module uses of a `pg` `Client`. */
interface PgDriverClient {
  readonly query: (
    config: { readonly name: string; readonly text: string; readonly values: ReadonlyArray<unknown> },
    callback: (error: unknown, result: { readonly rows?: ReadonlyArray<Record<string, unknown>> } | undefined) => void
  ) => unknown
}

/**
 * `pgClientOf(connection)` is the `pg` `Client` behind a connection `@effect/sql-pg` reserved, or `undefined`
 * when the connection has none (a `pg` `Pool` has no `connection` of its own and is not taken).
 *
 * @internal
 */
export const pgClientOf = (connection: Connection): PgDriverClient | undefined => {
  const client: unknown = (connection as { readonly pg?: unknown }).pg
  if (typeof client !== "object" || client === null) return undefined
  const c = client as { readonly query?: unknown; readonly connection?: unknown }
  return typeof c.query === "function" && typeof c.connection === "object" && c.connection !== null
    ? (client as PgDriverClient)
    : undefined
}

/**
 * Server errors after which the statement runs again under a new name: `26000` invalid_sql_statement_name (the
 * server has no statement of that name), `42P05` duplicate_prepared_statement, `0A000` (`cached plan must not
 * change result type`).
 */
const REPREPARE_CODES: ReadonlySet<string> = new Set(["26000", "42P05", "0A000"])

/**
 * Statements re-prepared on one client before it gets unnamed statements for good.
 *
 * @internal
 */
export const MAX_REPREPARES = 3

/** Per `pg` client: the suffix of the names in use, which is also how many times they were lost. */
interface ClientState {
  generation: number
}

/** Each `pg` client's names; a client is dropped with its connection. */
const clients = new WeakMap<PgDriverClient, ClientState>()

/**
 * `nameOf(text)` is the base name of a statement: `effect_sessions_` and 16 hex digits of its SHA-256, the
 * same in every process, never the text itself.
 *
 * @internal
 */
export const nameOf = (text: string): string =>
  `effect_sessions_${createHash("sha256").update(text).digest("hex").slice(0, 16)}`

const failed = (cause: unknown): SqlError => new SqlError({ cause, message: "Failed to execute statement" })

const send = (
  client: PgDriverClient,
  name: string,
  text: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError> =>
  Effect.async((resume) => {
    try {
      client.query({ name, text, values }, (error, result) => {
        resume(error ? Effect.fail(failed(error)) : Effect.succeed(result?.rows ?? []))
      })
    } catch (cause) {
      resume(Effect.fail(failed(cause)))
    }
  })

/**
 * `Prepared` runs one statement on a reserved connection, prepared under `base` when the connection has a `pg`
 * client, unnamed through `Connection.execute` otherwise.
 *
 * @internal
 */
export type Prepared = (
  connection: Connection,
  text: string,
  base: string,
  values: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

const unnamed = (connection: Connection, text: string, values: ReadonlyArray<unknown>) =>
  connection.execute(text, values, undefined) as Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

/** @internal */
export const run: Prepared = (connection, text, base, values) => {
  const client = pgClientOf(connection)
  if (client === undefined) return unnamed(connection, text, values)
  let state = clients.get(client)
  if (state === undefined) {
    state = { generation: 0 }
    clients.set(client, state)
  }
  const current = state
  const generation = current.generation
  if (generation > MAX_REPREPARES) return unnamed(connection, text, values)
  return Effect.catchIf(send(client, `${base}_${generation}`, text, values), lostStatement, () => {
    // Another statement on this client may have moved the names on already.
    if (current.generation === generation) current.generation++
    return current.generation > MAX_REPREPARES
      ? unnamed(connection, text, values)
      : send(client, `${base}_${current.generation}`, text, values)
  })
}

const lostStatement = (error: SqlError): boolean => {
  const code = driverCode(error.cause)
  return code !== undefined && REPREPARE_CODES.has(code)
}
