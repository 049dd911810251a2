/**
 * The engine-independent part of an invalidation channel: the message format, the heartbeat that tells
 * whether the subscription works, reconnection, and the listeners. An engine gives a `Transport`: a publish
 * and a stream of what the subscription receives.
 *
 * A message is one line of text, `es1 <kind> <instance id> <body>`: kind `i` with comma-separated session
 * ids, `a` (drop everything) with an empty body, or `p` (heartbeat) with its nonce. Anything else received is
 * ignored.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Invalidation from "../Invalidation.js"
import * as SessionId from "../SessionId.js"
import * as StoreError from "../StoreError.js"
import * as OptionChecks from "./optionChecks.js"

/** @internal */
export interface Transport {
  /** Sends one message to every subscriber of the channel, failing after the channel's `publishTimeout`. */
  readonly publish: (payload: string) => Effect.Effect<void, StoreError.StoreError>
  /** Subscribes while it runs and emits what it receives; fails or ends when the subscription is lost. */
  readonly messages: Stream.Stream<string, StoreError.StoreError>
}

const VERSION = "es1"

/** Heartbeats while the first one has not come back, so that a fresh subscription is confirmed quickly. */
const STARTUP_INTERVAL_MS = 50

/** Pause before subscribing again after a lost subscription. */
const RESUBSCRIBE_DELAY_MS = 100

type Decoded =
  | { readonly kind: "i"; readonly instance: string; readonly ids: ReadonlyArray<SessionId.SessionId> }
  | { readonly kind: "a"; readonly instance: string }
  | { readonly kind: "p"; readonly instance: string; readonly nonce: string }

/** @internal */
export const encodeIds = (instance: string, ids: ReadonlyArray<SessionId.SessionId>): string =>
  `${VERSION} i ${instance} ${ids.join(",")}`

/** @internal */
export const encodeAll = (instance: string): string => `${VERSION} a ${instance} `

const encodePing = (instance: string, nonce: string): string => `${VERSION} p ${instance} ${nonce}`

/** @internal */
export const decode = (payload: string): Decoded | undefined => {
  const parts = payload.split(" ")
  if (parts.length !== 4 || parts[0] !== VERSION || parts[2].length === 0) return undefined
  const [, kind, instance, body] = parts
  switch (kind) {
    case "i": {
      const ids = body.split(",")
      return ids.length <= Invalidation.MAX_IDS_PER_MESSAGE && ids.every(SessionId.isSessionId)
        ? { kind, instance, ids }
        : undefined
    }
    case "a":
      return { kind, instance }
    case "p":
      return { kind, instance, nonce: body }
    default:
      return undefined
  }
}

/** `checkOptions` refuses a channel option that is not a positive, finite duration. */
export const checkOptions = (
  store: string,
  options: Invalidation.ChannelOptions | undefined
): Effect.Effect<void, StoreError.StoreConfigError> =>
  OptionChecks.check([
    OptionChecks.duration(store, "heartbeat", options?.heartbeat),
    OptionChecks.duration(store, "heartbeatTimeout", options?.heartbeatTimeout),
    OptionChecks.duration(store, "publishTimeout", options?.publishTimeout),
    OptionChecks.duration(store, "connectTimeout", options?.connectTimeout)
  ])

const millis = (d: Duration.DurationInput | undefined, fallback: Duration.Duration): number =>
  Math.max(1, Math.round(Duration.toMillis(d ?? fallback)))

const randomInstanceId = (): string => {
  const bytes = new Uint8Array(12)
  crypto.getRandomValues(bytes)
  return Buffer.from(bytes).toString("base64url")
}

const CONNECTED: Invalidation.Event = { _tag: "Connected" }
const DISCONNECTED: Invalidation.Event = { _tag: "Disconnected" }
const ALL: Invalidation.Event = { _tag: "InvalidatedAll" }

/**
 * `make(name, transport, options)` runs the channel for the life of the scope: it subscribes, confirms the
 * subscription with a heartbeat, subscribes again whenever it is lost, and tells its listeners. It fails with
 * `Unavailable` (method `subscribe`) when no subscription works within `connectTimeout`.
 *
 * @internal
 */
