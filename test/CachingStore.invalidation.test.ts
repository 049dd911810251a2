/**
 * CachingStore with an invalidation channel, two instances in this process over one shared store, each with
 * its own channel connections (Redis, or PostgreSQL through its own PgClient): random histories checked
 * against the store's state (every load after a receipt returns what the store holds; a load held after it
 * read the store while the other instance wrote never puts the old record back), a load racing a lost and
 * regained subscription, deleteExpired's announcement, batches larger than a message, refused options, the
 * channel on a Redis Cluster, and a PostgreSQL listening connection ended by the server.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  FastCheck,
  Fiber,
  Layer,
  Option,
  Queue,
  Redacted,
  type Scope
} from "effect"
import {
  CachingStore,
  Invalidation,
  LruStore,
  MemoryStore,
  SessionData,
  type SessionId,
  SessionIndex,
  type SessionRecord,
  SessionStore
} from "effect-sessions"
import * as RedisStore from "effect-sessions/RedisStore"
import * as SqlStore from "effect-sessions/SqlStore"
import { META_KEY } from "../src/Session.js"
import { freshRecord, privateRedis, shiftedClock, sparePort, startCluster, uniquePrefix } from "./support/redis.js"
import { assertLayerRefused, describeService, env } from "./support/services.js"
import { pgConfig, postgres, uniqueTable } from "./support/sql.js"

const HOUR = 3_600_000
const sharedRedis = `redis://${env.redisHost}:${env.redisPort}`
const fast = { heartbeat: "100 millis", heartbeatTimeout: "600 millis" } as const

/** A store whose next load of one id is held after it read the wrapped store, until released. */
const gated = (inner: SessionStore.Service) => {
  let armed: {
    readonly id: SessionId.SessionId
    readonly reached: Deferred.Deferred<void>
    readonly release: Deferred.Deferred<void>
  } | undefined
  let loads = 0
  const store: SessionStore.Service = {
    ...inner,
    load: (id) =>
      Effect.tap(inner.load(id), () => {
        loads++
        const hold = armed
        if (hold === undefined || hold.id !== id) return Effect.void
        armed = undefined
        return Effect.zipRight(Deferred.succeed(hold.reached, undefined), Deferred.await(hold.release))
      })
  }
  return {
    store,
    loads: () => loads,
    arm: (id: SessionId.SessionId) =>
      Effect.gen(function*() {
        const hold = { id, reached: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
        armed = hold
        return hold
      }),
    disarm: () => {
      armed = undefined
    }
  }
}

interface Node {
  readonly store: SessionStore.Service
  readonly channel: Invalidation.Service
  /** The caching layer's `ExpiredDeletion`, over a memory store's. */
  readonly deletion: Option.Option<Context.Tag.Service<SessionStore.ExpiredDeletion>>
  /** The caching layer's `SessionIndex`, over a memory store's. */
  readonly index: Option.Option<SessionIndex.Service>
  readonly gate: ReturnType<typeof gated>
  /** Waits for (and consumes up to) the next event of this instance's channel that matches. */
  readonly receipt: (match: (event: Invalidation.Event) => boolean) => Effect.Effect<void>
}

const naming = (id: string) => (event: Invalidation.Event) =>
  event._tag === "Invalidated" && event.ids.includes(id as SessionId.SessionId)

/** An instance: a CachingStore (LruStore over `shared`, gated) with the channel `channel` builds. */
const node = (
  shared: SessionStore.Service | MemoryStore.Service,
  channel: Layer.Layer<Invalidation.Invalidation, unknown>
): Effect.Effect<Node, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const gate = gated("store" in shared ? shared.store : shared)
    const context = yield* Layer.build(
      Layer.merge(
        CachingStore.layer({
          cache: LruStore.layer(),
          store: Layer.succeedContext(
            "store" in shared
              ? Context.make(SessionStore.SessionStore, gate.store).pipe(
                Context.add(SessionStore.ExpiredDeletion, shared.expiredDeletion),
                Context.add(SessionIndex.SessionIndex, shared.index)
              )
              : Context.make(SessionStore.SessionStore, gate.store)
          ),
          maxStaleness: HOUR,
          invalidation: channel
        }),
        channel
      )
    )
    const events = yield* Queue.unbounded<Invalidation.Event>()
    // subscribed after the caching store: an event taken here has been applied by it
    yield* Context.get(context, Invalidation.Invalidation).subscribe((event) => Queue.unsafeOffer(events, event))
    const receipt = (match: (event: Invalidation.Event) => boolean): Effect.Effect<void> =>
      Effect.flatMap(Queue.take(events), (event) => (match(event) ? Effect.void : receipt(match)))
    return {
      store: Context.get(context, SessionStore.SessionStore),
      gate,
      receipt,
      channel: Context.get(context, Invalidation.Invalidation),
      deletion: Context.getOption(context, SessionStore.ExpiredDeletion),
      index: Context.getOption(context, SessionIndex.SessionIndex)
    }
  })

