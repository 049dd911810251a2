/**
 * Test support for Redis: private `redis-server`s on spare loopback ports (for tests that stop or freeze a
 * server), a throw-away 3-master Redis Cluster, unique key prefixes and their clean-up with SCAN + UNLINK.
 *
 * Every server started here is killed by `stop()`, and, should a test die before its `afterAll`, when the
 * test process exits.
 */
import { assert } from "@effect/vitest"
import { Clock, Effect, Either, type Layer } from "effect"
import {
  Session,
  SessionData,
  SessionId,
  type SessionRecord,
  SessionStore,
  SessionToken,
  type StoreError
} from "effect-sessions"
import type { Redis } from "ioredis"
import { Cluster } from "ioredis"
import { shiftClock } from "./services.js"

import { sparePort } from "./redisServers.js"

export * from "./redisServers.js"

/** Walks every key under `prefix` with SCAN (on each master of a cluster), a page at a time. */
const scanPrefix = async (
  client: Redis | Cluster,
  prefix: string,
  onPage: (node: Redis, keys: ReadonlyArray<string>) => Promise<void>
): Promise<void> => {
  const nodes = client instanceof Cluster ? client.nodes("master") : [client]
  for (const node of nodes) {
    let cursor = "0"
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await onPage(node, keys)
    } while (cursor !== "0")
  }
}

/** Deletes every key under `prefix` with SCAN + UNLINK. Returns the count. */
export const deletePrefix = async (client: Redis | Cluster, prefix: string): Promise<number> => {
  let deleted = 0
  await scanPrefix(client, prefix, async (node, keys) => {
    for (const key of keys) deleted += await node.unlink(key)
  })
  return deleted
}

/** Counts the keys under `prefix` (SCAN). */
export const countPrefix = async (client: Redis | Cluster, prefix: string): Promise<number> => {
  let count = 0
  await scanPrefix(client, prefix, async (_, keys) => {
    count += keys.length
  })
  return count
}

/** A live `Clock` running `shiftMs` ahead of the real one. */
export const shiftedClock = (shiftMs: number): Clock.Clock => shiftClock(Clock.make(), shiftMs)

/** A fresh version-1 record with the given data, expiring `ttlMs` after the real clock's now. */
export const freshRecord = (
  data: Record<string, SessionData.JsonValue>,
  ttlMs = 60_000
): SessionRecord.SessionRecord => ({
  id: SessionId.fromToken(SessionToken.unsafeGenerate()),
  data: SessionData.fromEntries(Object.entries(data)),
  expiresAt: Date.now() + ttlMs,
  version: 1
})

/**
 * `race` runs `attempt(i)` for every i below `n` all at once and succeeds with the indexes that
 * succeeded and the distinct reasons of those that failed.
 */
export const race = <A>(
  n: number,
  attempt: (i: number) => Effect.Effect<A, StoreError.StoreError>
): Effect.Effect<{ readonly winners: ReadonlyArray<number>; readonly reasons: ReadonlyArray<StoreError.Reason> }> =>
  Effect.map(
    Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => Effect.either(attempt(i)), {
      concurrency: "unbounded"
    }),
    (results) => ({
      winners: results.flatMap((r, i) => (Either.isRight(r) ? [i] : [])),
      reasons: [...new Set(results.flatMap((r) => (Either.isLeft(r) ? [r.left.reason] : [])))]
    })
  )

/**
 * `unreachable(makeLayer)` builds the layer against a spare loopback port where nothing listens and asserts
 * that construction fails with `Unavailable` from `connect` within 10 s; it succeeds with that error.
 */
export const unreachable = (
  makeLayer: (
    port: number
  ) => Layer.Layer<SessionStore.SessionStore, StoreError.StoreError | StoreError.StoreConfigError>
): Effect.Effect<StoreError.StoreError> =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => sparePort())
    const started = Date.now()
    const error = yield* Effect.flip(Effect.provide(SessionStore.SessionStore, makeLayer(port))).pipe(
      Effect.catchAll(() => Effect.dieMessage("the layer was built against a port where nothing listens"))
    )
    assert.strictEqual(error._tag, "StoreError")
    if (error._tag !== "StoreError") return yield* Effect.dieMessage("the layer refused its options")
    assert.strictEqual(error.reason, "Unavailable")
    assert.strictEqual(error.method, "connect")
    assert.isBelow(Date.now() - started, 10_000)
    return error
  })

/** Data bound to `userId` as the middleware stores it (`Session.bindUser`). */
export const boundData = (userId: string, extra: Record<string, SessionData.JsonValue> = {}): SessionData.SessionData =>
  SessionData.fromEntries([
    ...Object.entries(extra),
    [Session.META_KEY, { createdAt: 1, user: { id: userId, authenticatedAt: 2 }, refreshedAt: 3 }]
  ])

/** A fresh user id. */
export const freshUser = (): string => `user-${SessionToken.unsafeGenerate().slice(0, 16)}`
