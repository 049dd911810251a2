// The README's example: an Effect HTTP app with sessions (typechecked by `npm test`).
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { CachingStore, Expiry, LruStore, MemoryStore, Session, SessionMiddleware } from "effect-sessions"
import { createServer } from "node:http"

const Visits = Session.key("visits", Schema.Number)

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/",
    Effect.gen(function*() {
      const visits = (yield* Visits.getOrElse(() => 0)) + 1
      yield* Visits.set(visits) // committed just before the response leaves
      return HttpServerResponse.text(`visit number ${visits}`)
    })
  ),
  HttpRouter.post("/logout", Effect.as(Session.flush, HttpServerResponse.empty())),
  HttpRouter.use(SessionMiddleware.middleware) // last: wraps every route above
)

// An LRU cache in front of the store; swap MemoryStore for SqlStore or RedisStore in production.
const Store = CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer(), maxStaleness: "5 seconds" })

HttpServer.serve(app).pipe(
  Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("30 minutes") })),
  Layer.provide(Store),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
  Layer.launch,
  NodeRuntime.runMain
)
