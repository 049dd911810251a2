/**
 * Tokens out of traces and logs: a recording Tracer and Logger over a real `HttpServer.serve`, whose
 * `http.server` span copies every request header the platform does not redact.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Csrf, MemoryStore, Session, SessionId, SessionMiddleware, SessionToken } from "effect-sessions"
import { makeClient } from "./support/http.js"
import { makeRecorder, serveLayer } from "./support/recording.js"

const app = (options?: Csrf.Options) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/token", Effect.map(Csrf.token, (t) => HttpServerResponse.text(t))),
    HttpRouter.post("/action", Effect.as(Session.insert("done", true), HttpServerResponse.text("done"))),
    HttpRouter.use(Csrf.middleware(options)),
    HttpRouter.use(SessionMiddleware.middleware)
  )

/** Logs in, sends an unsafe request with the token in `header`, and returns the secrets the request carried. */
const exercise = (url: string, cookieName: string, header: string) =>
  Effect.gen(function*() {
    const client = makeClient(url)
    const token = (yield* client.get("/token")).body
    const reply = yield* client.request("/action", { method: "POST", headers: { [header]: token, origin: url } })
    assert.strictEqual(reply.status, 200)
    const cookie = decodeURIComponent(client.jar.get(cookieName)!)
    assert.isTrue(SessionToken.isSessionToken(cookie))
    return { token, cookie, digest: SessionId.fromToken(cookie as SessionToken.SessionToken) }
  })

const assertClean = (
  dump: string,
  secrets: { readonly token: string; readonly cookie: string; readonly digest: string }
) => {
  assert.notInclude(dump, secrets.cookie, "the session token is in a span or log line")
  assert.notInclude(dump, secrets.digest, "the session id is in a span or log line")
  assert.notInclude(dump, secrets.token, "the CSRF token is in a span or log line")
}

describe("redaction in spans", () => {
  it.live("the default CSRF header and the session cookie are redacted in the http.server span", () => {
    const recorder = makeRecorder()
    return recorder.provide(
      Effect.gen(function*() {
        const url = yield* serveLayer(app(), SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer())))
        const secrets = yield* exercise(url, "__Host-session", "x-csrf-token")
        const server = recorder.spans.filter((s) => s.name === "http.server POST")
        assert.strictEqual(server.length, 1)
        assert.strictEqual(String(server[0].attributes.get("http.request.header.x-csrf-token")), "<redacted>")
        assert.strictEqual(String(server[0].attributes.get("http.request.header.cookie")), "<redacted>")
        assertClean(recorder.dump(), secrets)
      }).pipe(Effect.scoped)
    )
  })

  it.live("another CSRF header is redacted with Csrf.layerRedaction", () => {
    const recorder = makeRecorder()
    return recorder.provide(
      Effect.gen(function*() {
        const layer = Layer.mergeAll(
          SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer())),
          Csrf.layerRedaction({ headerName: "X-App-Csrf" })
        )
        const url = yield* serveLayer(app({ headerName: "X-App-Csrf" }), layer)
        const secrets = yield* exercise(url, "__Host-session", "x-app-csrf")
        const server = recorder.spans.find((s) => s.name === "http.server POST")!
        assert.strictEqual(String(server.attributes.get("http.request.header.x-app-csrf")), "<redacted>")
        assertClean(recorder.dump(), secrets)
      }).pipe(Effect.scoped)
    )
  })

  it.live("the session cookie under any name stays redacted even when the app replaced the platform's list", () => {
    const recorder = makeRecorder()
    return recorder.provide(
      Effect.gen(function*() {
        const layer = SessionMiddleware.layer({ cookie: { name: "constructor", secure: false } }).pipe(
          Layer.provide(MemoryStore.layer())
        )
        const url = yield* serveLayer(app(), layer).pipe(
          Effect.locally(Headers.currentRedactedNames, ["authorization"])
        )
        const secrets = yield* exercise(url, "constructor", "x-csrf-token")
        assertClean(recorder.dump(), secrets)
      }).pipe(Effect.scoped)
    )
  })
})
