/**
 * A session's user over a real HTTP server: binding on login, device details, freshness, unbinding, the
 * current user's sessions and "log out my other sessions"; the user id never in a span or log line.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import type { SessionStore } from "effect-sessions"
import { CachingStore, LruStore, MemoryStore, Session, SessionIndex, SessionMiddleware } from "effect-sessions"
import { shiftedClock } from "../src/internal/contractClock.js"
import { makeClient, serve } from "./support/http.js"
import { makeRecorder } from "./support/recording.js"

const COOKIE = "__Host-session"

const param = (name: string) =>
  Effect.map(HttpServerRequest.ParsedSearchParams, (p) => (typeof p[name] === "string" ? (p[name] as string) : ""))

const json = (body: unknown) => HttpServerResponse.unsafeJson(body)

const routes = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/login",
    Effect.gen(function*() {
      // the user id in the body: the platform's span records the URL
      const user = yield* Effect.orDie(Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) => r.text))
      yield* Session.cycleId
      const bound = yield* Effect.either(Session.bindUser(user))
      if (bound._tag === "Left") return json({ error: bound.left.reason, message: bound.left.message })
      return json({ ok: true })
    })
  ),
  HttpRouter.post(
    "/login-device",
    Effect.as(
      Session.bindUser("device-user", { device: { userAgent: "Given/1.0\u0000\n", ip: "203.0.113.9" } }),
      json({ ok: true })
    )
  ),
  HttpRouter.get("/me", Effect.map(Session.user, (u) => json(Option.getOrNull(u)))),
  HttpRouter.get(
    "/fresh",
    Effect.gen(function*() {
      const shift = Number(yield* param("shift"))
      const result = yield* Effect.clockWith((clock) =>
        Effect.either(Effect.withClock(Session.requireFresh("5 minutes"), shiftedClock(clock, () => shift)))
      )
      return json(
        result._tag === "Right" ? { ok: result.right.id } : { error: result.left._tag, reason: result.left.reason }
      )
    })
  ),
  HttpRouter.post("/note", Effect.as(Session.insert("note", "n"), json({ ok: true }))),
  HttpRouter.post("/unbind", Effect.as(Session.unbindUser, json({ ok: true }))),
  HttpRouter.post("/clear", Effect.as(Session.clear, json({ ok: true }))),
  HttpRouter.post("/logout", Effect.as(Session.flush, json({ ok: true }))),
  HttpRouter.get(
    "/sessions",
    Effect.map(
      SessionIndex.mine,
      (entries) => json(entries.map((e) => ({ id: e.id, current: e.current, device: e.device })))
    )
  ),
  HttpRouter.post("/others", Effect.map(SessionIndex.revokeOthers, (n) => json({ revoked: n })))
)

/** Serves the routes over the store layer (a `SessionIndex` included) and succeeds with the URL and the index. */
const rig = (
  store: Layer.Layer<SessionStore.SessionStore | SessionIndex.SessionIndex, unknown>,
  options?: SessionMiddleware.Options
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.orDie(store))
    const middleware = yield* SessionMiddleware.make(options).pipe(Effect.provide(context), Effect.orDie)
    const url = yield* serve(middleware.apply(routes).pipe(Effect.provide(context)))
    return { url, index: Context.get(context, SessionIndex.SessionIndex) }
  })

const body = (reply: { readonly body: string }) => JSON.parse(reply.body)

