/**
 * Whether the app has installed a tracer. Effect's built-in tracer (the one in force until an app provides
 * its own, e.g. through `@effect/opentelemetry`) exports nothing, so a span made with it is CPU spent for no
 * reader.
 *
 * `@effect/sql`'s own `sql.execute` span is left alone: turning tracing off around SqlStore's statements
 * (`Effect.withTracerEnabled(false)`) costs more in the fiber-ref swap than the span it saves.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"

/**
 * Effect's built-in tracer.
 *
 * @internal
 */
export const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `withAppSpan` wraps `self` in a span only when the app has installed a tracer; under the built-in one, `self` as is.
 *
 * @internal
 */
export const withAppSpan = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => (tracer === builtInTracer ? self : Effect.withSpan(self, name, options)))

/**
 * `spanIfTraced(fiber, self, name, options)` wraps `self` in a span only when the fiber runs under an app's
 * tracer: `withAppSpan` for code that already holds its fiber.
 *
 * @internal
 */
export const spanIfTraced = <A, E, R>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  self: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> => (fiber.currentTracer === builtInTracer ? self : Effect.withSpan(self, name, options))

/**
 * `withClockAndSpan(body, name, options)` runs `body(now)` with the time of the fiber's `Clock`, in a span
 * only when the app has installed a tracer (and `spans` is on).
 *
 * @internal
 */
export const withClockAndSpan = <A, E, R>(
  body: (now: number) => Effect.Effect<A, E, R>,
  spans: boolean,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  spans
    // One runtime step reads the Clock and the tracer; `Effect.clockWith` then `Effect.tracerWith` take two.
    ? Effect.withFiberRuntime((fiber) =>
      spanIfTraced(
        fiber,
        body(Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()),
        name,
        options
      )
    )
    : Effect.clockWith((clock) => body(clock.unsafeCurrentTimeMillis()))
