/**
 * The invalidation channel across processes: every `CachingStore` instance runs in its own process with its
 * own connections to the real Redis / PostgreSQL (`support/instance.ts`). A test waits on an instance's receipt
 * of an announcement, never on a timer; `maxStaleness` is an hour, so only the channel can make another
 * instance see a change.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SessionData, type SessionRecord } from "effect-sessions"
import { type Instance, instances, invalidatedId, type Reply } from "./support/instances.js"
import { freshRecord, privateRedis, uniquePrefix } from "./support/redis.js"
import { describeService, env } from "./support/services.js"
import { dropTable, postgres, uniqueTable } from "./support/sql.js"

const HOUR = 3_600_000
const redisUrl = `redis://${env.redisHost}:${env.redisPort}`

const dataOf = (reply: Reply): unknown => Option.getOrNull(Option.map(reply.record, (r) => ({ ...r.data })))

const withData = (record: SessionRecord.SessionRecord, n: number): SessionRecord.SessionRecord => ({
  ...record,
  data: SessionData.fromEntries([["n", n]])
})

/** Saves through `writer` and succeeds with the stored record, checking the save succeeded. */
const save = (writer: Instance, record: SessionRecord.SessionRecord) =>
  Effect.map(writer.save(record), (reply) => {
    assert.isNull(reply.error, "save failed")
    return Option.getOrThrow(reply.record)
  })

/**
 * What every engine must show: `b` serves a record from its cache (a hit never reaches the store); a save and
 * a delete on `a` are seen by `b`'s next load once `b` has received their announcement; and neither instance
 * hears its own announcements.
 */
const writesAreSeenElsewhere = (a: Instance, b: Instance) =>
  Effect.gen(function*() {
    const created = Option.getOrThrow((yield* a.create(freshRecord({ n: 1 }))).record)
    assert.deepStrictEqual(dataOf(yield* b.load(created.id)), { n: 1 })
    const filled = yield* b.load(created.id)
    assert.deepStrictEqual(dataOf(filled), { n: 1 })
    const hit = yield* b.load(created.id)
    assert.strictEqual(hit.storeLoads, filled.storeLoads, "b serves the record from its cache")

    // a save on a: b's cache would serve n = 1 for an hour; the announcement evicts it
    const from = b.received().length
    const saved = yield* save(a, withData(created, 2))
    yield* b.receipt(invalidatedId(created.id), from)
    const after = yield* b.load(created.id)
    assert.deepStrictEqual(dataOf(after), { n: 2 })
    assert.strictEqual(Option.getOrThrow(after.record).version, saved.version)
    const again = yield* b.load(created.id)
    assert.strictEqual(again.storeLoads, after.storeLoads, "b caches the new record")

    // a delete (logout) on a
    const beforeDelete = b.received().length
    assert.isNull((yield* a.delete(created.id)).error)
    yield* b.receipt(invalidatedId(created.id), beforeDelete)
    assert.isTrue(Option.isNone((yield* b.load(created.id)).record), "b no longer serves the deleted session")

    // the other way round: b's save reaches a, whose cache held the record
    const other = Option.getOrThrow((yield* b.create(freshRecord({ n: 10 }))).record)
    assert.deepStrictEqual(dataOf(yield* a.load(other.id)), { n: 10 })
    const fromA = a.received().length
    yield* save(b, withData(other, 11))
    yield* a.receipt(invalidatedId(other.id), fromA)
    assert.deepStrictEqual(dataOf(yield* a.load(other.id)), { n: 11 })

    // nobody hears its own: a announced `created`, b announced `other`
    const heard = (i: Instance) => i.received().flatMap((e) => e.ids)
    assert.notInclude(heard(a), created.id)
    assert.notInclude(heard(b), other.id)
    assert.include(heard(a), other.id)
  })