export const make = (
  name: string,
  transport: Transport,
  options: Invalidation.ChannelOptions | undefined
): Effect.Effect<Invalidation.Service, StoreError.StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const heartbeat = millis(options?.heartbeat, Invalidation.DEFAULT_HEARTBEAT)
    const heartbeatTimeout = millis(options?.heartbeatTimeout, Invalidation.DEFAULT_HEARTBEAT_TIMEOUT)
    const connectTimeout = millis(options?.connectTimeout, Invalidation.DEFAULT_CONNECT_TIMEOUT)
    const instanceId = randomInstanceId()
    const listeners = new Set<(event: Invalidation.Event) => void>()
    const firstConnected = yield* Deferred.make<void>()
    const runtime = yield* Effect.runtime<never>()

    let up = false
    /** The subscription in force; a heartbeat of an older one proves nothing. */
    let session = 0
    let ponged = false
    let publishFailing = false

    const emit = (event: Invalidation.Event): void => {
      for (const listener of Array.from(listeners)) {
        try {
          listener(event)
        } catch {
          Runtime.runFork(runtime)(Effect.logError(`effect-sessions: ${name} listener threw`))
        }
      }
    }

    const setUp = (next: boolean): void => {
      if (up === next) return
      up = next
      emit(next ? CONNECTED : DISCONNECTED)
      if (next) Deferred.unsafeDone(firstConnected, Exit.void)
    }

    const receive = (payload: string, current: number): void => {
      const message = decode(payload)
      if (message === undefined) return
      if (message.instance === instanceId) {
        if (message.kind === "p" && message.nonce === String(current) && current === session) {
          ponged = true
          setUp(true)
        }
        return
      }
      if (message.kind === "i") emit({ _tag: "Invalidated", ids: message.ids })
      else if (message.kind === "a") emit(ALL)
    }

    // uninterruptible: a request interrupted after its write still announces it
    const publish = (payload: string): Effect.Effect<void> =>
      Effect.uninterruptible(
        transport.publish(payload).pipe(
          Effect.matchEffect({
            onSuccess: () => Effect.sync(() => (publishFailing = false)),
            onFailure: (error) => {
              const log = publishFailing ? Effect.logDebug : Effect.logWarning
              publishFailing = true
              return log(
                `effect-sessions: ${name} publish failed; other instances fall back to maxStaleness`
              ).pipe(Effect.annotateLogs({ reason: error.reason, method: error.method }))
            }
          })
        )
      )

    /** One subscription, until its stream ends or fails, or its heartbeat stays away for `heartbeatTimeout`. */
    const subscription = (current: number): Effect.Effect<{ readonly why: string; readonly wasUp: boolean }> =>
      Effect.scoped(Effect.gen(function*() {
        ponged = false
        const receiving = yield* Effect.forkScoped(
          Stream.runForEach(transport.messages, (payload) => Effect.sync(() => receive(payload, current)))
        )
        const beating = Effect.gen(function*() {
          let silentFor = 0
          while (true) {
            // no span: a heartbeat a second per instance would bury the app's traces
            yield* Effect.ignore(
              Effect.withTracerEnabled(transport.publish(encodePing(instanceId, String(current))), false)
            )
            const interval = up ? heartbeat : STARTUP_INTERVAL_MS
            yield* Effect.sleep(interval)
            if (ponged) {
              ponged = false
              silentFor = 0
            } else {
              silentFor += interval
              if (silentFor >= heartbeatTimeout) return "no heartbeat came back"
            }
          }
        })
        const why = yield* Effect.raceFirst(
          Effect.map(
            Fiber.await(receiving),
            (exit) => Exit.isSuccess(exit) ? "the subscription ended" : "the subscription failed"
          ),
          beating
        )
        // before the subscription's finalizers run, which may wait on a server that stopped answering
        const wasUp = up
        session++
        setUp(false)
        return { why, wasUp }
      }))

    const loop = Effect.gen(function*() {
      while (true) {
        session++
        const exit = yield* Effect.exit(subscription(session))
        const { wasUp, why } = Exit.isSuccess(exit) ? exit.value : { wasUp: up, why: "the subscription died" }
        session++
        setUp(false)
        yield* (wasUp ? Effect.logWarning : Effect.logDebug)(
          `effect-sessions: ${name} subscription lost; caches bypassed until it is back`
        ).pipe(Effect.annotateLogs("why", why))
        yield* Effect.sleep(RESUBSCRIBE_DELAY_MS)
      }
    })
    yield* Effect.forkScoped(loop)
    yield* Effect.addFinalizer(() => Effect.sync(() => listeners.clear()))

    yield* Deferred.await(firstConnected).pipe(
      Effect.timeoutFail({
        duration: connectTimeout,
        onTimeout: () =>
          StoreError.make(
            "Unavailable",
            "subscribe",
            new StoreError.RedactedCause({ name: "Timeout", code: "DEADLINE", rule: undefined })
          )
      })
    )

    const chunks = (ids: ReadonlyArray<SessionId.SessionId>): Array<ReadonlyArray<SessionId.SessionId>> => {
      const out: Array<ReadonlyArray<SessionId.SessionId>> = []
      for (let i = 0; i < ids.length; i += Invalidation.MAX_IDS_PER_MESSAGE) {
        out.push(ids.slice(i, i + Invalidation.MAX_IDS_PER_MESSAGE))
      }
      return out
    }

    return {
      instanceId,
      announce: (ids) =>
        ids.length === 0
          ? Effect.void
          : ids.length <= Invalidation.MAX_IDS_PER_MESSAGE
          ? publish(encodeIds(instanceId, ids))
          : Effect.forEach(chunks(ids), (chunk) => publish(encodeIds(instanceId, chunk)), {
            concurrency: "unbounded",
            discard: true
          }),
      announceAll: Effect.suspend(() => publish(encodeAll(instanceId))),
      subscribe: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            listeners.add(listener)
            listener(up ? CONNECTED : DISCONNECTED)
          }),
          () => Effect.sync(() => listeners.delete(listener))
        ),
      connected: Effect.sync(() => up)
    }
  })
