/**
 * CSRF protection observed through a real HTTP server: tokens, the Origin / Sec-Fetch-Site check, the 403.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import { Csrf, MemoryStore, Session, SessionMiddleware } from "effect-sessions"
import { type Client, makeClient, serve } from "./support/http.js"
import { awaitReply, open, type RawReply, rawRequest } from "./support/rawHttp.js"

const Actions = Session.key("actions", Schema.Number)

const act = Effect.gen(function*() {
  const n = Option.getOrElse(yield* Actions, () => 0) + 1
  yield* Actions.set(n)
  return HttpServerResponse.text(`done ${n}`)
})

/** The routes every app shares: a token for the page, a count of actions taken, a logout. */
const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/token", Effect.map(Csrf.token, (t) => HttpServerResponse.text(t))),
  HttpRouter.get("/actions", Effect.map(Actions.getOrElse(() => 0), (n) => HttpServerResponse.text(String(n)))),
  HttpRouter.post("/action", act),
  HttpRouter.put("/action", act),
  HttpRouter.del("/action", act),
  HttpRouter.post("/logout", Effect.as(Session.flush, HttpServerResponse.text("bye"))),
  HttpRouter.all("/any", act),
  // the handler reads the body the check has read before it
  HttpRouter.post(
    "/echo",
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        Effect.map(
          Effect.orDie(request.urlParamsBody),
          (params) => HttpServerResponse.text(params.find(([name]) => name === "note")?.[1] ?? "")
        )
    )
  )
)

const withMiddleware = (options?: Csrf.Options) =>
  routes.pipe(HttpRouter.use(Csrf.middleware(options)), HttpRouter.use(SessionMiddleware.middleware))

/** The function form: a handler that checks the request itself and leaves the error to the platform. */
const withGuard = HttpRouter.empty.pipe(
  HttpRouter.get("/token", Effect.map(Csrf.token, (t) => HttpServerResponse.text(t))),
  HttpRouter.get("/actions", Effect.map(Actions.getOrElse(() => 0), (n) => HttpServerResponse.text(String(n)))),
  HttpRouter.post("/action", Effect.zipRight(Csrf.verifyRequest(), act)),
  HttpRouter.use(SessionMiddleware.middleware)
)

const Live = SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer()))

const withServer = <A, E>(app: typeof withGuard, body: (client: Client, url: string) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const url = yield* serve(app)
    return yield* body(makeClient(url), url)
  }).pipe(Effect.scoped, Effect.provide(Live))

const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString()
})

const tokenOf = (client: Client) =>
  Effect.map(client.get("/token"), (reply) => {
    assert.strictEqual(reply.status, 200)
    return reply.body
  })

const actions = (client: Client) => Effect.map(client.get("/actions"), (reply) => reply.body)

const assertRefused = (reply: { readonly status: number; readonly body: string }) => {
  assert.strictEqual(reply.status, 403)
  assert.strictEqual(reply.body, "Forbidden")
}

