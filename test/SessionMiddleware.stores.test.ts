/**
 * Twenty concurrent requests on one session, each inserting its own key, all having read the same
 * version, spread over four middleware instances (as if four processes): every key lands, on every
 * server-backed store (and SQLite, and CachingStore over PostgreSQL and Redis), through real HTTP servers.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { CachingStore, LruStore, type SessionStore } from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import { Redis } from "ioredis"
import { concurrentWriters } from "./support/http.js"
import { deletePrefix, uniquePrefix } from "./support/redis.js"
import { describeService, env } from "./support/services.js"
import { mariadb, postgres, sqlite, storeLayer, type Target, tempSqliteFile, uniqueTable } from "./support/sql.js"

const WRITERS = 20
/** Middleware instances (as if processes) the writers are spread over. */
const INSTANCES = 4

const twentyWriters = <E>(layer: Layer.Layer<SessionStore.SessionStore, E>) =>
  Effect.gen(function*() {
    const result = yield* concurrentWriters(layer, { writers: WRITERS, instances: INSTANCES })
    assert.deepStrictEqual(result.statuses, Array.from({ length: WRITERS }, () => 200))
    assert.deepStrictEqual(result.keys, result.expected)
    // all read the same version: the first commit of every instance but one conflicted and was merged
    assert.isAtLeast(result.saves, WRITERS + INSTANCES - 1)
  })

const cached = <E>(store: Layer.Layer<SessionStore.SessionStore, E>) =>
  CachingStore.layer({ cache: LruStore.layer(), store }).pipe(Layer.orDie)

const sqlCase = (target: Target, withCache = false) => () => {
  it.live(`${target.label}: ${WRITERS} concurrent writers on one session all land`, () =>
    twentyWriters(storeLayer(target, uniqueTable("mw")).pipe(Layer.orDie)))
  if (withCache) {
    it.live(`CachingStore (LruStore over ${target.label}): ${WRITERS} concurrent writers on one session all land`, () =>
      twentyWriters(cached(storeLayer(target, uniqueTable("mwc")))))
  }
}

await describeService(
  "SessionMiddleware on PostgreSQL",
  postgres.server!.host,
  postgres.server!.port,
  sqlCase(postgres, true)
)
await describeService(
  "SessionMiddleware on MySQL/MariaDB",
  mariadb.server!.host,
  mariadb.server!.port,
  sqlCase(mariadb)
)
await describeService("SessionMiddleware on Redis", env.redisHost, env.redisPort, () => {
  const redisCase = (
    label: string,
    wrap: (l: Layer.Layer<SessionStore.SessionStore>) => Layer.Layer<SessionStore.SessionStore>
  ) =>
    it.live(`${label}: ${WRITERS} concurrent writers on one session all land`, () => {
      const keyPrefix = uniquePrefix("mw")
      const redis = RedisStore.layer({ url: Redacted.make(`redis://${env.redisHost}:${env.redisPort}`), keyPrefix })
      return twentyWriters(wrap(redis.pipe(Layer.orDie))).pipe(
        Effect.ensuring(Effect.promise(async () => {
          const client = new Redis(env.redisPort, env.redisHost, { lazyConnect: true })
          try {
            await client.connect()
            await deletePrefix(client, keyPrefix)
          } finally {
            client.disconnect()
          }
        }))
      )
    })
  redisCase("Redis", (l) => l)
  redisCase("CachingStore (LruStore over Redis)", cached)
})
sqlCase(sqlite(tempSqliteFile()))()
