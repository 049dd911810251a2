/**
 * The session a handler sees, observed through a real HTTP server and a cookie jar (MemoryStore, counted).
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Logger,
  Option,
  Schema,
  TestClock
} from "effect"
import {
  Expiry,
  MemoryStore,
  Session,
  SessionId,
  SessionMiddleware,
  SessionStore,
  SessionToken,
  StoreError
} from "effect-sessions"
import { counting, type Probe } from "./support/countingStore.js"
import { type Client, concurrentWriters, makeClient, type Reply, serve } from "./support/http.js"

const COOKIE = "__Host-session"
const Counter = Session.key("counter", Schema.Number)
const User = Session.key("user", Schema.Struct({ name: Schema.String }))

/** An error a handler fails with that the platform turns into a 403. */
class Forbidden extends Data.TaggedError("Forbidden") implements HttpServerRespondable.Respondable {
  [HttpServerRespondable.symbol]() {
    return HttpServerResponse.empty({ status: 403 })
  }
}

const searchParam = (name: string) =>
  Effect.map(HttpServerRequest.ParsedSearchParams, (p) => {
    const v = p[name]
    return typeof v === "string" ? v : ""
  })

const text = (u: unknown) => HttpServerResponse.text(typeof u === "string" ? u : JSON.stringify(u))

const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/count",
    Effect.gen(function*() {
      const n = Option.getOrElse(yield* Counter, () => 0) + 1
      yield* Counter.set(n)
      return text(String(n))
    })
  ),
  HttpRouter.get("/plain", Effect.succeed(text("plain"))),
  HttpRouter.get("/read", Effect.map(Counter, (o) => text(Option.match(o, { onNone: () => "none", onSome: String })))),
  HttpRouter.get("/keys", Effect.map(Session.keys, (keys) => text([...keys].sort()))),
  HttpRouter.get(
    "/user",
    Effect.map(User, (o) => text(Option.match(o, { onNone: () => "anonymous", onSome: (u) => u.name })))
  ),
  HttpRouter.post(
    "/put",
    Effect.gen(function*() {
      const key = yield* searchParam("key")
      yield* Session.insert(key, `value-of-${key}`)
      return text("ok")
    })
  ),
  HttpRouter.post(
    "/login",
    Effect.gen(function*() {
      yield* User.set({ name: yield* searchParam("name") })
      yield* Session.cycleId
      return text("welcome")
    })
  ),
  HttpRouter.post("/logout", Effect.as(Session.flush, text("bye"))),
  HttpRouter.post("/logout-fails", Effect.as(Session.flush, HttpServerResponse.text("oops", { status: 503 }))),
  HttpRouter.post(
    "/insert-remove",
    Effect.as(Effect.zipRight(Session.insert("a", 1), Session.remove("a")), text("ok"))
  ),
  HttpRouter.post("/fail-4xx", Effect.zipRight(Session.insert("attempted", true), Effect.fail(new Forbidden()))),
  HttpRouter.post(
    "/fail-5xx",
    Effect.as(Session.insert("attempted", true), HttpServerResponse.text("oops", { status: 500 }))
  ),
  HttpRouter.post("/die", Effect.zipRight(Session.insert("attempted", true), Effect.dieMessage("boom"))),
  HttpRouter.post("/big", Effect.as(Session.insert("big", "x".repeat(200)), text("ok"))),
  HttpRouter.post(
    "/secret",
    Effect.as(Session.insert("secret", "s3cr3t-data-value"), text("stored"))
  ),
  HttpRouter.post(
    "/expiry/at",
    Effect.gen(function*() {
      yield* Session.setExpiry(Expiry.AtDateTime(Number(yield* searchParam("at"))))
      yield* Session.insert("k", 1)
      return text("ok")
    })
  ),
  HttpRouter.get(
    "/expiry",
    Effect.gen(function*() {
      const expiry = yield* Session.expiry
      return text({ tag: expiry._tag, at: yield* Session.expiresAt })
    })
  ),
  HttpRouter.get(
    "/bad-schema",
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Session.get("counter", Schema.String))
      return text(Exit.match(exit, {
        onSuccess: () => "decoded",
        onFailure: (c) =>
          Option.match(Cause.failureOption(c), { onNone: () => "defect", onSome: (e) => `${e._tag}:${e.reason}` })
      }))
    })
  ),
  HttpRouter.get(
    "/reserved",
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Session.insert(Session.META_KEY, 1))
      const read = yield* Session.get(Session.META_KEY)
      return text(
        Exit.match(exit, {
          onSuccess: () => "inserted",
          onFailure: (c) =>
            Option.match(Cause.failureOption(c), { onNone: () => "defect", onSome: (e) => `${e._tag}:${e.reason}` })
        }) + "|" + Option.match(read, { onNone: () => "none", onSome: () => "some" })
      )
    })
  ),
  HttpRouter.get(
    "/concurrent",
    Effect.gen(function*() {
      // many fibers of one request: one load, one change set
      yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) => Session.insert(`f${i}`, i), {
        concurrency: "unbounded"
      })
      return text("ok")
    })
  )
)