const redisChannel = (url: string, channel: string) =>
  RedisStore.layerInvalidation({ url: Redacted.make(url), channel, ...fast })

// ---------------------------------------------------------------------------------------------------------------
// random histories

type Write = "create" | "save" | "delete"
type Step =
  | { readonly kind: "load"; readonly who: 0 | 1; readonly key: number }
  | { readonly kind: "write"; readonly who: 0 | 1; readonly key: number; readonly write: Write }
  /** `who` loads `key` and is held after reading the store while the other instance writes it. */
  | { readonly kind: "race"; readonly who: 0 | 1; readonly key: number; readonly write: Write }

const KEYS = 3
const whoArb = FastCheck.constantFrom<0 | 1>(0, 1)
const keyArb = FastCheck.integer({ min: 0, max: KEYS - 1 })
const writeArb = FastCheck.constantFrom<Write>("create", "save", "save", "delete")
const stepArb: FastCheck.Arbitrary<Step> = FastCheck.oneof(
  FastCheck.record({ kind: FastCheck.constant("load" as const), who: whoArb, key: keyArb }),
  FastCheck.record({ kind: FastCheck.constant("write" as const), who: whoArb, key: keyArb, write: writeArb }),
  FastCheck.record({ kind: FastCheck.constant("race" as const), who: whoArb, key: keyArb, write: writeArb })
)
const historyArb = FastCheck.array(stepArb, { minLength: 1, maxLength: 14 })

const view = (found: Option.Option<SessionRecord.SessionRecord>): string =>
  Option.match(found, { onNone: () => "none", onSome: (r) => `v${r.version} n=${String(r.data.n)}` })

/**
 * Runs one history on `nodes`; fails with a description of the first load that disagrees with the store.
 * Each write waits for the other instance's receipt of its announcement.
 */
