import { assert, describe, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option, Schema } from "effect"
import { MemoryStore, Session, SessionMiddleware } from "effect-sessions"
import { makeClient, serve } from "./support/http.js"

const Counter = Session.key("counter", Schema.Number)

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/count",
    Effect.gen(function*() {
      const n = Option.getOrElse(yield* Counter, () => 0) + 1
      yield* Counter.set(n)
      return HttpServerResponse.text(String(n))
    })
  ),
  HttpRouter.get("/plain", HttpServerResponse.text("plain")),
  HttpRouter.use(SessionMiddleware.middleware)
)

const layer = SessionMiddleware.layer().pipe(Layer.provideMerge(MemoryStore.layer()))

describe("Session", () => {
  it.live("counter round trip", () =>
    Effect.gen(function*() {
      const url = yield* serve(router)
      const client = makeClient(url)
      const r1 = yield* client.get("/count")
      assert.strictEqual(r1.body, "1")
      const c = r1.cookie("__Host-session")
      assert.isDefined(c)
      console.log(r1.setCookies.map((c) => c.raw))
      const r2 = yield* client.get("/count")
      assert.strictEqual(r2.body, "2")
      console.log(r2.setCookies.map((c) => c.raw))
      const r3 = yield* client.get("/plain")
      assert.strictEqual(r3.setCookies.length, 0)
    }).pipe(Effect.scoped, Effect.provide(layer)))
})