const app = routes.pipe(HttpRouter.use(SessionMiddleware.middleware))

interface Harness {
  readonly url: string
  readonly client: Client
  readonly probe: Probe
  readonly store: SessionStore.Service
}

/** `withServer(options, body)` serves the app over a counted MemoryStore with the given options. */
const withServer = <A, E>(
  options: SessionMiddleware.Options | undefined,
  body: (h: Harness) => Effect.Effect<A, E>,
  served: HttpApp.Default<unknown, SessionMiddleware.SessionMiddleware> = app
) => {
  const { layer: storeLayer, probe } = counting(MemoryStore.layer())
  const layer = SessionMiddleware.layer(options).pipe(Layer.provideMerge(storeLayer))
  return Effect.gen(function*() {
    const url = yield* serve(served)
    const store = yield* SessionStore.SessionStore
    return yield* body({ url, client: makeClient(url), probe, store })
  }).pipe(Effect.scoped, Effect.provide(layer))
}

const tokenOf = (reply: Reply): string => {
  const c = reply.cookie(COOKIE)
  assert.isDefined(c, "expected a session cookie")
  return c!.value
}

const loadByToken = (store: SessionStore.Service, token: string) =>
  store.load(SessionId.fromToken(token as SessionToken.SessionToken)).pipe(Effect.orDie)

