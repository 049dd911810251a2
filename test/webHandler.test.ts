/**
 * The demo app served as a Web handler (`HttpApp.toWebHandlerLayer`: Web `Request` in, `Response` out, as Bun,
 * Deno and Hono mount it) and mounted in Hono, driven with Web `Request`s: the session cookie, a handler's own
 * cookies (several `Set-Cookie` headers) and the pre-response commit all reach the client.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { CookieSigner, Expiry, MemoryStore, Session, SessionMiddleware } from "effect-sessions"
import { Hono } from "hono"
import { app as demoApp } from "../demo/app.js"
import { type Client, csrfOf, makeClient, visitsOf } from "./support/http.js"

const ORIGIN = "https://demo.example"
const COOKIE = "__Host-session"

const Visits = Session.key("visits", Schema.Number)

/** A route of the app's own that sets two cookies of its own and writes the session. */
const preferences = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/preferences",
    Effect.gen(function*() {
      yield* Visits.set(100)
      return yield* HttpServerResponse.setCookies(HttpServerResponse.text("saved"), [
        ["theme", "dark", { path: "/", sameSite: "lax" }],
        ["lang", "en", { path: "/", sameSite: "lax" }]
      ])
    })
  ),
  HttpRouter.use(SessionMiddleware.middleware)
)

const app = HttpRouter.concat(demoApp, preferences)

const services = Effect.map(
  CookieSigner.generateKey,
  (key) =>
    SessionMiddleware.layer({ expiry: Expiry.OnInactivity("1 hour") }).pipe(
      Layer.provideMerge(MemoryStore.layer()),
      Layer.provideMerge(CookieSigner.layer({ keys: [key] }))
    )
)

/** The demo as a Web handler, disposed with the scope. */
const webHandler = Effect.flatMap(services, (layer) =>
  Effect.acquireRelease(
    Effect.sync(() => HttpApp.toWebHandlerLayer(app, layer)),
    (web) => Effect.promise(() => web.dispose())
  ))

/** A browser-like request: same-origin, with the `Host` a server would see. */
const sameOrigin = (init?: RequestInit): RequestInit => ({
  ...init,
  headers: { host: new URL(ORIGIN).host, origin: ORIGIN, "sec-fetch-site": "same-origin", ...init?.headers }
})

const sessionJson = (client: Client) =>
  Effect.map(client.request("/api/session", sameOrigin()), (reply) => {
    assert.strictEqual(reply.status, 200)
    return JSON.parse(reply.body) as unknown
  })

/** The scenario every way of serving must pass. */
const scenario = (client: Client) =>
  Effect.gen(function*() {
    // the session cookie arrives, and the commit before the response made the visit count
    const first = yield* client.request("/", sameOrigin())
    assert.strictEqual(visitsOf(first), 1)
    const cookie = first.cookie(COOKIE)
    assert.isDefined(cookie)
    assert.include(cookie!.attributes, { httponly: true, secure: true, samesite: "Lax", path: "/" })
    assert.strictEqual(visitsOf(yield* client.request("/", sameOrigin())), 2)

    // a handler's own cookies arrive beside the session's (its inactivity expiry moved on), each in its own
    // Set-Cookie header
    const saved = yield* client.request("/preferences", sameOrigin())
    assert.strictEqual(saved.status, 200)
    assert.deepStrictEqual(saved.setCookies.map((c) => c.name).sort(), [COOKIE, "lang", "theme"])
    assert.strictEqual(saved.cookie("theme")?.value, "dark")
    assert.deepStrictEqual(yield* sessionJson(client), { visits: 100, name: null, loggedIn: false })

    // a CSRF-protected form post cycles the session id: a new session cookie, the data kept
    const page = yield* client.request("/", sameOrigin())
    assert.strictEqual(visitsOf(page), 101)
    const before = client.jar.get(COOKIE)
    const login = yield* client.request(
      "/login",
      sameOrigin({
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ name: "ada", _csrf: csrfOf(page) }).toString()
      })
    )
    assert.strictEqual(login.status, 303)
    assert.isDefined(login.cookie(COOKIE))
    assert.notStrictEqual(client.jar.get(COOKIE), before)
    assert.deepStrictEqual(yield* sessionJson(client), { visits: 101, name: "ada", loggedIn: true })

    // the same post without its token is refused, and changes nothing
    const forged = yield* client.request(
      "/login",
      sameOrigin({
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ name: "mallory" }).toString()
      })
    )
    assert.strictEqual(forged.status, 403)
    assert.deepStrictEqual(yield* sessionJson(client), { visits: 101, name: "ada", loggedIn: true })
  })

describe("the demo as a Web handler", () => {
  it.scoped("HttpApp.toWebHandlerLayer: Request in, Response out", () =>
    Effect.gen(function*() {
      const web = yield* webHandler
      yield* scenario(makeClient(ORIGIN, (request) => web.handler(request)))
    }))

  it.scoped("mounted in Hono", () =>
    Effect.gen(function*() {
      const web = yield* webHandler
      const hono = new Hono()
      hono.get("/health", (c) => c.text("ok"))
      hono.mount("/", web.handler)
      const client = makeClient(ORIGIN, (request) => Promise.resolve(hono.fetch(request)))
      assert.strictEqual((yield* client.get("/health")).body, "ok")
      yield* scenario(client)
    }))
})
