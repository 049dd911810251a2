/**
 * Test support: a Tracer and a Logger that record everything, and `HttpServer.serve` on a random loopback
 * port, so a test can look for a secret in every span attribute, span event and log line a request made.
 *
 * ```ts
 * const recorder = makeRecorder()
 * const url = yield* serveLayer(app, SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer())))
 * // ... requests ...
 * assert.notInclude(recorder.dump(), token)
 * ```
 * (run the effect under `recorder.provide` so the server's request fibers inherit the tracer and logger).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { createServer } from "node:http"

/** What a span recorded: its name, attributes and events. */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
  readonly events: ReadonlyArray<readonly [string, bigint, Record<string, unknown>]>
}

export interface Recorder {
  readonly spans: ReadonlyArray<RecordedSpan>
  readonly lines: ReadonlyArray<string>
  /** Every span (name, attributes, events) and log line as one string, values through `String`. */
  readonly dump: () => string
  readonly clear: () => void
  /** `provide(effect)` runs `effect` with the recording tracer and logger (and the default logger removed). */
  readonly provide: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const show = (u: unknown): string => {
  if (typeof u === "string") return u
  if (typeof u === "bigint") return `${u}`
  try {
    return `${String(u)} ${JSON.stringify(u, (_k, v) => (typeof v === "bigint" ? `${v}` : v))}`
  } catch {
    return String(u)
  }
}

/** `makeRecorder()` is a fresh recorder. */
export const makeRecorder = (): Recorder => {
  const native = Effect.runSync(Effect.tracer)
  const spans: Array<RecordedSpan> = []
  const lines: Array<string> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = native.span(name, parent, context, links, startTime, kind, options)
      spans.push(span as unknown as RecordedSpan)
      return span
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  const logger = Logger.make((options) => {
    lines.push(
      [options.logLevel.label, show(options.message), show(options.cause), show([...options.annotations])].join(" ")
    )
  })
  return {
    spans,
    lines,
    dump: () =>
      [
        ...spans.map((s) =>
          [s.name, ...[...s.attributes].map(([k, v]) => `${k}=${show(v)}`), ...(s.events ?? []).map((e) => show(e))]
            .join(" ")
        ),
        ...lines
      ].join("\n"),
    clear: () => {
      spans.length = 0
      lines.length = 0
    },
    provide: (effect) =>
      effect.pipe(Effect.withTracer(tracer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  }
}

/**
 * `serveLayer(app, layer)` serves `app` with `HttpServer.serve` (so with the platform's `http.server` spans)
 * over `layer` on 127.0.0.1 on a random port for the life of the scope, and succeeds with its base URL.
 */
export const serveLayer = <E, R, E2>(
  app: HttpApp.Default<E, R>,
  layer: Layer.Layer<Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>, E2>
): Effect.Effect<string, E2, Scope.Scope> =>
  Effect.gen(function*() {
    const live = HttpServer.serve(app).pipe(
      Layer.provide(layer),
      Layer.provideMerge(Layer.orDie(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })))
    )
    const context = yield* Layer.build(live)
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })
