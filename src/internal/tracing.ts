/**
 * Whether the app has installed a tracer. Effect's built-in tracer (the one in force until an app provides
 * its own, e.g. through `@effect/opentelemetry`) exports nothing, so a span made with it is CPU spent for no
 * reader: 20-40 µs per store operation, and more for `@effect/sql`'s `sql.execute` span around each statement.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/**
 * Effect's built-in tracer.
 *
 * @internal
 */
export const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `withoutIdleTracing` runs `self` with tracing disabled when the tracer in force is the built-in one, so spans
 * made inside it (e.g. `@effect/sql`'s `sql.execute`) are cheap no-op spans; with an app's tracer, `self` as is.
 *
 * @internal
 */
export const withoutIdleTracing = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.tracer, (tracer) => (tracer === builtInTracer ? Effect.withTracerEnabled(self, false) : self))

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
  Effect.flatMap(Effect.tracer, (tracer) => (tracer === builtInTracer ? self : Effect.withSpan(self, name, options)))