describe("Csrf middleware", () => {
  const app = withMiddleware()

  it.live("accepts a same-origin form POST carrying the session's token", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const reply = yield* client.request("/action", form({ _csrf: token }, { origin: url }))
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.body, "done 1")
        const again = yield* client.request("/action", form({ _csrf: token }, { "sec-fetch-site": "same-origin" }))
        assert.strictEqual(again.body, "done 2")
        assert.strictEqual(yield* actions(client), "2")
      })))

  it.live("accepts the token in the x-csrf-token header, for PUT and DELETE too", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        for (const method of ["POST", "PUT", "DELETE"]) {
          const reply = yield* client.request("/action", { method, headers: { "x-csrf-token": token, origin: url } })
          assert.strictEqual(reply.status, 200, method)
        }
        assert.strictEqual(yield* actions(client), "3")
      })))

  it.live("refuses an unsafe request without a token, or with a wrong one, and the handler does not run", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const otherSessionToken = yield* tokenOf(makeClient(url))
        const flipped = token.slice(0, 50) + (token[50] === "A" ? "B" : "A") + token.slice(51)
        for (
          const init of [
            form({}, { origin: url }),
            form({ _csrf: "" }, { origin: url }),
            form({ _csrf: otherSessionToken }, { origin: url }),
            form({ _csrf: flipped }, { origin: url }),
            form({ _csrf: token.slice(0, 43) }, { origin: url }),
            { method: "POST", headers: { origin: url, "x-csrf-token": "nonsense" } },
            {
              method: "POST",
              headers: { origin: url, "content-type": "application/json" },
              body: `{"_csrf":"${token}"}`
            }
          ]
        ) {
          assertRefused(yield* client.request("/action", init))
        }
        assert.strictEqual(yield* actions(client), "0")
      })))

  it.live("refuses a request from another site even with a valid token", () =>
    withServer(app, (client) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        for (
          const headers of [
            { origin: "http://evil.example" },
            { origin: "http://127.0.0.1.evil.example" },
            { origin: "null" },
            { "sec-fetch-site": "cross-site" },
            { "sec-fetch-site": "same-site" },
            { "sec-fetch-site": "cross-site", origin: "http://evil.example" }
          ]
        ) {
          assertRefused(yield* client.request("/action", form({ _csrf: token }, headers)))
        }
        assert.strictEqual(yield* actions(client), "0")
      })))

  it.live("without Origin or Sec-Fetch-Site the token alone decides", () =>
    withServer(app, (client) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        assert.strictEqual((yield* client.request("/action", form({ _csrf: token }))).status, 200)
        assertRefused(yield* client.request("/action", form({})))
        assert.strictEqual(yield* actions(client), "1")
      })))

  it.live("every token is different, all of them verify, and none survives a logout", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const tokens = [yield* tokenOf(client), yield* tokenOf(client), yield* tokenOf(client)]
        assert.strictEqual(new Set(tokens).size, 3)
        for (const token of tokens) {
          assert.strictEqual((yield* client.request("/action", form({ _csrf: token }, { origin: url }))).status, 200)
        }
        assert.strictEqual((yield* client.request("/logout", form({ _csrf: tokens[0] }, { origin: url }))).body, "bye")
        assertRefused(yield* client.request("/action", form({ _csrf: tokens[1] }, { origin: url })))
        const fresh = yield* tokenOf(client)
        assert.strictEqual((yield* client.request("/action", form({ _csrf: fresh }, { origin: url }))).body, "done 1")
      })))

  it.live("safe methods are not checked", () =>
    withServer(app, (client) =>
      Effect.gen(function*() {
        const reply = yield* client.request("/actions", { headers: { "sec-fetch-site": "cross-site" } })
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.body, "0")
      })))

  it.live("allowedOrigins: a listed origin passes, the request's own host no longer does", () =>
    withServer(withMiddleware({ allowedOrigins: ["https://app.example"] }), (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const listed = form({ _csrf: token }, { origin: "https://app.example", "sec-fetch-site": "same-site" })
        assert.strictEqual((yield* client.request("/action", listed)).status, 200)
        assertRefused(yield* client.request("/action", form({ _csrf: token }, { origin: url })))
        assertRefused(yield* client.request("/action", form({ _csrf: token }, { origin: "http://app.example" })))
        assert.strictEqual(
          (yield* client.request("/action", form({ _csrf: token }, { "sec-fetch-site": "same-origin" }))).status,
          200
        )
      })))

  it.live("requireToken: false relies on the origin check and refuses requests that give no signal", () =>
    withServer(withMiddleware({ requireToken: false }), (client, url) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* client.request("/action", form({}, { origin: url }))).status, 200)
        assertRefused(yield* client.request("/action", form({}, { origin: "http://evil.example" })))
        assertRefused(yield* client.request("/action", form({})))
        assert.strictEqual(yield* actions(client), "1")
      })))

  it.live("an invalid allowed origin refuses unsafe requests instead of guessing", () =>
    withServer(withMiddleware({ allowedOrigins: ["not an origin"] }), (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        assertRefused(yield* client.request("/action", form({ _csrf: token }, { origin: url })))
      })))
})

/** The session cookie a client holds, as a `Cookie` header value. */
const cookieOf = (client: Client) => `__Host-session=${client.jar.get("__Host-session")}`

