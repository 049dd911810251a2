/**
 * Connections SqlStore reserves from the app's pool while it has operations in flight.
 *
 * Through the public statement path (`sql.unsafe(...)`), every statement builds a span, compiles, opens a
 * `Scope`, takes a connection from the driver's pool and gives it back, which costs more CPU than the driver
 * itself spends on a load (bench/README.md). Instead the store reserves connections through
 * `SqlClient.reserve` (the public API transactions use) and sends its statements on them with
 * `Connection.execute`; the driver queues statements on a connection and sends each when the one before
 * completes, as `pg`'s and `mysql2`'s own clients do.
 *
 * What it holds, and when:
 * - at most `max` connections, and never more than it has operations in flight: when an operation ends,
 *   connections with nothing outstanding beyond that number go back to the pool at once. An idle store holds
 *   none, needs no background fiber and has nothing to close;
 * - a connection is retired after `RETIRE_AFTER` statements (it finishes what it has, goes back to the pool,
 *   and a new reservation queues behind whoever else waits for the pool): under sustained load the app's own
 *   statements still get connections, in the pool's order, however small the pool;
 * - a connection whose statement failed for a reason other than the statement itself (the connection was
 *   lost, the server is shutting down) is retired at once; the pool discards it if it is broken.
 *
 * Statements run uninterruptibly, as a plain driver call does: an interrupted operation's statement completes
 * and its result is dropped. (Interrupting it would cancel whatever query the connection is running, which
 * may be another operation's.)
 *
 * Inside the app's transaction the store does not come here: its statements run on the transaction's
 * connection through the statement path.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"

/** @internal */
export interface Connections {
  /** `run(use)` runs `use` on one of the reserved connections (reserving one if needed), uninterruptibly. */
  readonly run: <A>(use: (connection: Connection) => Effect.Effect<A, SqlError>) => Effect.Effect<A, SqlError>
  /** How many connections are reserved now, or being reserved. */
  readonly held: () => number
}

/**
 * Statements a connection runs before it goes back to the pool.
 *
 * @internal
 */
export const RETIRE_AFTER = 200

/** A reserved connection, with the statements sent on it that have not completed. */
interface Lane {
  readonly connection: Connection
  readonly scope: Scope.CloseableScope
  outstanding: number
  used: number
  retired: boolean
  /** What follows each statement on this connection, made once per connection rather than per statement. */
  readonly after: {
    readonly onFailure: (cause: Cause.Cause<SqlError>) => Effect.Effect<never, SqlError>
    readonly onSuccess: (a: unknown) => Effect.Effect<unknown>
  }
}

