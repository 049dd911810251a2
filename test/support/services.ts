/**
 * Test support: the addresses of the machine's services (from the environment, with the
 * machine's defaults) and a gate for suites that need them.
 *
 * An unreachable server skips its suite loudly, except when `CI` is set: then it fails.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Clock } from "effect"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { SessionId, SessionToken, StoreError } from "effect-sessions"
import * as net from "node:net"
import { shiftedClock } from "../../src/internal/contractClock.js"

export const env = {
  pgHost: process.env.PGHOST ?? "127.0.0.1",
  pgPort: Number(process.env.PGPORT ?? 5432),
  pgUser: process.env.PGUSER ?? "postgres",
  pgDatabase: process.env.PGDATABASE ?? "test",
  mysqlHost: process.env.MYSQL_HOST ?? "127.0.0.1",
  mysqlPort: Number(process.env.MYSQL_PORT ?? 3306),
  mysqlUser: process.env.MYSQL_USER ?? "root",
  mysqlDatabase: process.env.MYSQL_DATABASE ?? "test",
  redisHost: process.env.REDIS_HOST ?? "127.0.0.1",
  redisPort: Number(process.env.REDIS_PORT ?? 6379)
} as const

export const isCI = (): boolean => {
  const v = process.env.CI
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false"
}

export const probeTcp = (host: string, port: number, timeoutMs = 1500): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.removeAllListeners()
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * `describeRequirement(name, available, why, body)` runs `body` inside a `describe` when the requirement
 * is met; otherwise it skips loudly, or, with `CI` set, registers a failing test saying `why`.
 */
export const describeRequirement = (name: string, available: boolean, why: string, body: () => void): void => {
  if (available) {
    describe(name, body)
    return
  }
  const message = `${name}: ${why}`
  if (isCI()) {
    describe(name, () => {
      it("its requirement is met (required when CI is set)", () => {
        throw new Error(message)
      })
    })
  } else {
    console.warn(`\n!!! ${message}: SKIPPING its tests (with CI set this fails) !!!\n`)
    describe.skip(`${name} (SKIPPED: ${why})`, body)
  }
}

/**
 * `describeService(name, host, port, body)` runs `body` inside a `describe` when the service answers;
 * otherwise it skips loudly, or, with `CI` set, registers a failing test.
 */
export const describeService = async (
  name: string,
  host: string,
  port: number,
  body: () => void
): Promise<void> =>
  describeRequirement(name, await probeTcp(host, port), `server at ${host}:${port} is unreachable`, body)

/** `shiftClock(base, ms)` is `base` moved `ms` ahead (behind, for a negative `ms`); it sleeps on `base`. */
export const shiftClock = (base: Clock.Clock, ms: number): Clock.Clock => shiftedClock(base, () => ms)

/** `freshId()` is the id of a new random token. */
export const freshId = (): SessionId.SessionId => SessionId.fromToken(SessionToken.unsafeGenerate())

/**
 * `assertRefused(effect, store, option)` checks that `effect` fails with a `StoreConfigError` of reason
 * `InvalidOption` from `store`, naming `option` in its field and its message.
 */
export const assertRefused = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  store: string,
  option: string
): Effect.Effect<void, never, R> =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    const label = `${store} ${option}: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded"}`
    assert.isTrue(Option.isSome(error) && StoreError.isStoreConfigError(error.value), label)
    const refused = Option.getOrThrow(Option.filter(error as Option.Option<unknown>, StoreError.isStoreConfigError))
    assert.strictEqual(refused.reason, "InvalidOption", label)
    assert.strictEqual(refused.store, store, label)
    assert.strictEqual(refused.option, option, label)
    assert.include(refused.message, `${store}: `, label)
    assert.include(refused.message, option, label)
  })

/** `assertLayerRefused(layer, store, option)` is `assertRefused` on building `layer`. */
export const assertLayerRefused = <ROut, E, RIn>(
  layer: Layer.Layer<ROut, E, RIn>,
  store: string,
  option: string
): Effect.Effect<void, never, RIn> => assertRefused(Effect.scoped(Layer.build(layer)), store, option)