describe("Session", () => {
  it.live("counter round trip: a cookie once, the count kept, no cookie while nothing changes the expiry", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        const r1 = yield* client.get("/count")
        assert.strictEqual(r1.status, 200)
        assert.strictEqual(r1.body, "1")
        const cookie = r1.cookie(COOKIE)!
        assert.deepStrictEqual(cookie.attributes, { path: "/", httponly: true, secure: true, samesite: "Lax" })
        assert.isTrue(SessionToken.isSessionToken(cookie.value))
        const r2 = yield* client.get("/count")
        assert.strictEqual(r2.body, "2")
        // OnSessionEnd: the cookie has no Max-Age, so nothing to re-send
        assert.strictEqual(r2.setCookies.length, 0)
        assert.strictEqual((yield* client.get("/read")).body, "2")
        assert.deepStrictEqual(probe.counts, { create: 1, save: 1, load: 2, delete: 0 })
      })))

  it.live("laziness: a handler that never touches the session makes no store call and sets no cookie", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        const fresh = yield* client.get("/plain")
        assert.strictEqual(fresh.setCookies.length, 0)
        yield* client.get("/count")
        probe.reset()
        const plain = yield* client.get("/plain")
        assert.strictEqual(plain.body, "plain")
        assert.strictEqual(plain.setCookies.length, 0)
        assert.deepStrictEqual(probe.counts, { create: 0, save: 0, load: 0, delete: 0 })
      })))

  it.live("an untouched or emptied new session is never stored and sets no cookie", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        const read = yield* client.get("/read")
        assert.strictEqual(read.body, "none")
        assert.strictEqual(read.setCookies.length, 0)
        const emptied = yield* client.post("/insert-remove")
        assert.strictEqual(emptied.setCookies.length, 0)
        // no cookie was sent, so there was nothing to load either
        assert.deepStrictEqual(probe.counts, { create: 0, save: 0, load: 0, delete: 0 })
      })))

  it.live("concurrent fibers of one request share one load and one change set", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        yield* client.get("/count")
        probe.reset()
        yield* client.get("/concurrent")
        assert.strictEqual(probe.counts.load, 1)
        assert.strictEqual(probe.counts.save, 1)
        const keys = JSON.parse((yield* client.get("/keys")).body)
        assert.deepStrictEqual(keys, ["counter", ...Array.from({ length: 10 }, (_, i) => `f${i}`)].sort())
      })))

  it.live("a value failing its schema is a typed SessionError, not a defect", () =>
    withServer(undefined, ({ client }) =>
      Effect.gen(function*() {
        yield* client.get("/count")
        assert.strictEqual((yield* client.get("/bad-schema")).body, "SessionError:Decode")
      })))

  it.live("a handler failing into a 4xx still commits and gets its cookie", () =>
    withServer(undefined, ({ client, store }) =>
      Effect.gen(function*() {
        const reply = yield* client.post("/fail-4xx")
        assert.strictEqual(reply.status, 403)
        const stored = yield* loadByToken(store, tokenOf(reply))
        assert.isTrue(Option.isSome(stored))
        assert.strictEqual(Option.getOrThrow(stored).data.attempted, true)
      })))

  it.live("no commit on a 5xx: neither a new session nor a change to an existing one", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        for (const path of ["/fail-5xx", "/die"]) {
          const reply = yield* client.post(path)
          assert.strictEqual(reply.status, 500)
          assert.strictEqual(reply.setCookies.length, 0)
        }
        assert.strictEqual(probe.counts.create, 0)
        yield* client.get("/count")
        probe.reset()
        for (const path of ["/fail-5xx", "/die"]) {
          const reply = yield* client.post(path)
          assert.strictEqual(reply.status, 500)
          assert.strictEqual(reply.setCookies.length, 0)
        }
        assert.strictEqual(probe.counts.save, 0)
        assert.deepStrictEqual(JSON.parse((yield* client.get("/keys")).body), ["counter"])
      })))

  describe("cookies that are missing, malformed, forged or refer to nothing are no session", () => {
    const junk: ReadonlyArray<readonly [string, string, number]> = [
      // [what, value, loads expected]
      ["forged (well-formed, unknown)", SessionToken.unsafeGenerate(), 1],
      ["truncated", SessionToken.unsafeGenerate().slice(0, 21), 0],
      ["wrong alphabet", "abc+/def=ghi+jkl/mnopq", 0],
      ["stray bits in the last character", SessionToken.unsafeGenerate().slice(0, 21) + "B", 0],
      ["10 KB of junk", "x".repeat(10 * 1024), 0]
    ]
    for (const [what, value, loads] of junk) {
      it.live(what, () =>
        withServer(undefined, ({ client, probe }) =>
          Effect.gen(function*() {
            client.jar.set(COOKIE, value)
            const read = yield* client.get("/read")
            assert.strictEqual(read.status, 200)
            assert.strictEqual(read.body, "none")
            assert.strictEqual(read.setCookies.length, 0)
            assert.strictEqual(probe.counts.load, loads)
            client.jar.set(COOKIE, value)
            const write = yield* client.get("/count")
            assert.strictEqual(write.status, 200)
            assert.strictEqual(write.body, "1")
            const token = tokenOf(write)
            assert.notStrictEqual(token, value)
            assert.isTrue(SessionToken.isSessionToken(token))
          })))
    }
  })

  it.live("cycleId: a new token, the data kept under it, the old token refused", () =>
    withServer(undefined, ({ client, store }) =>
      Effect.gen(function*() {
        const before = tokenOf(yield* client.get("/count"))
        const login = yield* client.post("/login?name=ada")
        const after = tokenOf(login)
        assert.notStrictEqual(after, before)
        assert.strictEqual((yield* client.get("/user")).body, "ada")
        assert.strictEqual((yield* client.get("/read")).body, "1")
        // the old token reaches only the move's tombstone: no data, gone at the end of the grace window
        const tombstone = Option.getOrThrow(yield* loadByToken(store, before))
        assert.deepStrictEqual(Object.keys(tombstone.data), [Session.META_KEY])
        assert.isAtMost(tombstone.expiresAt, Date.now() + 10_000)
      })))

  it.live("cycleId: inside the grace window the old token reaches nothing, writes nothing and gets no cookie", () =>
    withServer(undefined, ({ client, probe, url }) =>
      Effect.gen(function*() {
        const before = tokenOf(yield* client.get("/count"))
        const after = tokenOf(yield* client.post("/login?name=ada"))
        const attacker = makeClient(url)
        attacker.jar.set(COOKIE, before)
        const read = yield* attacker.get("/user")
        assert.strictEqual(read.body, "anonymous")
        assert.strictEqual(read.setCookies.length, 0)
        probe.reset()
        const write = yield* attacker.get("/count")
        assert.strictEqual(write.body, "1")
        assert.strictEqual(write.setCookies.length, 0)
        assert.deepStrictEqual(probe.counts, { create: 0, save: 0, load: 1, delete: 0 })
        const logout = yield* attacker.post("/logout")
        assert.strictEqual(logout.setCookies.length, 0)
        // the login's session is untouched
        client.jar.set(COOKIE, after)
        assert.strictEqual((yield* client.get("/user")).body, "ada")
        assert.strictEqual((yield* client.get("/read")).body, "1")
      })))

  it.live("cycleId: after the grace window the old token is unknown, and a write gets a fresh token", () =>
    withServer({ cycleGrace: 0 }, ({ client, url }) =>
      Effect.gen(function*() {
        const before = tokenOf(yield* client.get("/count"))
        yield* client.post("/login?name=ada")
        const attacker = makeClient(url)
        attacker.jar.set(COOKIE, before)
        assert.strictEqual((yield* attacker.get("/user")).body, "anonymous")
        const write = yield* attacker.get("/count")
        assert.strictEqual(write.body, "1")
        assert.notStrictEqual(tokenOf(write), before)
        assert.strictEqual((yield* client.get("/user")).body, "ada")
      })))

  it.live("flush: the record deleted, a removal cookie sent", () =>
    withServer(undefined, ({ client, store }) =>
      Effect.gen(function*() {
        const token = tokenOf(yield* client.get("/count"))
        const bye = yield* client.post("/logout")
        const removal = bye.cookie(COOKIE)!
        assert.strictEqual(removal.value, "")
        assert.deepStrictEqual(removal.attributes, {
          "max-age": "0",
          path: "/",
          httponly: true,
          secure: true,
          samesite: "Lax"
        })
        assert.isTrue(Option.isNone(yield* loadByToken(store, token)))
        assert.strictEqual((yield* client.get("/read")).body, "none")
      })))

  it.live("create Collision: a new token is drawn and the session created under it", () => {
    let collisions = 1
    const { layer: counted, probe } = counting(MemoryStore.layer())
    const colliding = Layer.map(counted, (ctx) => {
      const inner = Context.get(ctx, SessionStore.SessionStore)
      return Context.add(ctx, SessionStore.SessionStore, {
        ...inner,
        create: (record) =>
          collisions-- > 0 ? Effect.fail(StoreError.make("Collision", "create")) : inner.create(record)
      })
    })
    return Effect.gen(function*() {
      const url = yield* serve(app)
      const reply = yield* makeClient(url).get("/count")
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(probe.counts.create, 1)
      const store = yield* SessionStore.SessionStore
      assert.isTrue(Option.isSome(yield* loadByToken(store, tokenOf(reply))))
    }).pipe(Effect.scoped, Effect.provide(SessionMiddleware.layer().pipe(Layer.provideMerge(colliding))))
  })

  it.live("maxDataBytes: a session over the cap is refused before the store is called, as an opaque 500", () =>
    withServer({ maxDataBytes: 100 }, ({ client, probe }) =>
      Effect.gen(function*() {
        const reply = yield* client.post("/big")
        assert.strictEqual(reply.status, 500)
        assert.strictEqual(reply.body, "")
        assert.strictEqual(reply.setCookies.length, 0)
        assert.strictEqual(probe.counts.create, 0)
        assert.strictEqual((yield* client.get("/count")).status, 200)
      })))

  it.live("a flush in a request answered with a 5xx deletes nothing and sends no removal cookie", () =>
    withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        yield* client.get("/count")
        const reply = yield* client.post("/logout-fails")
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.setCookies.length, 0)
        assert.strictEqual(probe.counts.delete, 0)
        assert.strictEqual((yield* client.get("/read")).body, "1")
      })))

  it.live("Gone: a write racing a logout from another request does not bring the session back", () =>
    withServer(undefined, ({ client, probe, store, url }) =>
      Effect.gen(function*() {
        const token = tokenOf(yield* client.get("/count"))
        const other = makeClient(url)
        other.jar.set(COOKIE, token)
        // the other tab loads the session, then waits while this one logs out
        const held = yield* probe.holdNextLoad
        const write = yield* Effect.fork(other.get("/count"))
        yield* held.reached
        const bye = yield* client.post("/logout")
        assert.strictEqual(bye.cookie(COOKIE)?.attributes["max-age"], "0")
        yield* Deferred.succeed(held.release, undefined)
        const late = yield* write.await.pipe(Effect.flatten)
        assert.strictEqual(late.status, 200)
        assert.strictEqual(late.cookie(COOKIE)?.value, "")
        assert.strictEqual(late.cookie(COOKIE)?.attributes["max-age"], "0")
        assert.isTrue(Option.isNone(yield* loadByToken(store, token)))
        other.jar.set(COOKIE, token)
        assert.strictEqual((yield* other.get("/read")).body, "none")
      })))

  it.live("merge in one process: twenty concurrent writers on one session all land, their commits taking turns", () =>
    Effect.gen(function*() {
      const result = yield* concurrentWriters(MemoryStore.layer(), { writers: 20, instances: 1 })
      assert.deepStrictEqual(result.statuses, Array.from({ length: 20 }, () => 200))
      assert.deepStrictEqual(result.keys, result.expected)
      // All twenty read the same version. Had each saved that version, nineteen would conflict (39 saves or
      // more); commits of one session in one process take turns and start from the record the previous one saved.
      assert.isBelow(result.saves, 20 + 19)
    }))

  it.live("merge across processes: twenty writers over four instances, conflicts reloaded and re-applied, all land", () =>
    Effect.gen(function*() {
      const result = yield* concurrentWriters(MemoryStore.layer(), { writers: 20, instances: 4 })
      assert.deepStrictEqual(result.statuses, Array.from({ length: 20 }, () => 200))
      assert.deepStrictEqual(result.keys, result.expected)
      assert.isAtLeast(result.saves, 20 + 3)
    }))

  it.live("merge out of time: a request that keeps conflicting fails as an opaque 500", () =>
    withServer({ mergeDeadline: "50 millis" }, ({ client, probe }) =>
      Effect.gen(function*() {
        yield* client.get("/count")
        probe.fail("save", "Conflict")
        const reply = yield* client.get("/count")
        assert.strictEqual(reply.status, 500)
        assert.strictEqual(reply.body, "")
        assert.strictEqual(reply.setCookies.length, 0)
        assert.isAbove(probe.counts.save, 1)
        probe.heal()
        assert.strictEqual((yield* client.get("/read")).body, "1")
      })))

  it.live("a failing store: an opaque 500; body, logs and logged causes hold no token, digest or data", () => {
    const logs: Array<string> = []
    const capture = Logger.make(({ annotations, cause, message }) => {
      logs.push(
        [
          JSON.stringify(message),
          JSON.stringify(Object.fromEntries(annotations)),
          Cause.isEmpty(cause) ? "" : Cause.pretty(cause, { renderErrorCause: true })
        ].join(" | ")
      )
    })
    const logged = routes.pipe(HttpRouter.use(SessionMiddleware.middleware), HttpMiddleware.logger)
    return withServer(undefined, ({ client, probe }) =>
      Effect.gen(function*() {
        const secret = yield* client.post("/secret")
        const token = tokenOf(secret)
        const digest = SessionId.fromToken(token as SessionToken.SessionToken)
        logs.length = 0
        probe.fail("save", "Unavailable")
        const commitFails = yield* client.get("/count")
        assert.strictEqual(commitFails.status, 500)
        assert.strictEqual(commitFails.body, "")
        assert.strictEqual(commitFails.setCookies.length, 0)
        probe.heal()
        probe.fail("load", "Unavailable")
        const loadFails = yield* client.get("/count")
        assert.strictEqual(loadFails.status, 500)
        assert.strictEqual(loadFails.body, "")
        const all = logs.join("\n")
        assert.include(all, "session commit failed")
        assert.include(all, "\"reason\":\"Unavailable\"")
        assert.include(all, "\"method\":\"save\"")
        assert.include(all, "SessionError")
        for (const needle of [token, digest, "s3cr3t-data-value"]) {
          assert.notInclude(all, needle)
          assert.notInclude(commitFails.body + loadFails.body, needle)
        }
      }), logged).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
  })

  describe("expiry", () => {
    const lifetime = (reply: Reply) => reply.cookie(COOKIE)?.attributes["max-age"]

    it.live("OnSessionEnd: no Max-Age, stored for sessionEndLifetime (default 14 days)", () =>
      withServer(undefined, ({ client, store }) =>
        Effect.gen(function*() {
          const before = Date.now()
          const reply = yield* client.get("/count")
          const after = Date.now()
          assert.strictEqual(lifetime(reply), undefined)
          assert.isUndefined(reply.cookie(COOKIE)?.attributes.expires)
          const record = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
          const days14 = Duration.toMillis("14 days")
          assert.isAtLeast(record.expiresAt, before + days14)
          assert.isAtMost(record.expiresAt, after + days14)
        })))

    it.live("OnInactivity: Max-Age is the duration in whole seconds and the store holds the same instant", () =>
      withServer({ expiry: Expiry.OnInactivity("90 minutes") }, ({ client, store }) =>
        Effect.gen(function*() {
          const before = Date.now()
          const reply = yield* client.get("/count")
          const after = Date.now()
          assert.strictEqual(lifetime(reply), "5400")
          assert.isUndefined(reply.cookie(COOKIE)?.attributes.expires)
          const record = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
          assert.isAtLeast(record.expiresAt, before + 5_400_000)
          assert.isAtMost(record.expiresAt, after + 5_400_000)
          // a write slides it and re-sends the cookie
          const again = yield* client.get("/count")
          assert.strictEqual(lifetime(again), "5400")
        })))

    it.live("AtDateTime: Max-Age floor((at - now) / 1000), stored at that instant", () => {
      const at = Date.now() + 3_600_000 + 500
      return withServer({ expiry: Expiry.AtDateTime(at) }, ({ client, store }) =>
        Effect.gen(function*() {
          const reply = yield* client.get("/count")
          const seen = Date.now()
          const maxAge = Number(lifetime(reply))
          assert.isAtMost(maxAge, Math.floor((at - (seen - 5_000)) / 1000))
          assert.isAtLeast(maxAge, Math.floor((at - seen) / 1000))
          assert.isTrue(Number.isInteger(maxAge))
          const record = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
          assert.strictEqual(record.expiresAt, at)
          // a fixed instant does not move, so a write sends no cookie
          assert.strictEqual((yield* client.get("/count")).setCookies.length, 0)
        }))
    })

    it.live("absoluteLifetime caps a sliding expiry, counted from creation", () =>
      withServer(
        { expiry: Expiry.OnInactivity("1 hour"), absoluteLifetime: "10 minutes" },
        ({ client, store }) =>
          Effect.gen(function*() {
            const before = Date.now()
            const reply = yield* client.get("/count")
            const after = Date.now()
            assert.strictEqual(lifetime(reply), "600")
            const record = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
            assert.isAtLeast(record.expiresAt, before + 600_000)
            assert.isAtMost(record.expiresAt, after + 600_000)
            const again = yield* client.get("/count")
            const later = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
            // the deadline stays where it was
            assert.strictEqual(later.expiresAt, record.expiresAt)
            assert.isAtMost(Number(lifetime(again) ?? "600"), 600)
          })
      ))

    it.live("setExpiry is persisted with the session and its cookie reflects it", () =>
      withServer(undefined, ({ client, store }) =>
        Effect.gen(function*() {
          const at = Date.now() + 7_200_000
          const reply = yield* client.post(`/expiry/at?at=${at}`)
          assert.isTrue(Number(lifetime(reply)) > 7_100 && Number(lifetime(reply)) <= 7_200)
          const record = Option.getOrThrow(yield* loadByToken(store, tokenOf(reply)))
          assert.strictEqual(record.expiresAt, at)
          const seen = JSON.parse((yield* client.get("/expiry")).body)
          assert.deepStrictEqual(seen, { tag: "AtDateTime", at })
          // library metadata is never exposed as a key
          assert.deepStrictEqual(JSON.parse((yield* client.get("/keys")).body), ["k"])
        })))

    it.effect("OnInactivity refreshes on a read-only request only below refreshAfter, then re-sends the cookie", () =>
      withServer({ expiry: Expiry.OnInactivity("1 hour") }, ({ client, probe, store }) =>
        Effect.gen(function*() {
          const first = yield* client.get("/count")
          const token = tokenOf(first)
          const created = Option.getOrThrow(yield* loadByToken(store, token)).expiresAt
          probe.reset()
          yield* TestClock.adjust("20 minutes")
          const quiet = yield* client.get("/read")
          assert.strictEqual(quiet.setCookies.length, 0)
          assert.strictEqual(probe.counts.save, 0)
          yield* TestClock.adjust("20 minutes")
          // 20 minutes left, below the default refreshAfter of 30 minutes
          const refreshed = yield* client.get("/read")
          assert.strictEqual(refreshed.body, "1")
          assert.strictEqual(lifetime(refreshed), "3600")
          assert.strictEqual(tokenOf(refreshed), token)
          assert.strictEqual(probe.counts.save, 1)
          const record = Option.getOrThrow(yield* loadByToken(store, token))
          assert.strictEqual(record.expiresAt, created + 40 * 60_000)
          // just refreshed: the next read-only request writes nothing
          const after = yield* client.get("/read")
          assert.strictEqual(after.setCookies.length, 0)
          assert.strictEqual(probe.counts.save, 1)
        })))

    it.effect("an explicit refreshAfter: a read-only request refreshes once its remaining life is below it", () =>
      withServer(
        { expiry: Expiry.OnInactivity("1 hour"), refreshAfter: "50 minutes" },
        ({ client, probe }) =>
          Effect.gen(function*() {
            yield* client.get("/count")
            probe.reset()
            yield* TestClock.adjust("5 minutes")
            assert.strictEqual((yield* client.get("/read")).setCookies.length, 0)
            yield* TestClock.adjust("6 minutes")
            assert.strictEqual(lifetime(yield* client.get("/read")), "3600")
            assert.strictEqual(probe.counts.save, 1)
          })
      ))

    it.effect("a refresh that fails leaves the read-only request answered and the session as it was", () =>
      withServer({ expiry: Expiry.OnInactivity("1 hour") }, ({ client, probe }) =>
        Effect.gen(function*() {
          yield* client.get("/count")
          yield* TestClock.adjust("40 minutes")
          probe.fail("save", "Unavailable")
          const reply = yield* client.get("/read")
          assert.strictEqual(reply.status, 200)
          assert.strictEqual(reply.body, "1")
          assert.strictEqual(reply.setCookies.length, 0)
          probe.heal()
          const retried = yield* client.get("/read")
          assert.strictEqual(retried.cookie(COOKIE)?.attributes["max-age"], "3600")
        })))

    it.effect("an expired session is no session", () =>
      withServer({ expiry: Expiry.OnInactivity("1 hour") }, ({ client }) =>
        Effect.gen(function*() {
          yield* client.get("/count")
          yield* TestClock.adjust("61 minutes")
          assert.strictEqual((yield* client.get("/read")).body, "none")
        })))
  })

  it.live("a change that changes nothing writes nothing: an equal value again keeps the stored version", () =>
    withServer(undefined, ({ client, probe, store }) =>
      Effect.gen(function*() {
        const token = tokenOf(yield* client.post("/secret"))
        probe.reset()
        const again = yield* client.post("/secret")
        assert.strictEqual(again.status, 200)
        assert.strictEqual(probe.counts.save, 0)
        assert.strictEqual(Option.getOrThrow(yield* loadByToken(store, token)).version, 1)
        // removing a key that is not there writes nothing either
        yield* client.post("/insert-remove")
        assert.strictEqual(probe.counts.save, 0)
      })))

  it.live("the library's metadata key is reserved: writing it is an Encode error, reading it finds nothing", () =>
    withServer(undefined, ({ client }) =>
      Effect.gen(function*() {
        yield* client.get("/count")
        assert.strictEqual((yield* client.get("/reserved")).body, "SessionError:Encode|none")
      })))
})
