/**
 * `npx tsx bench/clock-read.ts`: what reading the Clock (and the tracer, for a span) costs per store operation,
 * `withClockAndSpan` against the same read through `Effect.clockWith` and `Effect.tracerWith`, in ns per call
 * under Effect's built-in tracer. Prints one line per round.
 */
import * as Effect from "effect/Effect"
import { builtInTracer, withClockAndSpan } from "../src/internal/tracing.js"

const options = { kind: "client", attributes: {}, captureStackTrace: false } as const
const body = (now: number) => Effect.succeed(now)

const publicApi = (spans: boolean) =>
  Effect.clockWith((clock) => {
    const self = body(clock.unsafeCurrentTimeMillis())
    return spans
      ? Effect.tracerWith((tracer) => (tracer === builtInTracer ? self : Effect.withSpan(self, "bench", options)))
      : self
  })

const N = Number(process.env.BENCH_OPS ?? 500_000)
const items = Array.from({ length: N })

const nsPerCall = (make: () => Effect.Effect<number>): string => {
  const loop = Effect.forEach(items, make, { discard: true })
  Effect.runSync(loop)
  const start = process.hrtime.bigint()
  Effect.runSync(loop)
  return (Number(process.hrtime.bigint() - start) / N).toFixed(0)
}

for (let round = 0; round < Number(process.env.BENCH_ROUNDS ?? 5); round++) {
  const spans = `spans: withClockAndSpan ${nsPerCall(() => withClockAndSpan(body, true, "bench", options))}, ` +
    `clockWith + tracerWith ${nsPerCall(() => publicApi(true))}`
  const plain = `no spans: withClockAndSpan ${nsPerCall(() => withClockAndSpan(body, false, "bench", options))}, ` +
    `clockWith ${nsPerCall(() => publicApi(false))}`
  console.log(`${spans} | ${plain} (ns per call)`)
}