await describeService(
  "Invalidation over Redis pub/sub, instances in their own processes",
  env.redisHost,
  env.redisPort,
  () => {
    it.live("a save or a delete on one instance is seen by another's next load once it got the announcement", () =>
      Effect.scoped(Effect.gen(function*() {
        const config = {
          store: "redis",
          channel: "redis",
          redisUrl,
          keyPrefix: uniquePrefix("invalidation"),
          channelName: uniquePrefix("channel"),
          maxStalenessMs: HOUR
        } as const
        const [a, b] = yield* instances(config, config)
        yield* writesAreSeenElsewhere(a, b)
      })))
  }
)

await describeService(
  "Invalidation over PostgreSQL LISTEN/NOTIFY, instances in their own processes",
  env.pgHost,
  env.pgPort,
  () => {
    it.live("a save or a delete on one instance is seen by another's next load once it got the announcement", () =>
      Effect.scoped(Effect.gen(function*() {
        const table = uniqueTable("inv")
        const client = yield* postgres.client
        yield* Effect.addFinalizer(() => dropTable(client, "pg", table))
        const config = {
          store: "pg",
          channel: "pg",
          table,
          channelName: uniqueTable("chan"),
          maxStalenessMs: HOUR
        } as const
        const [a, b] = yield* instances(config, config)
        yield* writesAreSeenElsewhere(a, b)
      })))

    it.live(
      "a Redis channel over a PostgreSQL store: killed, the caches are bypassed; restarted, they drop what they held",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* Effect.acquireRelease(
            Effect.promise(() => privateRedis()),
            (s) => Effect.promise(() => s.stop())
          )
          const table = uniqueTable("inv")
          const client = yield* postgres.client
          yield* Effect.addFinalizer(() => dropTable(client, "pg", table))
          const config = {
            store: "pg",
            channel: "redis",
            redisUrl: server.url,
            table,
            channelName: uniquePrefix("channel"),
            maxStalenessMs: HOUR
          } as const
          const [a, b] = yield* instances(config, config)
          const created = Option.getOrThrow((yield* a.create(freshRecord({ n: 1 }))).record)
          yield* b.load(created.id)
          const filled = yield* b.load(created.id)
          assert.strictEqual((yield* b.load(created.id)).storeLoads, filled.storeLoads, "b caches the record")

          // the channel's server dies: both instances notice, and b stops serving from its cache
          const beforeKill = { a: a.received().length, b: b.received().length }
          yield* Effect.promise(() => server.kill())
          yield* b.receipt((e) => e.tag === "Disconnected", beforeKill.b)
          yield* a.receipt((e) => e.tag === "Disconnected", beforeKill.a)
          const saved = yield* save(a, withData(created, 2)) // its announcement is lost
          const down1 = yield* b.load(created.id)
          assert.deepStrictEqual(dataOf(down1), { n: 2 })
          const down2 = yield* b.load(created.id)
          assert.strictEqual(down2.storeLoads, down1.storeLoads + 1, "while disconnected every load reads the store")

          // back: b reconnects and drops what it held; announcements flow again
          const beforeStart = b.received().length
          yield* Effect.promise(() => server.start())
          yield* b.receipt((e) => e.tag === "Connected", beforeStart)
          yield* a.receipt((e) => e.tag === "Connected", beforeKill.a)
          const up1 = yield* b.load(created.id)
          assert.strictEqual(up1.storeLoads, down2.storeLoads + 1, "after reconnecting the cache starts empty")
          assert.strictEqual(Option.getOrThrow(up1.record).version, saved.version)
          const up2 = yield* b.load(created.id)
          assert.strictEqual(up2.storeLoads, up1.storeLoads, "and is filled again")
          const beforeSave = b.received().length
          yield* save(a, withData(saved, 3))
          yield* b.receipt(invalidatedId(created.id), beforeSave)
          assert.deepStrictEqual(dataOf(yield* b.load(created.id)), { n: 3 })
        }))
    )
  }
)