describe("Session.bindUser", () => {
  it.live("login binds the user: authentication time, the trimmed User-Agent, no IP by default", () =>
    Effect.gen(function*() {
      const { url } = yield* rig(MemoryStore.layer())
      const client = makeClient(url)
      const before = Date.now()
      const agent = "Mozilla/5.0 \u00e9\t" + "x".repeat(1_000)
      const login = yield* client.request("/login", { method: "POST", body: "alice", headers: { "user-agent": agent } })
      assert.deepStrictEqual(body(login), { ok: true })
      // a binding alone is a session worth storing: the cookie was set
      assert.isDefined(login.cookie(COOKIE))
      const me = body(yield* client.get("/me"))
      assert.strictEqual(me.id, "alice")
      assert.isAtLeast(me.authenticatedAt, before)
      assert.isAtMost(me.authenticatedAt, Date.now())
      assert.strictEqual(me.device.userAgent.length, 256)
      assert.match(me.device.userAgent, /^Mozilla\/5\.0 x+$/)
      assert.notProperty(me.device, "ip")
    }).pipe(Effect.scoped))

  it.live("device.ip: true keeps the remote address; device: the app's own details, printable only", () =>
    Effect.gen(function*() {
      const { url } = yield* rig(MemoryStore.layer(), { device: { ip: true, userAgent: false } })
      const client = makeClient(url)
      yield* client.request("/login", { method: "POST", body: "bob", headers: { "user-agent": "Agent" } })
      const me = body(yield* client.get("/me"))
      assert.match(me.device.ip, /127\.0\.0\.1$/)
      assert.notProperty(me.device, "userAgent")
      const other = makeClient(url)
      yield* other.post("/login-device")
      assert.deepStrictEqual(body(yield* other.get("/me")).device, { userAgent: "Given/1.0", ip: "203.0.113.9" })
    }).pipe(Effect.scoped))

  it.live("a user id that is empty or over 255 characters is an Encode error that does not name it", () =>
    Effect.gen(function*() {
      const { url } = yield* rig(MemoryStore.layer())
      for (const user of ["", "u".repeat(256)]) {
        const client = makeClient(url)
        const reply = body(yield* client.post("/login", user))
        assert.strictEqual(reply.error, "Encode")
        if (user.length > 0) assert.notInclude(reply.message, user)
        assert.isNull(body(yield* client.get("/me")))
      }
      const client = makeClient(url)
      assert.deepStrictEqual(body(yield* client.post("/login", "u".repeat(255))), { ok: true })
    }).pipe(Effect.scoped))

  it.live("requireFresh: within the age the user; past it, or unbound, NotFresh", () =>
    Effect.gen(function*() {
      const { url } = yield* rig(MemoryStore.layer())
      const client = makeClient(url)
      assert.deepStrictEqual(body(yield* client.get("/fresh?shift=0")), { error: "NotFresh", reason: "Unbound" })
      yield* client.post("/login", "carol")
      assert.deepStrictEqual(body(yield* client.get("/fresh?shift=0")), { ok: "carol" })
      assert.deepStrictEqual(body(yield* client.get(`/fresh?shift=${4 * 60_000}`)), { ok: "carol" })
      assert.deepStrictEqual(body(yield* client.get(`/fresh?shift=${5 * 60_000 + 1_000}`)), {
        error: "NotFresh",
        reason: "Stale"
      })
      // a clock that went back is no freshness either
      assert.deepStrictEqual(body(yield* client.get(`/fresh?shift=-60000`)), { error: "NotFresh", reason: "Stale" })
    }).pipe(Effect.scoped))

  it.live("clear and cycleId keep the binding; unbindUser and flush end it, and the index follows", () =>
    Effect.gen(function*() {
      const { index, url } = yield* rig(MemoryStore.layer())
      const client = makeClient(url)
      yield* client.post("/login", "dave")
      yield* client.post("/note")
      yield* client.post("/clear")
      assert.strictEqual(body(yield* client.get("/me")).id, "dave")
      assert.lengthOf(yield* index.list("dave"), 1)
      yield* client.post("/login", "dave") // a second login cycles again: still one session
      assert.lengthOf(yield* index.list("dave"), 1)
      yield* client.post("/unbind")
      assert.isNull(body(yield* client.get("/me")))
      assert.lengthOf(yield* index.list("dave"), 0)
      yield* client.post("/login", "dave")
      assert.lengthOf(yield* index.list("dave"), 1)
      yield* client.post("/logout")
      assert.lengthOf(yield* index.list("dave"), 0)
    }).pipe(Effect.scoped))
})

describe("SessionIndex in handlers", () => {
  for (
    const [name, store] of [
      ["MemoryStore", MemoryStore.layer()],
      [
        "CachingStore over MemoryStore",
        CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer(), maxStaleness: "1 hour" })
      ]
    ] as const
  ) {
    it.live(`${name}: mine marks the current session; revokeOthers logs the other browser out at once`, () =>
      Effect.gen(function*() {
        const { index, url } = yield* rig(store)
        const laptop = makeClient(url)
        const phone = makeClient(url)
        yield* laptop.request("/login", { method: "POST", body: "erin", headers: { "user-agent": "Laptop" } })
        yield* phone.request("/login", { method: "POST", body: "erin", headers: { "user-agent": "Phone" } })
        const seen = body(yield* laptop.get("/sessions")) as Array<{ current: boolean; device: { userAgent: string } }>
        assert.lengthOf(seen, 2)
        assert.deepStrictEqual(seen.filter((e) => e.current).map((e) => e.device.userAgent), ["Laptop"])
        // the phone's session is cached on this instance (a long maxStaleness): the revoke must still reach it
        assert.strictEqual(body(yield* phone.get("/me")).id, "erin")
        assert.deepStrictEqual(body(yield* laptop.post("/others")), { revoked: 1 })
        assert.isNull(body(yield* phone.get("/me")))
        assert.strictEqual(body(yield* laptop.get("/me")).id, "erin")
        assert.lengthOf(yield* index.list("erin"), 1)
        // admin: everywhere
        assert.strictEqual(yield* index.revoke("erin"), 1)
        assert.isNull(body(yield* laptop.get("/me")))
      }).pipe(Effect.scoped))
  }

  it.live("the user id appears in no span and no log line", () => {
    const recorder = makeRecorder()
    return recorder.provide(
      Effect.gen(function*() {
        const { index, url } = yield* rig(MemoryStore.layer())
        const user = "user-7c1f3e9a-secret"
        const client = makeClient(url)
        yield* client.post("/login", user)
        yield* client.get("/sessions")
        yield* client.post("/others")
        yield* index.list(user)
        yield* index.revoke(user)
        assert.isNotEmpty(recorder.spans)
        assert.notInclude(recorder.dump(), user)
        assert.notInclude(recorder.dump(), SessionIndex.userKey(user))
      }).pipe(Effect.scoped)
    )
  })
})