const runHistory = (nodes: readonly [Node, Node], steps: ReadonlyArray<Step>) =>
  Effect.gen(function*() {
    const ids = Array.from({ length: KEYS }, () => freshRecord({}).id)
    const truth = new Map<number, SessionRecord.SessionRecord>()
    const log: Array<string> = []
    let counter = 0

    /** `who` writes `key` (the write the store allows, given what it holds), then the other receives it. */
    const write = (who: 0 | 1, key: number, wanted: Write) =>
      Effect.gen(function*() {
        const current = truth.get(key)
        const writer = nodes[who].store
        const id = ids[key]
        if (current === undefined || wanted === "create") {
          if (current !== undefined) return // a live record: create would be a Collision; nothing written
          const created = yield* writer.create({ ...freshRecord({ n: ++counter }), id })
          truth.set(key, created)
        } else if (wanted === "save") {
          truth.set(key, yield* writer.save({ ...current, data: SessionData.fromEntries([["n", ++counter]]) }))
        } else {
          yield* writer.delete(id)
          truth.delete(key)
        }
        log.push(`${who} ${wanted} k${key} -> ${view(Option.fromNullable(truth.get(key)))}`)
        yield* nodes[1 - who].receipt(naming(id))
      })

    const check = (who: 0 | 1, key: number, found: Option.Option<SessionRecord.SessionRecord>, what: string) => {
      const expected = view(Option.fromNullable(truth.get(key)))
      log.push(`${who} ${what} k${key} = ${view(found)}`)
      return view(found) === expected
        ? Effect.void
        : Effect.fail(`${log.join("\n")}\n^ instance ${who} ${what} saw ${view(found)}, the store holds ${expected}`)
    }

    for (const step of steps) {
      if (step.kind === "load") {
        yield* check(step.who, step.key, yield* nodes[step.who].store.load(ids[step.key]), "load")
      } else if (step.kind === "write") {
        yield* write(step.who, step.key, step.write)
      } else {
        const reader = nodes[step.who]
        const before = view(Option.fromNullable(truth.get(step.key)))
        const hold = yield* reader.gate.arm(ids[step.key])
        const loading = yield* Effect.fork(reader.store.load(ids[step.key]))
        // a fresh cache hit never reaches the store, so nothing is held: then no race to run
        const held = yield* Effect.raceFirst(
          Effect.as(Deferred.await(hold.reached), true),
          Effect.as(Fiber.await(loading), false)
        )
        if (held) {
          yield* write(step.who === 0 ? 1 : 0, step.key, step.write)
          yield* Deferred.succeed(hold.release, undefined)
        } else {
          reader.gate.disarm()
        }
        const raced = yield* Fiber.join(loading)
        const after = view(Option.fromNullable(truth.get(step.key)))
        log.push(`${step.who} held load k${step.key} = ${view(raced)}`)
        if (view(raced) !== before && view(raced) !== after) {
          return yield* Effect.fail(`${log.join("\n")}\n^ the held load saw neither ${before} nor ${after}`)
        }
        // the next load must not be served the record the held load read, if it is outdated
        yield* check(step.who, step.key, yield* reader.store.load(ids[step.key]), "load after the race")
      }
    }
  })

const envInt = (name: string, fallback: number): number => {
  const v = Number(process.env[name])
  return Number.isSafeInteger(v) && v > 0 ? v : fallback
}
const SEED = envInt("INVALIDATION_SEED", Date.now() % 1_000_000)
const RUNS = envInt("INVALIDATION_RUNS", 150)