/**
 * `make(sql, max, isStatementError)` reserves up to `max` connections from `sql`. `isStatementError` tells a
 * failure of the statement itself (a constraint, a missing table: the connection is fine) from one that may
 * have broken the connection.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient,
  max: number,
  isStatementError: (cause: unknown) => boolean
): Connections => {
  const lanes: Array<Lane> = []
  let reserving = 0
  let pending = 0
  // Operations that found no connection while every one was still being reserved.
  const waiting: Array<(exit: Exit.Exit<void, SqlError>) => void> = []

  const retire = (lane: Lane): void => {
    if (lane.retired) return
    lane.retired = true
    lanes.splice(lanes.indexOf(lane), 1)
  }

  const makeLane = (connection: Connection, scope: Scope.CloseableScope): Lane => {
    const lane: Lane = {
      connection,
      scope,
      outstanding: 0,
      used: 0,
      retired: false,
      after: {
        onFailure: (cause) => {
          const closing = settle(lane, Exit.failCause(cause))
          return closing === Effect.void ? Effect.failCause(cause) : Effect.zipRight(closing, Effect.failCause(cause))
        },
        onSuccess: (a) => {
          const closing = settle(lane, Exit.void)
          return closing === Effect.void ? Effect.succeed(a) : Effect.as(closing, a)
        }
      }
    }
    return lane
  }

  // A reservation runs in its own fiber: an operation never waits for one while another connection can take
  // its statement, so a reservation queued in a busy pool cannot hold up the store's work (nor, with idle
  // connections kept for it, deadlock). A connection that arrives when nothing needs it goes straight back.
  const reservation: Effect.Effect<void> = Effect.flatMap(
    Scope.make(),
    (scope) =>
      Effect.matchCauseEffect(Scope.extend(sql.reserve, scope), {
        onFailure: (cause) => {
          reserving--
          for (const wake of waiting.splice(0)) wake(Exit.failCause(cause))
          return Scope.close(scope, Exit.failCause(cause))
        },
        onSuccess: (connection) => {
          reserving--
          if (pending <= lanes.length) return Scope.close(scope, Exit.void)
          lanes.push(makeLane(connection, scope))
          for (const wake of waiting.splice(0)) wake(Exit.void)
          return Effect.void
        }
      })
  )

  const reserve: Effect.Effect<unknown> = Effect.suspend(() => {
    reserving++
    return Effect.forkDaemon(reservation)
  })

  const awaitReservation = Effect.async<void, SqlError>((resume) => {
    waiting.push(resume)
  })

  const keeps = (exit: Exit.Exit<unknown, SqlError>): boolean => {
    if (Exit.isSuccess(exit)) return true
    const failure = Cause.failureOption(exit.cause)
    return Option.isSome(failure) && isStatementError(failure.value.cause)
  }

  // After a statement: retire its connection if it failed or has served its turn; give back retired connections
  // with nothing outstanding, and idle ones beyond the operations in flight.
  const settle = (lane: Lane, exit: Exit.Exit<unknown, SqlError>): Effect.Effect<void> => {
    pending--
    lane.outstanding--
    const failed = !keeps(exit)
    if (failed || lane.used >= RETIRE_AFTER) retire(lane)
    const spare: Array<Lane> = lane.retired && lane.outstanding === 0 ? [lane] : []
    for (let i = lanes.length - 1; i >= 0 && lanes.length > pending; i--) {
      const idle = lanes[i]
      if (idle.outstanding === 0) {
        retire(idle)
        spare.push(idle)
      }
    }
    if (spare.length === 0) return Effect.void
    return Effect.forEach(spare, (l) => Scope.close(l.scope, l === lane && failed ? exit : Exit.void), {
      discard: true
    })
  }

  // `use` on the lane, then `settle` in one match frame; nothing to close (the usual case) adds no step.
  const runOn = <A>(
    lane: Lane,
    use: (connection: Connection) => Effect.Effect<A, SqlError>
  ): Effect.Effect<A, SqlError> => {
    lane.outstanding++
    lane.used++
    return Effect.matchCauseEffect(use(lane.connection), lane.after) as Effect.Effect<A, SqlError>
  }

  // The connection with the fewest statements outstanding. While every connection is busy and fewer than `max`
  // are held, one more is reserved in the background; with none held yet, the statement waits for it.
  const attempt = <A>(use: (connection: Connection) => Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> => {
    let best: Lane | undefined
    for (const lane of lanes) if (best === undefined || lane.outstanding < best.outstanding) best = lane
    const more = (best === undefined || best.outstanding > 0) && lanes.length + reserving < max &&
      reserving < pending - lanes.length
    if (best !== undefined) return more ? Effect.zipRight(reserve, runOn(best, use)) : runOn(best, use)
    const retry = Effect.zipRight(
      Effect.tapErrorCause(awaitReservation, () =>
        Effect.sync(() => {
          pending--
        })),
      Effect.suspend(() => attempt(use))
    )
    return more ? Effect.zipRight(reserve, retry) : retry
  }

  const run = <A>(use: (connection: Connection) => Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> =>
    Effect.uninterruptible(Effect.suspend(() => {
      pending++
      return attempt(use)
    }))

  return { run, held: () => lanes.length + reserving }
}
