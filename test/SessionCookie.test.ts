/**
 * Reading the session cookie: the strict `Cookie` header reading and the choice among several session
 * cookies, as pure functions and through a real HTTP server (raw sockets where `fetch` would rewrite bytes).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schema } from "effect"
import { CookieSigner, MemoryStore, Session, SessionMiddleware, SessionToken } from "effect-sessions"
import * as Cookie from "../src/internal/cookie.js"
import { makeClient, serve } from "./support/http.js"
import { rawRequest } from "./support/rawHttp.js"

const Counter = Session.key("counter", Schema.Number)

const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/count",
    Effect.gen(function*() {
      const n = Option.getOrElse(yield* Counter, () => 0) + 1
      yield* Counter.set(n)
      return HttpServerResponse.text(String(n))
    })
  ),
  HttpRouter.get(
    "/read",
    Effect.map(Counter, (o) => HttpServerResponse.text(Option.match(o, { onNone: () => "none", onSome: String })))
  ),
  HttpRouter.get("/plain", Effect.succeed(HttpServerResponse.text("plain")))
)

const signer = Effect.runSync(CookieSigner.make({ keys: [Redacted.make(CookieSigner.unsafeGenerateKey())] }))

/** Serves the routes with the session middleware under `name`, signed or not, and runs `body` against it. */
const withApp = <A, E>(
  options: { readonly name?: string; readonly signed: boolean },
  body: (url: string) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const middleware = yield* SessionMiddleware.make({
      cookie: options.name === undefined ? undefined : { name: options.name, secure: false },
      signer: options.signed ? signer : undefined
    })
    return yield* body(yield* serve(middleware.apply(routes)))
  }).pipe(Effect.scoped, Effect.provide(MemoryStore.layer()))

