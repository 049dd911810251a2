/**
 * The PostgreSQL transport of the invalidation channel: `pg_notify` through the client (inside the app's
 * transaction, if any, so that it is delivered at commit) and `LISTEN` on the dedicated connection of
 * `@effect/sql-pg`'s `listen`. That client does not report a listening connection it lost, so on PostgreSQL a
 * lost subscription is noticed by the channel's heartbeat alone. (Its `notify` sends `NOTIFY channel, $1`,
 * which PostgreSQL refuses: `NOTIFY` takes no parameters.)
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
interface Listening extends SqlClient.SqlClient {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/** `listening(sql)` is the client when it has `listen` (`@effect/sql-pg`), else `undefined`. */
export const listening = (sql: SqlClient.SqlClient): Listening | undefined => {
  const candidate = sql as SqlClient.SqlClient & Partial<Listening>
  return typeof candidate.listen === "function" ? (candidate as Listening) : undefined
}

/** `transport(client, channel, publishTimeout)` publishes with `pg_notify` and subscribes with `LISTEN`. */
export const transport = (client: Listening, channel: string, publishTimeout: number): Transport => ({
  publish: (payload) =>
    client`SELECT pg_notify(${channel}, ${payload})`.pipe(
      Effect.asVoid,
      Effect.mapError((error) => StoreError.make("Unavailable", "publish", error)),
      Effect.timeoutFail({
        duration: publishTimeout,
        onTimeout: () =>
          StoreError.make(
            "Unavailable",
            "publish",
            new StoreError.RedactedCause({ name: "Timeout", code: "DEADLINE", rule: undefined })
          )
      })
    ),
  messages: Stream.mapError(client.listen(channel), (error) => StoreError.make("Unavailable", "subscribe", error))
})
