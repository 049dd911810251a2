/**
 * The store contract suite: the checks every `SessionStore` must pass, as data, and a one-call runner for
 * `@effect/vitest`. Our stores prove themselves with it, and so can yours.
 *
 * Each check draws fresh random ids, so the checks share one store and hold on a store that other tests
 * write to (a persistent server included). No check sleeps or relies on a backend's TTL: records expire
 * through a shifted `Clock`, which every store reads on every operation. Each check deletes its records
 * when it ends.
 *
 * @example
 * ```ts
 * // test/MyStore.test.ts
 * import { runContractSuite } from "effect-sessions/testing"
 * import * as MyStore from "../src/MyStore.js"
 *
 * runContractSuite("MyStore", MyStore.layer(), { live: true })
 * ```
 *
 * @since 0.1.0
 */
import { layer as vitestLayer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { checks, type ContractCheck, ContractSettings, ContractViolation } from "./internal/contractChecks.js"
import { type IndexCheck, indexChecks } from "./internal/indexChecks.js"
import type * as SessionIndex from "./SessionIndex.js"
import * as SessionStore from "./SessionStore.js"

export {
  /**
   * Every check of the session index contract, for stores that provide `SessionIndex`.
   *
   * @since 0.3.0
   */
  indexChecks
}
export type {
  /**
   * One check of the session index contract.
   *
   * @since 0.3.0
   */
  IndexCheck
}

export {
  /**
   * Every check of the store contract.
   *
   * @since 0.1.0
   */
  checks,
  /**
   * The settings checks read (the store's `maxDataBytes`); `runContractSuite` provides them.
   *
   * @since 0.1.0
   */
  ContractSettings,
  /**
   * The failure of a check.
   *
   * @since 0.1.0
   */
  ContractViolation
}
export type {
  /**
   * One check of the store contract.
   *
   * @since 0.1.0
   */
  ContractCheck
}
export {
  /**
   * `withTimeTravel(body)` runs `body` under a `Clock` shifted by an offset `body` moves (`advance`, `travelTo`, `reset`).
   *
   * @since 0.1.0
   */
  type TimeTravel,
  withTimeTravel
} from "./internal/contractClock.js"

/**
 * Options of `runContractSuite`.
 *
 * @since 0.1.0
 */
export interface RunOptions {
  /** Run with real time (`it.live` style, no `TestClock`): for server-backed stores. Default `false`. */
  readonly live?: boolean | undefined
  /** Timeout of each check in milliseconds. Default: vitest's. */
  readonly timeout?: number | undefined
  /**
   * Run the `ExpiredDeletion` checks: `true` requires the layer to provide it, `false` leaves them out.
   * Default: run them when the layer provides it, otherwise report them skipped.
   */
  readonly expiredDeletion?: boolean | undefined
  /** The store's `maxDataBytes`, when it is not the default 65,536 (the checks need at least 2,048). */
  readonly maxDataBytes?: number | undefined
}

/**
 * `runCheck(check, options)` runs one check with the settings of `options` (its data cap); it fails when the
 * store breaks the check's rule, and dies when the check needs an `ExpiredDeletion` the context lacks.
 *
 * @since 0.1.0
 */
export const runCheck = (
  check: ContractCheck,
  options?: Pick<RunOptions, "maxDataBytes">
): Effect.Effect<void, unknown, SessionStore.SessionStore> =>
  Effect.flatMap(Effect.serviceOption(SessionStore.ExpiredDeletion), (deletion) =>
    check.run.pipe(
      Effect.provideService(
        SessionStore.ExpiredDeletion,
        Option.getOrElse(deletion, () =>
          SessionStore.ExpiredDeletion.of({
            deleteExpired: () => Effect.dieMessage("the store under test provides no ExpiredDeletion")
          }))
      ),
      Effect.provideService(ContractSettings, {
        maxDataBytes: options?.maxDataBytes ?? ContractSettings.defaultValue().maxDataBytes
      })
    ))

/**
 * `runContractSuite(name, layer, options)` registers a `describe` with one test per check, all sharing one
 * instance of `layer`, built before the first check and closed after the last.
 *
 * @since 0.1.0
 */
export const runContractSuite = (
  name: string,
  layer: Layer.Layer<SessionStore.SessionStore, unknown>,
  options?: RunOptions
): void => {
  const body = (
    it: {
      readonly effect: (
        name: string,
        self: (ctx: { skip: (note?: string) => void }) => Effect.Effect<void, unknown, SessionStore.SessionStore>,
        timeout?: number
      ) => void
    }
  ) => {
    for (const check of checks) {
      if (check.requiresExpiredDeletion === true && options?.expiredDeletion === false) continue
      it.effect(
        check.name,
        (ctx) =>
          Effect.flatMap(Effect.serviceOption(SessionStore.ExpiredDeletion), (deletion) => {
            if (check.requiresExpiredDeletion === true && Option.isNone(deletion)) {
              if (options?.expiredDeletion === true) {
                return Effect.fail(
                  new ContractViolation({ message: "the store under test provides no ExpiredDeletion" })
                )
              }
              // vitest marks the test skipped as soon as `skip` is called; it throws to abort, which we do ourselves.
              try {
                ctx.skip("the store under test provides no ExpiredDeletion")
              } catch {
                // skipped
              }
              return Effect.void
            }
            return runCheck(check, options)
          }),
        options?.timeout
      )
    }
  }
  if (options?.live === true) {
    vitestLayer(layer, { excludeTestServices: true })(name, (it) => body(it))
  } else {
    vitestLayer(layer)(name, (it) => body(it))
  }
}

/**
 * `runIndexContractSuite(name, layer, options)` registers a `describe` with one test per check of the index
 * contract, all sharing one instance of `layer` (a store that provides `SessionIndex`).
 *
 * @since 0.3.0
 */
export const runIndexContractSuite = (
  name: string,
  layer: Layer.Layer<SessionStore.SessionStore | SessionIndex.SessionIndex, unknown>,
  options?: Pick<RunOptions, "live" | "timeout">
): void => {
  const body = (
    it: {
      readonly effect: (
        name: string,
        self: () => Effect.Effect<void, unknown, SessionStore.SessionStore | SessionIndex.SessionIndex>,
        timeout?: number
      ) => void
    }
  ) => {
    for (const check of indexChecks) it.effect(check.name, () => check.run, options?.timeout)
  }
  if (options?.live === true) {
    vitestLayer(layer, { excludeTestServices: true })(name, (it) => body(it))
  } else {
    vitestLayer(layer)(name, (it) => body(it))
  }
}