await describeService(
  "CachingStore with a Redis invalidation channel, two instances",
  env.redisHost,
  env.redisPort,
  () => {
    it.live(`random histories of writes, loads and held loads agree with the store (${RUNS} runs, seed ${SEED})`, () =>
      Effect.scoped(Effect.gen(function*() {
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const nodes = [
          yield* node(shared.store, redisChannel(sharedRedis, channel)),
          yield* node(shared.store, redisChannel(sharedRedis, channel))
        ] as const
        const runtime = yield* Effect.runtime<never>()
        let failure = ""
        const property = FastCheck.asyncProperty(historyArb, async (steps) => {
          const exit = await Effect.runPromiseExit(
            runHistory(nodes, steps).pipe(Effect.provide(runtime.context as Context.Context<never>))
          )
          if (Exit.isSuccess(exit)) return true
          failure = Exit.isFailure(exit) ? String(exit.cause._tag === "Fail" ? exit.cause.error : exit.cause) : ""
          return false
        })
        const result = yield* Effect.promise(() =>
          FastCheck.check(property, { numRuns: RUNS, seed: SEED, endOnFailure: false })
        )
        assert.isFalse(
          result.failed,
          `seed ${SEED}, path ${result.counterexamplePath}, shrunk ${result.numShrinks} times:\n${failure}`
        )
      })))

    it.live("a load that read the store while the subscription was lost never fills the cache once it is back", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => privateRedis()),
          (s) => Effect.promise(() => s.stop())
        )
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const [a, b] = [
          yield* node(shared.store, redisChannel(server.url, channel)),
          yield* node(shared.store, redisChannel(server.url, channel))
        ]
        const created = yield* a.store.create(freshRecord({ n: 1 }))
        yield* b.receipt(naming(created.id))

        yield* Effect.promise(() => server.kill())
        yield* b.receipt((e) => e._tag === "Disconnected")
        // a load while disconnected reads the store, and must not fill the cache even if it ends once connected
        const hold = yield* b.gate.arm(created.id)
        const loading = yield* Effect.fork(b.store.load(created.id))
        yield* Deferred.await(hold.reached) // b has read n = 1
        yield* a.store.save({ ...created, data: SessionData.fromEntries([["n", 2]]) }) // announced to nobody
        yield* Effect.promise(() => server.start())
        yield* b.receipt((e) => e._tag === "Connected")
        yield* Deferred.succeed(hold.release, undefined)
        assert.strictEqual(view(yield* Fiber.join(loading)), "v1 n=1") // what it read, before the save
        const loadsBefore = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(created.id)), "v2 n=2")
        assert.strictEqual(b.gate.loads(), loadsBefore + 1, "the held load did not fill the cache")
        // the channel works again: b's cache is trusted, and a's next save reaches it
        assert.strictEqual(view(yield* b.store.load(created.id)), "v2 n=2")
        assert.strictEqual(b.gate.loads(), loadsBefore + 1, "b caches again once connected")
        const saved = yield* a.store.save({ ...created, version: 2, data: SessionData.fromEntries([["n", 3]]) })
        yield* b.receipt(naming(created.id))
        assert.strictEqual(view(yield* b.store.load(created.id)), `v${saved.version} n=3`)
      })))

    it.live("a frozen channel server is noticed by the heartbeat: caches bypassed until it answers again", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => privateRedis()),
          (s) => Effect.promise(() => s.stop())
        )
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const frozenChannel = () =>
          RedisStore.layerInvalidation({
            url: Redacted.make(server.url),
            channel,
            publishTimeout: "300 millis",
            ...fast
          })
        const [a, b] = [yield* node(shared.store, frozenChannel()), yield* node(shared.store, frozenChannel())]
        const created = yield* a.store.create(freshRecord({ n: 1 }))
        yield* b.receipt(naming(created.id))
        yield* b.store.load(created.id)
        const cached = b.gate.loads()
        yield* b.store.load(created.id)
        assert.strictEqual(b.gate.loads(), cached, "b caches the record")

        // SIGSTOP: the connections stay open, nothing answers
        server.freeze()
        yield* Effect.addFinalizer(() => Effect.sync(() => server.resume()))
        yield* b.receipt((e) => e._tag === "Disconnected")
        yield* a.store.save({ ...created, data: SessionData.fromEntries([["n", 2]]) }) // its publish times out
        const down = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(created.id)), "v2 n=2")
        assert.strictEqual(b.gate.loads(), down + 1, "while the server is frozen b reads the store")

        server.resume()
        yield* b.receipt((e) => e._tag === "Connected")
        const saved = yield* b.store.load(created.id)
        assert.strictEqual(view(saved), "v2 n=2")
        // a too lost its subscription and regained it (its publisher's connection stayed open)
        yield* a.receipt((e) => e._tag === "Disconnected")
        yield* a.receipt((e) => e._tag === "Connected")
        yield* a.store.save({ ...Option.getOrThrow(saved), data: SessionData.fromEntries([["n", 3]]) })
        yield* b.receipt(naming(created.id))
        assert.strictEqual(view(yield* b.store.load(created.id)), "v3 n=3")
      })))

    it.live("on a Redis Cluster: an announcement reaches an instance subscribed on another node", () =>
      Effect.scoped(Effect.gen(function*() {
        const cluster = yield* Effect.acquireRelease(
          Effect.promise(() => startCluster()),
          (c) => Effect.promise(() => c.stop())
        )
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const on = (first: number) =>
          RedisStore.layerInvalidationCluster({
            nodes: [...cluster.nodes.slice(first), ...cluster.nodes.slice(0, first)],
            channel,
            ...fast
          })
        const [a, b] = [yield* node(shared.store, on(0)), yield* node(shared.store, on(1))]
        const created = yield* a.store.create(freshRecord({ n: 1 }))
        yield* b.receipt(naming(created.id))
        assert.strictEqual(view(yield* b.store.load(created.id)), "v1 n=1")
        const loads = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(created.id)), "v1 n=1")
        assert.strictEqual(b.gate.loads(), loads, "b caches the record")
        yield* a.store.delete(created.id)
        yield* b.receipt(naming(created.id))
        assert.strictEqual(view(yield* b.store.load(created.id)), "none")
      })))

    it.live("a run of deleteExpired that removed records makes the other instances forget their caches", () =>
      Effect.scoped(Effect.gen(function*() {
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const [a, b] = [
          yield* node(shared, redisChannel(sharedRedis, channel)),
          yield* node(shared, redisChannel(sharedRedis, channel))
        ]
        const live = yield* a.store.create(freshRecord({ n: 1 }, 3 * HOUR))
        yield* b.receipt(naming(live.id))
        yield* b.store.load(live.id)
        const loads = b.gate.loads()
        yield* b.store.load(live.id)
        assert.strictEqual(b.gate.loads(), loads, "b caches the live record")
        // a record that has expired an hour from now, removed by a run under a clock two hours ahead
        yield* shared.store.create(freshRecord({ n: 2 }, 60_000))
        const run = Option.getOrThrow(a.deletion).deleteExpired()
        assert.strictEqual(yield* Effect.withClock(run, shiftedClock(2 * HOUR)), 1)
        yield* b.receipt((e) => e._tag === "InvalidatedAll")
        const before = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(live.id)), "v1 n=1")
        assert.strictEqual(b.gate.loads(), before + 1, "b read the store again")
      })))

    it.live("a user revoked through one instance's index is evicted by the others once they receive it", () =>
      Effect.scoped(Effect.gen(function*() {
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const [a, b] = [
          yield* node(shared, redisChannel(sharedRedis, channel)),
          yield* node(shared, redisChannel(sharedRedis, channel))
        ]
        const user = uniquePrefix("user")
        const bound = { n: 1, [META_KEY]: { createdAt: 1, user: { id: user, authenticatedAt: 2 } } }
        const [s1, s2] = [
          yield* a.store.create(freshRecord(bound, HOUR)),
          yield* a.store.create(freshRecord(bound, HOUR))
        ]
        yield* b.receipt(naming(s2.id))
        // b serves both from its cache (maxStaleness is an hour)
        for (const s of [s1, s2]) yield* b.store.load(s.id)
        const loads = b.gate.loads()
        for (const s of [s1, s2]) assert.strictEqual(view(yield* b.store.load(s.id)), "v1 n=1")
        assert.strictEqual(b.gate.loads(), loads, "b caches both")
        assert.strictEqual(yield* Option.getOrThrow(a.index).revoke(user), 2)
        // the revoke named what it deleted; without that, this receipt never comes
        yield* b.receipt((e) => e._tag === "Invalidated" && e.ids.includes(s1.id) && e.ids.includes(s2.id)).pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("no announcement of the revoke") })
        )
        for (const s of [s1, s2]) assert.strictEqual(view(yield* b.store.load(s.id)), "none")
      })))

    it.live("an announcement of more ids than a message holds arrives whole, in several messages", () =>
      Effect.scoped(Effect.gen(function*() {
        const shared = yield* MemoryStore.make()
        const channel = uniquePrefix("channel")
        const [a, b] = [
          yield* node(shared.store, redisChannel(sharedRedis, channel)),
          yield* node(shared.store, redisChannel(sharedRedis, channel))
        ]
        const ids = Array.from({ length: Invalidation.MAX_IDS_PER_MESSAGE * 2 + 7 }, () => freshRecord({}).id)
        yield* a.channel.announce(ids)
        const missing = new Set<string>(ids)
        let messages = 0
        while (missing.size > 0) {
          yield* b.receipt((e) => {
            if (e._tag !== "Invalidated") return false
            messages++
            for (const id of e.ids) missing.delete(id)
            return true
          })
        }
        assert.strictEqual(messages, 3)
      })))

    it.effect("a refused channel option fails the layer with InvalidOption", () =>
      Effect.gen(function*() {
        yield* assertLayerRefused(
          RedisStore.layerInvalidation({ heartbeat: "soon" as never }),
          "RedisStore",
          "heartbeat"
        )
        yield* assertLayerRefused(RedisStore.layerInvalidation({ channel: "" }), "RedisStore", "channel")
        yield* assertLayerRefused(
          RedisStore.layerInvalidationCluster({ nodes: [], channel: "x" }),
          "RedisStore",
          "nodes"
        )
        yield* assertLayerRefused(
          CachingStore.layer({
            cache: LruStore.layer(),
            store: MemoryStore.layer(),
            invalidation: RedisStore.layerInvalidation({ publishTimeout: "-1 seconds" as never })
          }),
          "RedisStore",
          "publishTimeout"
        )
      }))

    it.live("a channel whose Redis cannot be reached fails the layer with Unavailable", () =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(() => sparePort())
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(
          RedisStore.layerInvalidation({
            url: Redacted.make(`redis://127.0.0.1:${port}`),
            connectTimeout: "1 second"
          })
        )))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(
          Option.isSome(error) && error.value._tag === "StoreError" && error.value.reason === "Unavailable"
        )
      }))
  }
)

