/**
 * Our app: the two routes on `@effect/platform`'s `HttpRouter`, served by `NodeHttpServer`, with
 * `SessionMiddleware` applied last to the router (as its docs say) over the variant's store, with the
 * library's defaults except the expiry: `OnInactivity(4 s)` with `refreshAfter` 2 s, the read-only
 * route's configuration, used for both routes. The cookie keeps its default name and flags
 * (`__Host-session`, `Secure`): the load generator replays it over plain http on 127.0.0.1, as
 * Chromium does. Store calls are counted by a `SessionStore` layer wrapped around the variant's.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { createServer } from "node:http"
import pg from "pg"
import * as CachingStore from "../../src/CachingStore.js"
import * as Expiry from "../../src/Expiry.js"
import * as LruStore from "../../src/LruStore.js"
import * as MemoryStore from "../../src/MemoryStore.js"
import * as RedisStore from "../../src/RedisStore.js"
import * as Session from "../../src/Session.js"
import * as SessionMiddleware from "../../src/SessionMiddleware.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SqlStore from "../../src/SqlStore.js"
import { pgClientLayer, services, uniqueName, unlinkPrefix } from "../lib/services.js"
import type { Server, StoreName, Variant } from "./variants.js"

const Counter = Session.key("n", Schema.Number)

/** `/count`: increments the session's counter. */
export const count = Effect.gen(function*() {
  const n = Option.getOrElse(yield* Counter, () => 0) + 1
  yield* Counter.set(n)
  return HttpServerResponse.text(String(n))
})

/** `/read`: reads it only. */
export const read = Effect.map(Counter, (n) => HttpServerResponse.text(String(Option.getOrElse(n, () => 0))))

export const sessionRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/count", count),
  HttpRouter.get("/read", read),
  HttpRouter.use(SessionMiddleware.middleware)
)

export const plainRouter = () => {
  let n = 0
  return HttpRouter.empty.pipe(
    HttpRouter.get("/count", Effect.sync(() => HttpServerResponse.text(String(++n)))),
    HttpRouter.get("/read", Effect.sync(() => HttpServerResponse.text(String(n))))
  )
}

/** Wraps the `SessionStore` of `inner`, counting writes (create + save) and reads (load). */
export const counting = <E, R>(
  inner: Layer.Layer<SessionStore.SessionStore, E, R>,
  counts: { writes: number; reads: number }
): Layer.Layer<SessionStore.SessionStore, E, R> =>
  Layer.effect(
    SessionStore.SessionStore,
    Effect.map(SessionStore.SessionStore, (store) =>
      SessionStore.SessionStore.of({
        create: (record) =>
          Effect.suspend(() => {
            counts.writes++
            return store.create(record)
          }),
        save: (record) =>
          Effect.suspend(() => {
            counts.writes++
            return store.save(record)
          }),
        load: (id) =>
          Effect.suspend(() => {
            counts.reads++
            return store.load(id)
          }),
        delete: store.delete
      }))
  ).pipe(Layer.provide(inner))

interface StoreSetup {
  readonly layer: Layer.Layer<SessionStore.SessionStore, unknown>
  readonly cleanup: () => Promise<void>
}

const dropTable = (table: string) => async () => {
  const pool = new pg.Pool({ ...services.pg, max: 1 })
  await pool.query(`DROP TABLE IF EXISTS "${table}"`)
  await pool.end()
}

/** The variant's store layer (without counting) and what removes its data afterwards. */
export const storeSetup = (store: Exclude<StoreName, "none">, sessions: number): StoreSetup => {
  switch (store) {
    case "memory":
      return { layer: MemoryStore.layer(), cleanup: async () => {} }
    case "redis": {
      const keyPrefix = `${uniqueName("bench")}:`
      return {
        layer: RedisStore.layer({
          url: Redacted.make(`redis://${services.redis.host}:${services.redis.port}`),
          keyPrefix
        }),
        cleanup: async () => {
          const client = new Redis(services.redis)
          await unlinkPrefix(client, keyPrefix)
          await client.quit()
        }
      }
    }
    case "pg": {
      const table = uniqueName("bench_sql")
      return { layer: SqlStore.layer({ table }).pipe(Layer.provide(pgClientLayer)), cleanup: dropTable(table) }
    }
    case "caching": {
      const table = uniqueName("bench_sql")
      return {
        layer: CachingStore.layer({
          cache: LruStore.layer({ maxEntries: sessions }),
          store: SqlStore.layer({ table }).pipe(Layer.provide(pgClientLayer)),
          maxStaleness: "5 seconds"
        }),
        cleanup: dropTable(table)
      }
    }
  }
}

export const start = async (variant: Variant): Promise<Server> => {
  const counts = { writes: 0, reads: 0 }
  const serverLayer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
  const setup = variant.store === "none" ? undefined : storeSetup(variant.store, 10_000)
  const live = setup === undefined
    ? HttpServer.serve(plainRouter()).pipe(Layer.provideMerge(serverLayer))
    : HttpServer.serve(sessionRouter).pipe(
      Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("4 seconds"), refreshAfter: "2 seconds" })),
      Layer.provide(counting(setup.layer, counts)),
      Layer.provideMerge(serverLayer)
    )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(live, scope) as Effect.Effect<Context.Context<HttpServer.HttpServer>, unknown>
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    port: address.port,
    counts: () => ({ ...counts }),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await setup?.cleanup()
    }
  }
}
