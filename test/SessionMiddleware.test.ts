/**
 * The middleware: its configuration, cookie attributes, signed cookies, HttpLayerRouter, and the
 * pre-response handler's idempotence — through a real HTTP server and a cookie jar.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Layer, Option, Redacted, Schema } from "effect"
import { CookieSigner, Expiry, MemoryStore, Session, SessionMiddleware, SessionToken } from "effect-sessions"
import { counting } from "./support/countingStore.js"
import { makeClient, serve } from "./support/http.js"

const Counter = Session.key("counter", Schema.Number)

const count = Effect.gen(function*() {
  const n = Option.getOrElse(yield* Counter, () => 0) + 1
  yield* Counter.set(n)
  return HttpServerResponse.text(String(n))
})
const read = Effect.map(
  Counter,
  (o) => HttpServerResponse.text(Option.match(o, { onNone: () => "none", onSome: String }))
)

const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/count", count),
  HttpRouter.get("/read", read),
  HttpRouter.get("/plain", Effect.succeed(HttpServerResponse.text("plain"))),
  HttpRouter.post("/logout", Effect.as(Session.flush, HttpServerResponse.text("bye")))
)

const makeSigner = (...keys: ReadonlyArray<string>) =>
  CookieSigner.make({ keys: keys.map((k) => Redacted.make(k)) }).pipe(Effect.orDie)

describe("SessionMiddleware", () => {
  describe("configurations browsers would drop are refused when the middleware is built", () => {
    const refused: ReadonlyArray<readonly [string, SessionMiddleware.Options, string]> = [
      ["a __Host- name with a domain", { cookie: { domain: "example.com" } }, "must not have a domain"],
      ["a __Host- name with a path other than /", { cookie: { path: "/app" } }, "requires path \"/\""],
      ["a __Host- name without Secure", { cookie: { secure: false } }, "requires secure: true"],
      ["a __Secure- name without Secure", { cookie: { name: "__Secure-sid", secure: false } }, "requires secure: true"],
      [
        "SameSite=None without Secure",
        { cookie: { name: "sid", secure: false, sameSite: "none" } },
        "sameSite \"none\" requires secure"
      ],
      [
        "Partitioned without Secure",
        { cookie: { name: "sid", secure: false, partitioned: true } },
        "partitioned requires secure"
      ],
      ["an invalid cookie name", { cookie: { name: "my session" } }, "not a valid cookie name"],
      ["a path not starting with /", { cookie: { name: "sid", path: "app" } }, "must start with \"/\""],
      ["a domain with a ;", { cookie: { name: "sid", domain: "a.com; HttpOnly" } }, "not a valid domain"],
      ["a zero OnInactivity duration", { expiry: Expiry.OnInactivity(0) }, "positive, finite duration"],
      ["an infinite merge deadline", { mergeDeadline: Duration.infinity }, "mergeDeadline must be a finite duration"],
      ["a zero absolute lifetime", { absoluteLifetime: 0 }, "absoluteLifetime must be positive"],
      ["a fractional maxDataBytes", { maxDataBytes: 1.5 }, "maxDataBytes must be a positive integer"]
    ]
    for (const [what, options, message] of refused) {
      it.effect(what, () =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(Layer.build(SessionMiddleware.layer(options)))
          assert.isTrue(Exit.isFailure(exit))
          const error = yield* Effect.flip(SessionMiddleware.make(options))
          assert.strictEqual(error._tag, "SessionConfigError")
          assert.include(error.message, message)
        }).pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
    }

    it.effect("the defaults and browser-valid variants are accepted", () =>
      Effect.gen(function*() {
        const accepted: ReadonlyArray<SessionMiddleware.Options | undefined> = [
          undefined,
          { cookie: { name: "sid", secure: false, sameSite: "strict" as const } },
          {
            cookie: {
              name: "__Secure-sid",
              domain: "example.com",
              path: "/app",
              sameSite: "none" as const,
              partitioned: true
            }
          },
          { cookie: { partitioned: true } },
          { expiry: Expiry.OnInactivity("30 minutes"), refreshAfter: 0, absoluteLifetime: "1 day", mergeDeadline: 0 }
        ]
        for (const options of accepted) {
          assert.isTrue(Either.isRight(yield* Effect.either(SessionMiddleware.make(options))))
        }
      }).pipe(Effect.provide(MemoryStore.layer())))
  })

  it.live("every configured attribute is sent, and the removal cookie repeats them with an empty value and Max-Age=0", () =>
    Effect.gen(function*() {
      const url = yield* serve(routes.pipe(HttpRouter.use(SessionMiddleware.middleware)))
      const client = makeClient(url)
      const set = (yield* client.get("/count")).cookie("__Secure-sid")!
      assert.deepStrictEqual(set.attributes, {
        "max-age": "3600",
        domain: "example.test",
        path: "/app",
        secure: true,
        partitioned: true,
        samesite: "Strict"
      })
      const removal = (yield* client.post("/logout")).cookie("__Secure-sid")!
      assert.strictEqual(removal.value, "")
      assert.deepStrictEqual(removal.attributes, {
        "max-age": "0",
        domain: "example.test",
        path: "/app",
        secure: true,
        partitioned: true,
        samesite: "Strict"
      })
      assert.notInclude(removal.raw.toLowerCase(), "expires")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        SessionMiddleware.layer({
          expiry: Expiry.OnInactivity("1 hour"),
          cookie: {
            name: "__Secure-sid",
            domain: "example.test",
            path: "/app",
            httpOnly: false,
            sameSite: "strict",
            partitioned: true
          }
        }).pipe(Layer.provide(MemoryStore.layer()))
      )
    ))

  it.live("the handler's own cookies, set as cookies or as a Set-Cookie header, arrive beside the session cookie", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/with-cookie",
          Effect.map(count, (response) => HttpServerResponse.unsafeSetCookie(response, "theme", "dark", { path: "/" }))
        ),
        HttpRouter.get(
          "/with-header",
          Effect.map(count, (response) => HttpServerResponse.setHeader(response, "set-cookie", "lang=en; Path=/"))
        ),
        HttpRouter.use(SessionMiddleware.middleware)
      )
      const client = makeClient(yield* serve(app))
      const first = yield* client.get("/with-cookie")
      assert.strictEqual(first.body, "1")
      assert.strictEqual(first.cookie("theme")?.value, "dark")
      assert.strictEqual(first.cookie("__Host-session")?.attributes.samesite, "Lax")
      const second = yield* client.get("/with-header")
      assert.strictEqual(second.body, "2")
      assert.strictEqual(second.cookie("lang")?.value, "en")
      assert.strictEqual(second.cookie("__Host-session")?.value, first.cookie("__Host-session")?.value)
      assert.deepStrictEqual(second.cookie("__Host-session")?.attributes, {
        "max-age": "3600",
        path: "/",
        httponly: true,
        secure: true,
        samesite: "Lax"
      })
    }).pipe(
      Effect.scoped,
      Effect.provide(
        SessionMiddleware.layer({ expiry: Expiry.OnInactivity("1 hour") }).pipe(Layer.provide(MemoryStore.layer()))
      )
    ))

  describe("signed cookies", () => {
    const keyNew = CookieSigner.unsafeGenerateKey()
    const keyOld = CookieSigner.unsafeGenerateKey()

    const withSigned = <A, E>(
      body: (h: { readonly url: string; readonly probe: ReturnType<typeof counting>["probe"] }) => Effect.Effect<A, E>
    ) => {
      const { layer: storeLayer, probe } = counting(MemoryStore.layer())
      return Effect.gen(function*() {
        const url = yield* serve(routes.pipe(HttpRouter.use(SessionMiddleware.middleware)))
        return yield* body({ url, probe })
      }).pipe(
        Effect.scoped,
        // the signer is read from the context (CookieSigner service)
        Effect.provide(
          SessionMiddleware.layer().pipe(
            Layer.provide(CookieSigner.layer({ keys: [Redacted.make(keyNew), Redacted.make(keyOld)] })),
            Layer.provide(storeLayer)
          )
        )
      )
    }

    it.live("the cookie carries a signed token; a forged, unsigned or re-signed-elsewhere cookie is no session, before any store lookup", () =>
      withSigned(({ probe, url }) =>
        Effect.gen(function*() {
          const signer = yield* makeSigner(keyNew)
          const stranger = yield* makeSigner(CookieSigner.unsafeGenerateKey())
          const client = makeClient(url)
          const value = (yield* client.get("/count")).cookie("__Host-session")!.value
          const verified = Option.getOrThrow(signer.verify("__Host-session", value))
          assert.isTrue(SessionToken.isSessionToken(verified.value))
          assert.strictEqual((yield* client.get("/count")).body, "2")

          const forgeries = [
            value.slice(0, -1) + (value.endsWith("A") ? "B" : "A"), // MAC altered
            verified.value, // the bare token, unsigned
            stranger.sign("__Host-session", verified.value), // signed under a key the app does not list
            signer.sign("other-cookie", verified.value) // signed for another cookie name
          ]
          for (const forged of forgeries) {
            probe.reset()
            const attacker = makeClient(url)
            attacker.jar.set("__Host-session", encodeURIComponent(forged))
            const reply = yield* attacker.get("/read")
            assert.strictEqual(reply.status, 200)
            assert.strictEqual(reply.body, "none")
            assert.strictEqual(probe.counts.load, 0)
            attacker.jar.set("__Host-session", encodeURIComponent(forged))
            const written = yield* attacker.get("/count")
            assert.strictEqual(written.body, "1")
            const fresh = Option.getOrThrow(signer.verify("__Host-session", written.cookie("__Host-session")!.value))
            assert.notStrictEqual(fresh.value, verified.value)
          }
        })
      ))

    it.live("a cookie signed with an older listed key is accepted and re-issued under the first key", () =>
      withSigned(({ probe, url }) =>
        Effect.gen(function*() {
          const onlyNew = yield* makeSigner(keyNew)
          const onlyOld = yield* makeSigner(keyOld)
          const client = makeClient(url)
          const value = (yield* client.get("/count")).cookie("__Host-session")!.value
          const token = Option.getOrThrow(onlyNew.verify("__Host-session", value)).value
          for (const path of ["/read", "/plain"]) {
            // as if issued before the rotation
            client.jar.set("__Host-session", encodeURIComponent(onlyOld.sign("__Host-session", token)))
            probe.reset()
            const reply = yield* client.get(path)
            assert.strictEqual(reply.status, 200)
            if (path === "/read") assert.strictEqual(reply.body, "1")
            const reissued = reply.cookie("__Host-session")
            assert.isDefined(reissued, `re-issued on ${path}`)
            const check = Option.getOrThrow(onlyNew.verify("__Host-session", reissued!.value))
            assert.deepStrictEqual(check, { value: token, reissue: false })
            assert.isTrue(Option.isNone(onlyOld.verify("__Host-session", reissued!.value)))
            assert.strictEqual(probe.counts.save + probe.counts.create, 0)
          }
          // once re-issued, nothing more is sent
          assert.strictEqual((yield* client.get("/read")).setCookies.length, 0)
        })
      ))

    it.live("the signer option wins over the context", () =>
      Effect.gen(function*() {
        const signer = yield* makeSigner(keyNew)
        const url = yield* serve(routes.pipe(HttpRouter.use(SessionMiddleware.middleware)))
        const value = (yield* makeClient(url).get("/count")).cookie("__Host-session")!.value
        assert.isTrue(Option.isSome(signer.verify("__Host-session", value)))
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Layer.unwrapEffect(Effect.map(makeSigner(keyNew), (signer) => SessionMiddleware.layer({ signer }))).pipe(
            Layer.provide(CookieSigner.layer({ keys: [Redacted.make(keyOld)] })),
            Layer.provide(MemoryStore.layer())
          )
        )
      ))
  })

  it.live("make(...).apply wraps any HttpApp", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionMiddleware.make({ expiry: Expiry.OnInactivity("10 minutes") })
      const url = yield* serve(sessions.apply(count))
      const client = makeClient(url)
      const first = yield* client.get("/")
      assert.strictEqual(first.cookie("__Host-session")?.attributes["max-age"], "600")
      assert.strictEqual((yield* client.get("/")).body, "2")
    }).pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))

  it.live("HttpLayerRouter: layerRouter provides Session to the routes and commits", () => {
    const { layer: storeLayer, probe } = counting(MemoryStore.layer())
    const Routes = Layer.mergeAll(
      HttpLayerRouter.add("GET", "/count", count),
      HttpLayerRouter.add("GET", "/plain", HttpServerResponse.text("plain"))
    ).pipe(Layer.provide(SessionMiddleware.layerRouter({ expiry: Expiry.OnInactivity("1 hour") })))
    return Effect.gen(function*() {
      const url = yield* serve(yield* HttpLayerRouter.toHttpEffect(Routes))
      const client = makeClient(url)
      const first = yield* client.get("/count")
      assert.strictEqual(first.body, "1")
      assert.strictEqual(first.cookie("__Host-session")?.attributes["max-age"], "3600")
      assert.strictEqual((yield* client.get("/count")).body, "2")
      probe.reset()
      const plain = yield* client.get("/plain")
      assert.strictEqual(plain.setCookies.length, 0)
      assert.deepStrictEqual(probe.counts, { create: 0, save: 0, load: 0, delete: 0 })
    }).pipe(
      Effect.scoped,
      Effect.provide(storeLayer)
    )
  })

  it.live("the commit runs once even when the pre-response handlers run again on a 500 produced after it", () => {
    const { layer: storeLayer, probe } = counting(MemoryStore.layer())
    let failures = 0
    const failingAfter = HttpRouter.empty.pipe(
      HttpRouter.get(
        "/count",
        Effect.zipRight(
          // appended after the session's handler: it fails, so the platform makes a 500 and runs the handlers again
          HttpApp.appendPreResponseHandler((_request, response) =>
            failures++ === 0 ? Effect.dieMessage("a later pre-response handler failed") : Effect.succeed(response)
          ),
          count
        )
      ),
      HttpRouter.use(SessionMiddleware.middleware)
    )
    return Effect.gen(function*() {
      const url = yield* serve(failingAfter)
      const reply = yield* makeClient(url).get("/count")
      assert.strictEqual(reply.status, 500)
      assert.strictEqual(failures, 2)
      assert.strictEqual(probe.counts.create, 1)
      assert.strictEqual(probe.counts.delete, 0)
    }).pipe(Effect.scoped, Effect.provide(SessionMiddleware.layer().pipe(Layer.provideMerge(storeLayer))))
  })
})
