/**
 * An `HttpApi` with sessions: `SessionMiddleware.HttpApiSession` provides `Session` to the endpoints and
 * commits it like the other middlewares; its declared failure is the opaque `SessionError`.
 * This file doubles as the example of wiring it up.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import {
  Expiry,
  MemoryStore,
  Session,
  SessionId,
  SessionMiddleware,
  SessionStore,
  type SessionToken
} from "effect-sessions"
import { counting } from "./support/countingStore.js"
import { makeClient, serve } from "./support/http.js"

// --- the API -----------------------------------------------------------------------------------

class NotLoggedIn
  extends Schema.TaggedError<NotLoggedIn>()("NotLoggedIn", {}, HttpApiSchema.annotations({ status: 401 }))
{}

const Counter = Session.key("counter", Schema.Number)
const User = Session.key("user", Schema.String)

class Account extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("count", "/count").addSuccess(Schema.Number))
  .add(
    HttpApiEndpoint.post("login", "/login").setUrlParams(Schema.Struct({ name: Schema.String })).addSuccess(
      Schema.String
    )
  )
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String).addError(NotLoggedIn))
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .add(HttpApiEndpoint.post("remember", "/remember").addError(NotLoggedIn))
  .add(HttpApiEndpoint.get("plain", "/plain").addSuccess(Schema.String))
  // a sensitive action: only right after a sign-in
  .add(HttpApiEndpoint.post("pay", "/pay").addSuccess(Schema.String).addError(Session.NotFresh))
{}

class Api extends HttpApi.make("api").add(Account).middleware(SessionMiddleware.HttpApiSession) {}

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("count", () =>
      Effect.gen(function*() {
        const n = Option.getOrElse(yield* Counter, () => 0) + 1
        yield* Counter.set(n)
        return n
      }))
    .handle("login", ({ urlParams }) =>
      Effect.gen(function*() {
        yield* User.set(urlParams.name)
        yield* Session.cycleId
        yield* Session.bindUser(urlParams.name)
        return urlParams.name
      }))
    .handle("me", () =>
      Effect.flatMap(User, Option.match({ onNone: () => Effect.fail(new NotLoggedIn()), onSome: Effect.succeed })))
    .handle("logout", () =>
      Session.flush)
    // writes, then fails into a declared 401: the write is still committed
    .handle("remember", () => Effect.zipRight(Session.insert("remembered", true), Effect.fail(new NotLoggedIn())))
    .handle("plain", () => Effect.succeed("plain"))
    .handle("pay", () => Effect.map(Session.requireFresh("5 minutes"), (user) => `paid by ${user.id}`)))

// --- wiring --------------------------------------------------------------------------------------

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(AccountLive),
  Layer.provide(SessionMiddleware.layerHttpApi({ expiry: Expiry.OnInactivity("1 hour") }))
)

const withApi = <A, E>(
  body: (h: {
    readonly url: string
    readonly probe: ReturnType<typeof counting>["probe"]
    readonly store: SessionStore.Service
  }) => Effect.Effect<A, E>
) => {
  const { layer: storeLayer, probe } = counting(MemoryStore.layer())
  return Effect.gen(function*() {
    const url = yield* serve(yield* HttpApiBuilder.httpApp)
    return yield* body({ url, probe, store: yield* SessionStore.SessionStore })
  }).pipe(
    Effect.scoped,
    Effect.provide([ApiLive, HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer, NodeHttpServer.layerContext]),
    Effect.provide(storeLayer)
  )
}

describe("HttpApi", () => {
  it.live("the counter round trip, login with a new token, logout", () =>
    withApi(({ url }) =>
      Effect.gen(function*() {
        const client = makeClient(url)
        const first = yield* client.get("/count")
        assert.strictEqual(first.body, "1")
        const before = first.cookie("__Host-session")!
        assert.strictEqual(before.attributes["max-age"], "3600")
        assert.strictEqual((yield* client.get("/count")).body, "2")
        assert.strictEqual((yield* client.get("/me")).status, 401)
        const login = yield* client.post("/login?name=ada")
        assert.strictEqual(login.status, 200)
        assert.notStrictEqual(login.cookie("__Host-session")!.value, before.value)
        assert.strictEqual((yield* client.get("/me")).body, "\"ada\"")
        assert.strictEqual((yield* client.get("/count")).body, "3")
        const bye = yield* client.post("/logout")
        assert.strictEqual(bye.cookie("__Host-session")?.attributes["max-age"], "0")
        assert.strictEqual((yield* client.get("/me")).status, 401)
      })
    ))

  it.live("requireFresh in an endpoint: NotFresh is a declared 401 with its reason only; after a sign-in, it passes", () =>
    withApi(({ url }) =>
      Effect.gen(function*() {
        const client = makeClient(url)
        const refused = yield* client.post("/pay")
        assert.strictEqual(refused.status, 401)
        assert.deepStrictEqual(JSON.parse(refused.body), { _tag: "NotFresh", reason: "Unbound" })
        yield* client.post("/login?name=grace")
        const paid = yield* client.post("/pay")
        assert.strictEqual(paid.status, 200)
        assert.strictEqual(paid.body, "\"paid by grace\"")
      })
    ))

  it.live("an endpoint that never touches the session makes no store call and sets no cookie", () =>
    withApi(({ probe, url }) =>
      Effect.gen(function*() {
        const client = makeClient(url)
        yield* client.get("/count")
        probe.reset()
        const plain = yield* client.get("/plain")
        assert.strictEqual(plain.status, 200)
        assert.strictEqual(plain.setCookies.length, 0)
        assert.deepStrictEqual(probe.counts, { create: 0, save: 0, load: 0, delete: 0 })
      })
    ))

  it.live("an endpoint failing with a declared 4xx still commits and gets its cookie", () =>
    withApi(({ store, url }) =>
      Effect.gen(function*() {
        const reply = yield* makeClient(url).post("/remember")
        assert.strictEqual(reply.status, 401)
        const token = reply.cookie("__Host-session")!.value
        const stored = yield* Effect.orDie(store.load(SessionId.fromToken(token as SessionToken.SessionToken)))
        assert.strictEqual(Option.getOrThrow(stored).data.remembered, true)
      })
    ))

  it.live("a failing store: the client sees the opaque SessionError or an empty 500, never the store error", () =>
    withApi(({ probe, url }) =>
      Effect.gen(function*() {
        const client = makeClient(url)
        const token = (yield* client.get("/count")).cookie("__Host-session")!.value
        probe.fail("load", "Unavailable")
        const loadFails = yield* client.get("/count")
        assert.strictEqual(loadFails.status, 500)
        assert.deepStrictEqual(JSON.parse(loadFails.body), { _tag: "SessionError", reason: "Store" })
        probe.heal()
        probe.fail("save", "Unavailable")
        const commitFails = yield* client.get("/count")
        assert.strictEqual(commitFails.status, 500)
        assert.strictEqual(commitFails.body, "")
        for (const body of [loadFails.body, commitFails.body]) {
          for (
            const needle of [
              "StoreError",
              "Unavailable",
              "load",
              token,
              SessionId.fromToken(token as SessionToken.SessionToken)
            ]
          ) {
            assert.notInclude(body, needle)
          }
        }
      })
    ))

  it("the declared failure schema of the middleware encodes the reason only", () => {
    const error = Session.sessionError("Store", new Error("detail that must stay on the server"))
    assert.deepStrictEqual(Schema.encodeSync(Session.SessionError)(error), { _tag: "SessionError", reason: "Store" })
    assert.strictEqual(SessionMiddleware.HttpApiSession.failure, Session.SessionError)
  })
})
