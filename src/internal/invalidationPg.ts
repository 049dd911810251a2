/**
 * The PostgreSQL transport of the invalidation channel: `NOTIFY` through the client's pool and `LISTEN` on
 * the dedicated connection of `@effect/sql-pg`'s `listen`. That client does not report a listening connection
 * it lost, so on PostgreSQL a lost subscription is noticed by the channel's heartbeat alone.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as StoreError from "../StoreError.js"
import type { Transport } from "./invalidation.js"

/** The default channel name. */
export const DEFAULT_CHANNEL = "effect_sessions_invalidation"

/** What `@effect/sql-pg`'s `PgClient` adds to a `SqlClient`, as far as the channel needs it. */
interface Notifying {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError>
}

/** `notifying(sql)` is the client's `listen` / `notify` when it has them (`@effect/sql-pg`), else `undefined`. */
export const notifying = (sql: SqlClient.SqlClient): Notifying | undefined => {
  const candidate = sql as SqlClient.SqlClient & Partial<Notifying>
  return typeof candidate.listen === "function" && typeof candidate.notify === "function"
    ? (candidate as Notifying)
    : undefined
}

/** `transport(client, channel)` publishes with `NOTIFY` and subscribes with `LISTEN`. */
export const transport = (client: Notifying, channel: string): Transport => ({
  publish: (payload) =>
    Effect.mapError(client.notify(channel, payload), (error) => StoreError.make("Unavailable", "publish", error)),
  messages: Stream.mapError(client.listen(channel), (error) => StoreError.make("Unavailable", "subscribe", error))
})
