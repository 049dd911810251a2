/**
 * A `Clock` shifted from the ambient one by an offset the caller moves: how the contract suite makes
 * records expire without sleeping and without any backend TTL support. Stores read `now` from the
 * `Clock` on every operation, so shifting it works for in-process and server-backed stores alike.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * Moves the shifted clock seen by the body of `withTimeTravel`.
 *
 * @since 0.1.0
 */
export interface TimeTravel {
  /** `now` succeeds with the shifted time in epoch milliseconds. */
  readonly now: Effect.Effect<number>
  /** `advance(ms)` moves the shifted clock forward by `ms` (backward when negative). */
  readonly advance: (ms: number) => Effect.Effect<void>
  /** `travelTo(at)` moves the shifted clock so that it reads `at` now (ambient time keeps running from there). */
  readonly travelTo: (at: number) => Effect.Effect<void>
  /** `reset` removes the shift: the clock reads the ambient time again. */
  readonly reset: Effect.Effect<void>
}

/**
 * `shiftedClock(base, offset)` reads `base` plus `offset()` milliseconds, read on every call; it sleeps on `base`.
 *
 * @since 0.1.0
 */
export const shiftedClock = (base: Clock.Clock, offset: () => number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + offset(),
  currentTimeMillis: Effect.map(base.currentTimeMillis, (t) => t + offset()),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(offset()) * 1_000_000n,
  currentTimeNanos: Effect.map(base.currentTimeNanos, (t) => t + BigInt(offset()) * 1_000_000n),
  sleep: (duration: Duration.Duration) => base.sleep(duration)
})

/**
 * `withTimeTravel(body)` runs `body` with a `Clock` that reads the ambient clock plus an offset that `body`
 * moves through the `TimeTravel` it receives; the offset starts at 0 and `sleep` is the ambient one.
 *
 * @since 0.1.0
 */
export const withTimeTravel = <A, E, R>(body: (travel: TimeTravel) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Clock.clockWith((base) =>
    Effect.suspend(() => {
      let offset = 0
      const clock = shiftedClock(base, () => offset)
      const travel: TimeTravel = {
        now: clock.currentTimeMillis,
        advance: (ms) =>
          Effect.sync(() => {
            offset += ms
          }),
        travelTo: (at) =>
          Effect.map(base.currentTimeMillis, (t) => {
            offset = at - t
          }),
        reset: Effect.sync(() => {
          offset = 0
        })
      }
      return Effect.withClock(body(travel), clock)
    })
  )