await describeService(
  "CachingStore with a PostgreSQL invalidation channel, two instances",
  env.pgHost,
  env.pgPort,
  () => {
    it.live("a listening connection killed by the server: caches bypassed until a new one hears its heartbeat", () =>
      Effect.scoped(Effect.gen(function*() {
        const shared = yield* MemoryStore.make()
        const channel = uniqueTable("chan")
        // each instance has its own client, so its own listening connection
        const pgChannel = () =>
          SqlStore.layerInvalidation({ channel, ...fast }).pipe(Layer.provide(PgClient.layer(pgConfig)))
        const [a, b] = [yield* node(shared.store, pgChannel()), yield* node(shared.store, pgChannel())]
        const created = yield* a.store.create(freshRecord({ n: 1 }))
        yield* b.receipt(naming(created.id))
        yield* b.store.load(created.id)
        const cached = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(created.id)), "v1 n=1")
        assert.strictEqual(b.gate.loads(), cached, "b caches the record")

        // the server ends both listening connections (the client reports nothing: the heartbeat notices)
        const admin = yield* postgres.client
        const killed = yield* admin.unsafe<{ readonly pid: number }>(
          `SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity WHERE query = 'LISTEN "${channel}"'`
        )
        assert.strictEqual(killed.length, 2)
        yield* b.receipt((e) => e._tag === "Disconnected")
        const saved = yield* a.store.save({ ...created, data: SessionData.fromEntries([["n", 2]]) })
        const down = b.gate.loads()
        assert.strictEqual(view(yield* b.store.load(created.id)), "v2 n=2")
        assert.strictEqual(b.gate.loads(), down + 1, "while disconnected b reads the store")

        yield* b.receipt((e) => e._tag === "Connected")
        yield* a.receipt((e) => e._tag === "Disconnected")
        yield* a.receipt((e) => e._tag === "Connected")
        assert.strictEqual(view(yield* b.store.load(created.id)), "v2 n=2")
        yield* a.store.save({ ...saved, data: SessionData.fromEntries([["n", 3]]) })
        yield* b.receipt(naming(created.id))
        assert.strictEqual(view(yield* b.store.load(created.id)), "v3 n=3")
      })))
  }
)
