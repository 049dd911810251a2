/**
 * One app instance of the revocation benchmark, in its own process:
 * `node --import tsx bench/http/instance.ts <redis|pg> <channel|none> <table or key prefix> <channel name>`.
 * The app has `/count` (increments a counter in the session), `/read` (reads it; `0` without a session) and
 * `/logout` (`Session.flush`), over `CachingStore.layer({ cache: LruStore.layer(), store, maxStaleness: 5 s })`
 * with, for `channel`, the store engine's invalidation channel (Redis pub/sub or PostgreSQL LISTEN/NOTIFY).
 * Sessions expire after an hour of inactivity, so no read-only request refreshes one during a run.
 *
 * Over IPC it sends `{ type: "ready", port }` and answers `{ type: "counts" }` with the loads that reached the
 * caching store and the persistent store, and the process's CPU time; `{ type: "stop" }` closes it.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as CachingStore from "../../src/CachingStore.js"
import * as Expiry from "../../src/Expiry.js"
import type * as Invalidation from "../../src/Invalidation.js"
import * as LruStore from "../../src/LruStore.js"
import * as RedisStore from "../../src/RedisStore.js"
import * as Session from "../../src/Session.js"
import * as SessionMiddleware from "../../src/SessionMiddleware.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SqlStore from "../../src/SqlStore.js"
import { onParent, toParent } from "../lib/child.js"
import { pgClientLayer, services } from "../lib/services.js"
import { count, read } from "./effect.js"

const [engine, mode, name, channelName] = process.argv.slice(2)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/count", count),
  HttpRouter.get("/read", read),
  HttpRouter.get("/logout", Effect.as(Session.flush, HttpServerResponse.text("0"))),
  HttpRouter.use(SessionMiddleware.middleware)
)

const counts = { loads: 0, storeLoads: 0 }

/** Counts the loads reaching the `SessionStore` of `inner` into `counts[key]`. */
const countingLoads = <E, R>(
  inner: Layer.Layer<SessionStore.SessionStore, E, R>,
  key: keyof typeof counts
): Layer.Layer<SessionStore.SessionStore, E, R> =>
  Layer.map(inner, (context) => {
    const store = Context.get(context, SessionStore.SessionStore)
    return Context.make(
      SessionStore.SessionStore,
      SessionStore.SessionStore.of({
        ...store,
        load: (id) =>
          Effect.suspend(() => {
            counts[key]++
            return store.load(id)
          })
      })
    )
  })

const redisUrl = Redacted.make(`redis://${services.redis.host}:${services.redis.port}`)
const persistent: Layer.Layer<SessionStore.SessionStore, unknown> = engine === "redis"
  ? RedisStore.layer({ url: redisUrl, keyPrefix: name })
  : SqlStore.layer({ table: name }).pipe(Layer.provide(pgClientLayer))
const channel: Layer.Layer<Invalidation.Invalidation, unknown> | undefined = mode !== "channel"
  ? undefined
  : engine === "redis"
  ? RedisStore.layerInvalidation({ url: redisUrl, channel: channelName })
  : SqlStore.layerInvalidation({ channel: channelName }).pipe(Layer.provide(pgClientLayer))

const store = countingLoads(
  CachingStore.layer({
    cache: LruStore.layer({ maxEntries: 50_000 }),
    store: countingLoads(persistent, "storeLoads"),
    maxStaleness: "5 seconds",
    invalidation: channel
  }),
  "loads"
)

const live = HttpServer.serve(router).pipe(
  Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("1 hour") })),
  Layer.provide(store),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(
  Layer.buildWithScope(live, scope) as Effect.Effect<Context.Context<HttpServer.HttpServer>, unknown>
)
const address = Context.get(context, HttpServer.HttpServer).address
if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")

onParent("counts", () => {
  const cpu = process.cpuUsage()
  toParent({ type: "counts", ...counts, cpuMicros: cpu.user + cpu.system })
})
onParent("stop", async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  toParent({ type: "stopped" })
  process.exit(0)
})
toParent({ type: "ready", port: address.port })