/**
 * Sends the head of a form POST declaring `head` headers and waits for the response before sending any body.
 * A server that reads the body first never answers: the wait gives up after a while and the test fails.
 */
const refusedUnread = (url: string, head: Record<string, string>): Effect.Effect<RawReply, string> =>
  Effect.scoped(Effect.flatMap(open(url), (socket) => {
    const lines = Object.entries({
      host: new URL(url).host,
      "content-type": "application/x-www-form-urlencoded",
      ...head
    })
      .map(([k, v]) => `${k}: ${v}\r\n`).join("")
    return awaitReply(socket, () => socket.write(`POST /action HTTP/1.1\r\n${lines}\r\n`)).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "no response before the body was sent" })
    )
  }))

/**
 * `streamUntilAnswered(url, head, total)` streams a chunked form body of up to `total` bytes, a chunk at a time,
 * and stops as soon as the server answers or closes: it succeeds with the bytes sent by then.
 */
const streamUntilAnswered = (url: string, head: Record<string, string>, total: number): Effect.Effect<number> =>
  Effect.scoped(Effect.flatMap(open(url), (socket) =>
    Effect.async<number>((resume) => {
      let sent = 0
      let done = false
      const finish = () => {
        if (done) return
        done = true
        resume(Effect.succeed(sent))
      }
      socket.on("data", finish)
      socket.once("close", finish)
      socket.once("error", finish)
      const lines = Object.entries({
        host: new URL(url).host,
        "content-type": "application/x-www-form-urlencoded",
        ...head
      })
        .map(([k, v]) => `${k}: ${v}\r\n`).join("")
      socket.write(`POST /action HTTP/1.1\r\n${lines}\r\n`)
      const chunk = "x".repeat(64 * 1024)
      const pump = () => {
        while (!done && sent < total) {
          sent += chunk.length
          if (!socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)) {
            socket.once("drain", pump)
            return
          }
        }
        if (!done) socket.write("0\r\n\r\n")
      }
      pump()
    })))