const get = (url: string, path: string, cookie: string) =>
  rawRequest(url, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`)

describe("sessionCookieValues", () => {
  it("returns every value of the exact name, in header order, percent-decoded", () => {
    assert.deepStrictEqual(Cookie.sessionCookieValues("a=1; sid=x; b=2; sid=y%2Ez;sid=w", "sid"), ["x", "y.z", "w"])
    assert.deepStrictEqual(Cookie.sessionCookieValues("sid=", "sid"), [""])
    assert.deepStrictEqual(Cookie.sessionCookieValues(undefined, "sid"), [])
    assert.deepStrictEqual(Cookie.sessionCookieValues("", "sid"), [])
    assert.deepStrictEqual(Cookie.sessionCookieValues("sid", "sid"), [])
    assert.deepStrictEqual(Cookie.sessionCookieValues("sid=%E0%A4%A", "sid"), [], "an undecodable value is skipped")
  })

  it("matches no name that differs by any byte: no trimming of 0xA0, tabs or other whitespace", () => {
    for (
      const header of [
        "\xa0sid=x",
        "sid\xa0=x",
        "\tsid=x",
        "a=1;\tsid=x",
        "sid =x",
        "Sid=x",
        "sidx=x",
        "xsid=x",
        "s id=x",
        "\ufeffsid=x"
      ]
    ) {
      assert.deepStrictEqual(Cookie.sessionCookieValues(header, "sid"), [], JSON.stringify(header))
    }
    assert.deepStrictEqual(Cookie.sessionCookieValues("a=1;  sid=x", "sid"), ["x"], "spaces after ; are the separator")
  })

  it("reads names that are Object.prototype members as plain names", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
      assert.deepStrictEqual(Cookie.sessionCookieValues(`a=1; ${name}=v`, name), ["v"], name)
      assert.deepStrictEqual(Cookie.sessionCookieValues("a=1", name), [], name)
    }
  })

  it("bounds the work on a huge header: at most MAX_VALUES values, nothing past MAX_HEADER_CHARS", () => {
    const many = Array.from({ length: 1000 }, (_, i) => `sid=v${i}`).join("; ")
    const values = Cookie.sessionCookieValues(many, "sid")
    assert.strictEqual(values.length, Cookie.MAX_VALUES)
    assert.strictEqual(values[0], "v0")
    const padded = `junk=${"x".repeat(Cookie.MAX_HEADER_CHARS)}; sid=late`
    assert.deepStrictEqual(Cookie.sessionCookieValues(padded, "sid"), [])
    // a pair that the cap cuts is not read as a shorter value
    const cut = `${"j".repeat(Cookie.MAX_HEADER_CHARS - 10)}; sid=abcdefghijklmnop`
    assert.deepStrictEqual(Cookie.sessionCookieValues(cut, "sid"), [])
  })
})

describe("selectToken", () => {
  const token = SessionToken.unsafeGenerate()
  const other = SessionToken.unsafeGenerate()

  it("without a signer: the first well-formed token", () => {
    assert.deepStrictEqual(Cookie.selectToken(["junk", "", token, other], "sid", undefined), { token, reissue: false })
    assert.strictEqual(Cookie.selectToken(["junk", `${token}x`], "sid", undefined), undefined)
    assert.strictEqual(Cookie.selectToken([], "sid", undefined), undefined)
  })

  it("with a signer: the first value that verifies, whatever comes before it", () => {
    const stranger = Effect.runSync(CookieSigner.make({ keys: [Redacted.make(CookieSigner.unsafeGenerateKey())] }))
    const values = [
      token,
      stranger.sign("sid", other),
      signer.sign("other", other),
      signer.sign("sid", other),
      signer.sign("sid", token)
    ]
    assert.deepStrictEqual(Cookie.selectToken(values, "sid", signer), { token: other, reissue: false })
    assert.strictEqual(Cookie.selectToken([signer.sign("sid", "not-a-token")], "sid", signer), undefined)
  })

  it("skips values longer than MAX_VALUE_CHARS", () => {
    const long = token + ".".repeat(Cookie.MAX_VALUE_CHARS)
    assert.strictEqual(Cookie.selectToken([long], "sid", undefined), undefined)
    assert.deepStrictEqual(Cookie.selectToken([long, token], "sid", undefined), { token, reissue: false })
  })
})

describe("the session cookie through a real server", () => {
  // Valid cookie names that are `Object.prototype` members, or hold a "%" or punctuation.
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "a%41b", "!#$&'*+-.^_`|~"]) {
    for (const signed of [false, true]) {
      it.live(`the cookie name ${name} (${signed ? "signed" : "unsigned"}) keeps its session, and routes that never touch it answer`, () =>
        withApp({ name, signed }, (url) =>
          Effect.gen(function*() {
            const client = makeClient(url)
            assert.strictEqual((yield* client.get("/plain")).status, 200)
            const first = yield* client.get("/count")
            assert.strictEqual(first.body, "1")
            assert.isDefined(first.cookie(name))
            assert.strictEqual((yield* client.get("/count")).body, "2")
            const plain = yield* client.get("/plain")
            assert.strictEqual(plain.status, 200)
            assert.strictEqual((yield* client.get("/read")).body, "2")
          })))
    }
  }

  it.live("a cookie whose name differs only by a raw 0xA0 or a tab is not the session cookie", () =>
    withApp({ signed: false }, (url) =>
      Effect.gen(function*() {
        const value = (yield* makeClient(url).get("/count")).cookie("__Host-session")!.value
        assert.strictEqual((yield* get(url, "/read", `__Host-session=${value}`)).body, "1")
        for (
          const cookie of [
            `\xa0__Host-session=${value}`,
            `a=1;\t__Host-session=${value}`,
            `a=1; __Host-session\xa0=${value}`
          ]
        ) {
          const reply = yield* get(url, "/read", cookie)
          assert.strictEqual(reply.status, 200)
          assert.strictEqual(reply.body, "none", JSON.stringify(cookie))
        }
      })))

  for (const signed of [false, true]) {
    it.live(`of several session cookies the first valid one is used (${signed ? "with a signer: the first that verifies" : "unsigned"})`, () =>
      withApp({ signed }, (url) =>
        Effect.gen(function*() {
          const value = (yield* makeClient(url).get("/count")).cookie("__Host-session")!.value
          const junk = signed
            ? signer.sign("__Host-session", SessionToken.unsafeGenerate()).slice(0, -2) + "AA"
            : "junk"
          const reply = yield* get(url, "/read", `__Host-session=${junk}; __Host-session=${encodeURIComponent(value)}`)
          assert.strictEqual(reply.body, "1")
        })))
  }
})
