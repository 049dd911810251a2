/**
 * Session values whose schema is asynchronous: the session decodes and encodes synchronously when it can,
 * and such a schema must still work (through the effectful decoder and encoder), with its failures typed.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, ParseResult, Schema } from "effect"
import { MemoryStore, Session, SessionMiddleware } from "effect-sessions"
import { makeClient, serve } from "./support/http.js"

/** A number stored as a string, decoded and encoded after a sleep; negative numbers are refused both ways. */
const SlowNumber = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _, ast) =>
    Effect.zipRight(
      Effect.sleep("1 millis"),
      Number(s) >= 0 ? Effect.succeed(Number(s)) : Effect.fail(new ParseResult.Type(ast, s, "negative"))
    ),
  encode: (n, _, ast) =>
    Effect.zipRight(
      Effect.sleep("1 millis"),
      n >= 0 ? Effect.succeed(String(n)) : Effect.fail(new ParseResult.Type(ast, n, "negative"))
    )
})
const Slow = Session.key("slow", SlowNumber)

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/bump",
    Effect.gen(function*() {
      const n = Option.getOrElse(yield* Slow, () => 0) + 1
      yield* Slow.set(n)
      return HttpServerResponse.text(String(n))
    })
  ),
  HttpRouter.get(
    "/negative",
    Effect.map(
      Effect.either(Slow.set(-1)),
      (e) => HttpServerResponse.text(e._tag === "Left" ? e.left.reason : "stored")
    )
  ),
  HttpRouter.get(
    "/raw-negative",
    Effect.map(Session.insert("slow", "-5"), () => HttpServerResponse.text("ok"))
  ),
  HttpRouter.get(
    "/read",
    Effect.map(
      Effect.either(Slow),
      (e) =>
        HttpServerResponse.text(
          e._tag === "Left" ? e.left.reason : Option.match(e.right, { onNone: () => "none", onSome: String })
        )
    )
  ),
  HttpRouter.use(SessionMiddleware.middleware)
)

describe("Session with an asynchronous schema", () => {
  it.live("values are encoded and decoded through it; its failures are Encode and Decode errors", () =>
    Effect.gen(function*() {
      const client = makeClient(yield* serve(app))
      assert.strictEqual((yield* client.get("/bump")).body, "1")
      assert.strictEqual((yield* client.get("/bump")).body, "2")
      assert.strictEqual((yield* client.get("/negative")).body, "Encode")
      assert.strictEqual((yield* client.get("/read")).body, "2")
      assert.strictEqual((yield* client.get("/raw-negative")).body, "ok")
      assert.strictEqual((yield* client.get("/read")).body, "Decode")
    }).pipe(Effect.scoped, Effect.provide(SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer())))))
})