describe("Csrf decides from headers first and reads no body it does not need", () => {
  const app = withMiddleware()
  const big = String(40 * 1024 * 1024)

  it.live("a form POST without a session is refused before its body is sent", () =>
    withServer(app, (_client, url) =>
      Effect.gen(function*() {
        assertRefused(yield* refusedUnread(url, { "content-length": big, origin: url }))
        assertRefused(yield* refusedUnread(url, { "content-length": "100", origin: url }))
      })))

  it.live("with a session, a body declared over maxBodyBytes is refused before it is sent", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        yield* tokenOf(client)
        assertRefused(yield* refusedUnread(url, { "content-length": big, origin: url, cookie: cookieOf(client) }))
        assertRefused(yield* refusedUnread(url, { "content-length": "65537", origin: url, cookie: cookieOf(client) }))
        assert.strictEqual(yield* actions(client), "0")
      })))

  it.live("a body of unknown length is read up to maxBodyBytes: within it the token is found, past it reading stops", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const chunked = (body: string) =>
          `POST /action HTTP/1.1\r\nhost: ${new URL(url).host}\r\norigin: ${url}\r\ncookie: ${cookieOf(client)}\r\n` +
          `content-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n` +
          `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
        const small = yield* rawRequest(url, chunked(new URLSearchParams({ _csrf: token }).toString()))
        assert.strictEqual(small.status, 200)
        // 40 MiB streamed without a length: the server stops reading after the cap, without buffering the rest
        const sent = yield* streamUntilAnswered(url, {
          origin: url,
          cookie: cookieOf(client),
          "transfer-encoding": "chunked"
        }, 40 * 1024 * 1024)
        assert.isBelow(sent, 4 * 1024 * 1024, "the server went on reading far past the cap")
        assert.strictEqual(yield* actions(client), "1")
      })))

  it.live("a form with the token after a megabyte of padding is refused; within the cap it passes and the handler reads the body", () =>
    withServer(app, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const padded = form({ pad: "x".repeat(1024 * 1024), _csrf: token }, { origin: url })
        assertRefused(yield* client.request("/action", padded))
        const within = form({ pad: "x".repeat(60 * 1024), note: "kept", _csrf: token }, { origin: url })
        assert.strictEqual((yield* client.request("/action", within)).status, 200)
        const echoed = yield* client.request("/echo", form({ note: "read twice", _csrf: token }, { origin: url }))
        assert.strictEqual(echoed.body, "read twice")
        assert.strictEqual(yield* actions(client), "1")
      })))

  it.live("maxBodyBytes sets the cap", () =>
    withServer(withMiddleware({ maxBodyBytes: 200 }), (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        assert.strictEqual((yield* client.request("/action", form({ _csrf: token }, { origin: url }))).status, 200)
        assertRefused(yield* client.request("/action", form({ pad: "x".repeat(200), _csrf: token }, { origin: url })))
      })))

  it.live("an invalid maxBodyBytes refuses unsafe requests instead of guessing", () =>
    withServer(withMiddleware({ maxBodyBytes: -1 }), (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        assertRefused(
          yield* client.request("/action", { method: "POST", headers: { origin: url, "x-csrf-token": token } })
        )
      })))
})

describe("Csrf checks every method but GET, HEAD, OPTIONS and TRACE", () => {
  it.live("PROPFIND, MKCOL, LOCK, PURGE and others from another origin without a token never reach the handler", () =>
    withServer(withMiddleware(), (client, url) =>
      Effect.gen(function*() {
        for (
          const method of [
            "PROPFIND",
            "MKCOL",
            "LOCK",
            "PURGE",
            "PROPPATCH",
            "COPY",
            "MOVE",
            "UNLOCK",
            "SEARCH",
            "REPORT"
          ]
        ) {
          assertRefused(yield* client.request("/any", { method, headers: { origin: "https://evil.example" } }))
          assertRefused(yield* client.request("/any", { method }))
        }
        assert.strictEqual(yield* actions(client), "0")
        const token = yield* tokenOf(client)
        assert.strictEqual(
          (yield* client.request("/any", { method: "PROPFIND", headers: { origin: url, "x-csrf-token": token } }))
            .status,
          200
        )
        for (const method of ["GET", "HEAD", "OPTIONS"]) {
          assert.strictEqual(
            (yield* client.request("/any", { method, headers: { "sec-fetch-site": "cross-site" } })).status,
            200,
            method
          )
        }
      })))
})

describe("Csrf compares the full origin, scheme included", () => {
  it.live("an https Origin is refused by an app served over http, unless X-Forwarded-Proto says https", () =>
    withServer(withMiddleware(), (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        const https = url.replace("http://", "https://")
        assertRefused(yield* client.request("/action", form({ _csrf: token }, { origin: https })))
        assertRefused(
          yield* client.request("/action", form({ _csrf: token }, { origin: https, "x-forwarded-proto": "http" }))
        )
        assert.strictEqual(
          (yield* client.request("/action", form({ _csrf: token }, { origin: https, "x-forwarded-proto": "https" })))
            .status,
          200
        )
        assertRefused(
          yield* client.request("/action", form({ _csrf: token }, { origin: url, "x-forwarded-proto": "https" }))
        )
        assert.strictEqual((yield* client.request("/action", form({ _csrf: token }, { origin: url }))).status, 200)
        assert.strictEqual(yield* actions(client), "2")
      })))
})

describe("Csrf functions", () => {
  it.live("verifyRequest in a handler: the CsrfError answers 403 with an opaque body", () =>
    withServer(withGuard, (client, url) =>
      Effect.gen(function*() {
        const token = yield* tokenOf(client)
        assert.strictEqual((yield* client.request("/action", form({ _csrf: token }, { origin: url }))).status, 200)
        assertRefused(yield* client.request("/action", form({ _csrf: "x" }, { origin: url })))
        assertRefused(yield* client.request("/action", form({ _csrf: token }, { origin: "http://evil.example" })))
        assert.strictEqual(yield* actions(client), "1")
      })))

  it.live("a CsrfError encodes as its tag only", () =>
    Effect.gen(function*() {
      const error = Csrf.csrfError("InvalidToken")
      assert.strictEqual(error.reason, "InvalidToken")
      const encoded = yield* Schema.encode(Csrf.CsrfError)(error)
      assert.deepStrictEqual(encoded, { _tag: "CsrfError" })
    }))
})
