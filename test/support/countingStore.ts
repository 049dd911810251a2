/**
 * Test support: a `SessionStore` wrapper that counts the calls reaching a store, can hold a `load`
 * after it has read the store (to force an interleaving), and can make calls fail.
 *
 * ```ts
 * const backing = counting(MemoryStore.layer())
 * const layer = CachingStore.layer({ cache: LruStore.layer(), store: backing.layer })
 * // ... run against `layer`, then:
 * assert.strictEqual(backing.counts.load, 1)
 * ```
 */
import { SessionStore } from "effect-sessions"
import * as StoreError from "effect-sessions/StoreError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export type Method = "create" | "save" | "load" | "delete"

export type Counts = Record<Method, number>

/** A load held after it read the wrapped store: `reached` completes then, `release` lets it return. */
export interface HeldLoad {
  readonly reached: Deferred.Deferred<void>
  readonly release: Deferred.Deferred<void>
}

export interface Probe {
  /** Calls that reached the wrapper since the last `reset`, by method (failed ones included). */
  readonly counts: Counts
  /** Sets every count back to 0. */
  readonly reset: () => void
  /** Makes every call of `method` fail with `reason` (before the wrapped store is called) until `heal`. */
  readonly fail: (method: Method, reason: StoreError.Reason) => void
  /** Stops the failures set by `fail`. */
  readonly heal: () => void
  /** Holds the next `load` after it has read the wrapped store, until `release` completes. */
  readonly holdNextLoad: Effect.Effect<HeldLoad>
}

const methods: ReadonlyArray<Method> = ["create", "save", "load", "delete"]

/**
 * `counting(layer)` wraps the `SessionStore` a layer provides (everything else it provides passes through)
 * and returns the wrapped layer with its probe. Each call gives a new layer and a new probe.
 */
export const counting = <ROut, E, R>(
  layer: Layer.Layer<ROut | SessionStore.SessionStore, E, R>
): { readonly layer: Layer.Layer<ROut | SessionStore.SessionStore, E, R>; readonly probe: Probe } => {
  const counts: Counts = { create: 0, save: 0, load: 0, delete: 0 }
  const failing = new Map<Method, StoreError.Reason>()
  let held: HeldLoad | undefined

  const guard = <A>(method: Method, self: Effect.Effect<A, StoreError.StoreError>) =>
    Effect.suspend(() => {
      counts[method]++
      const reason = failing.get(method)
      return reason !== undefined ? Effect.fail(StoreError.make(reason, method)) : self
    })

  const wrap = (inner: SessionStore.Service): SessionStore.Service => ({
    create: (record) => guard("create", inner.create(record)),
    save: (record) => guard("save", inner.save(record)),
    delete: (id) => guard("delete", inner.delete(id)),
    load: (id) =>
      guard(
        "load",
        Effect.tap(inner.load(id), () => {
          const hold = held
          if (hold === undefined) return Effect.void
          held = undefined
          return Effect.zipRight(Deferred.succeed(hold.reached, undefined), Deferred.await(hold.release))
        })
      )
  })

  const probe: Probe = {
    counts,
    reset: () => {
      for (const m of methods) counts[m] = 0
    },
    fail: (method, reason) => {
      failing.set(method, reason)
    },
    heal: () => failing.clear(),
    holdNextLoad: Effect.gen(function*() {
      const hold: HeldLoad = { reached: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
      held = hold
      return hold
    })
  }

  return {
    layer: Layer.map(
      layer,
      (ctx) => Context.add(ctx, SessionStore.SessionStore, wrap(Context.get(ctx, SessionStore.SessionStore)))
    ),
    probe
  }
}
