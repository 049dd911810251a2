/**
 * `cycleId` as a compare-and-set move, observed through real HTTP servers over a counted MemoryStore:
 * requests racing a slow login are forced into each interleaving with gates the handlers wait on.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option } from "effect"
import { MemoryStore, Session, SessionId, SessionMiddleware, SessionStore, type SessionToken } from "effect-sessions"
import { counting, type Probe } from "./support/countingStore.js"
import { type Client, makeClient, type Reply, serve } from "./support/http.js"

const COOKIE = "__Host-session"

/** Gates a handler waits on after it has loaded the session: `entered` when it got there, `open` lets it go on. */
interface Gate {
  readonly entered: Deferred.Deferred<void>
  readonly open: Deferred.Deferred<void>
}

const makeGates = () => {
  const gates = new Map<string, Gate>()
  const gate = (name: string) =>
    Effect.gen(function*() {
      const g: Gate = { entered: yield* Deferred.make<void>(), open: yield* Deferred.make<void>() }
      gates.set(name, g)
      return g
    })
  const wait = Effect.gen(function*() {
    const params = yield* HttpServerRequest.ParsedSearchParams
    const name = typeof params.gate === "string" ? params.gate : undefined
    const g = name === undefined ? undefined : gates.get(name)
    if (g === undefined) return
    yield* Deferred.succeed(g.entered, undefined)
    yield* Deferred.await(g.open)
  })
  return { gate, wait }
}

const routes = (wait: Effect.Effect<void, never, HttpServerRequest.ParsedSearchParams>) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/seed",
      Effect.as(
        Effect.all([
          Session.insert("cart", ["book"]),
          Session.insert("user", "guest"),
          Session.insert("elevated", true),
          Session.insert("role", "admin")
        ]),
        HttpServerResponse.text("ok")
      )
    ),
    HttpRouter.post(
      "/login",
      Effect.gen(function*() {
        yield* Session.keys // loaded before the wait
        yield* wait
        yield* Session.insert("user", "ada")
        yield* Session.cycleId
        return HttpServerResponse.text("welcome")
      })
    ),
    HttpRouter.post("/logout", Effect.as(Session.flush, HttpServerResponse.text("bye"))),
    HttpRouter.post("/demote", Effect.as(Session.remove("role"), HttpServerResponse.text("ok"))),
    HttpRouter.post(
      "/write",
      Effect.gen(function*() {
        yield* Session.keys
        yield* wait
        yield* Session.insert("late", true)
        return HttpServerResponse.text("ok")
      })
    )
  )

interface Harness {
  readonly urls: ReadonlyArray<string>
  readonly probe: Probe
  readonly store: SessionStore.Service
  readonly gate: (name: string) => Effect.Effect<Gate>
}

/** `withServers(instances, body)`: `instances` middleware instances (as separate processes) over one store. */
const withServers = <A, E>(
  instances: number,
  body: (h: Harness) => Effect.Effect<A, E, MemoryStore.MemoryStore>
) => {
  const { layer: storeLayer, probe } = counting(MemoryStore.layer())
  const { gate, wait } = makeGates()
  return Effect.gen(function*() {
    const urls: Array<string> = []
    for (let i = 0; i < instances; i++) {
      const middleware = yield* SessionMiddleware.make()
      urls.push(yield* serve(middleware.apply(routes(wait))))
    }
    const store = yield* SessionStore.SessionStore
    return yield* body({ urls, probe, store, gate })
  }).pipe(Effect.scoped, Effect.provide(storeLayer))
}

const tokenIn = (reply: Reply): string | undefined => {
  const c = reply.cookie(COOKIE)
  return c === undefined || c.value === "" ? undefined : c.value
}

const dataOf = (store: SessionStore.Service, token: string) =>
  Effect.map(
    store.load(SessionId.fromToken(token as SessionToken.SessionToken)).pipe(Effect.orDie),
    Option.map((r) => Object.fromEntries(Object.entries(r.data).filter(([k]) => k !== Session.META_KEY)))
  )

const withCookie = (url: string, token: string): Client => {
  const client = makeClient(url)
  client.jar.set(COOKIE, token)
  return client
}

const seed = (url: string) =>
  Effect.gen(function*() {
    const reply = yield* makeClient(url).post("/seed")
    const token = tokenIn(reply)
    assert.isDefined(token)
    return token!
  })

const size = Effect.flatMap(MemoryStore.MemoryStore, (m) => m.size)

describe("cycleId is a compare-and-set move", () => {
  for (const instances of [1, 2]) {
    const where = instances === 1 ? "one process" : "two processes"

    it.live(`${where}: a logout landing during a slow login stays in force`, () =>
      withServers(instances, ({ gate, store, urls }) =>
        Effect.gen(function*() {
          const token = yield* seed(urls[0])
          const g = yield* gate("login")
          const login = yield* Effect.fork(withCookie(urls[0], token).post("/login?gate=login"))
          yield* Deferred.await(g.entered)
          const bye = yield* withCookie(urls[instances - 1], token).post("/logout")
          assert.strictEqual(bye.cookie(COOKIE)?.attributes["max-age"], "0")
          yield* Deferred.succeed(g.open, undefined)
          const late = yield* Fiber.join(login)
          assert.strictEqual(late.status, 200)
          // no live token comes back: the login found the session gone and removes the cookie
          assert.isUndefined(tokenIn(late))
          assert.strictEqual(late.cookie(COOKIE)?.attributes["max-age"], "0")
          assert.isTrue(Option.isNone(yield* dataOf(store, token)))
          // nothing left behind: the record made for the move was deleted again
          assert.strictEqual(yield* size, 0)
        })))

    it.live(`${where}: a removal landing during a slow login stays in force in the moved session`, () =>
      withServers(instances, ({ gate, store, urls }) =>
        Effect.gen(function*() {
          const token = yield* seed(urls[0])
          const g = yield* gate("login")
          const login = yield* Effect.fork(withCookie(urls[0], token).post("/login?gate=login"))
          yield* Deferred.await(g.entered)
          assert.strictEqual((yield* withCookie(urls[instances - 1], token).post("/demote")).status, 200)
          yield* Deferred.succeed(g.open, undefined)
          const moved = tokenIn(yield* Fiber.join(login))
          assert.isDefined(moved)
          const data = Option.getOrThrow(yield* dataOf(store, moved!))
          assert.deepStrictEqual(data, { cart: ["book"], user: "ada", elevated: true })
          // the old token reaches the tombstone only
          assert.deepStrictEqual(Option.getOrThrow(yield* dataOf(store, token)), {})
          assert.strictEqual(yield* size, 2)
        })))

    it.live(`${where}: two racing logins leave one live session`, () =>
      withServers(instances, ({ gate, store, urls }) =>
        Effect.gen(function*() {
          const token = yield* seed(urls[0])
          const a = yield* gate("a")
          const b = yield* gate("b")
          const first = yield* Effect.fork(withCookie(urls[0], token).post("/login?gate=a"))
          const second = yield* Effect.fork(withCookie(urls[instances - 1], token).post("/login?gate=b"))
          yield* Deferred.await(a.entered)
          yield* Deferred.await(b.entered)
          yield* Deferred.succeed(a.open, undefined)
          yield* Deferred.succeed(b.open, undefined)
          const replies = [yield* Fiber.join(first), yield* Fiber.join(second)]
          const tokens = replies.map(tokenIn).filter((t): t is string => t !== undefined)
          assert.deepStrictEqual(replies.map((r) => r.status), [200, 200])
          assert.strictEqual(tokens.length, 1, "exactly one login hands out a token")
          // the other one sends no cookie at all: neither a token nor a removal that would undo the first
          assert.strictEqual(replies.filter((r) => r.setCookies.length === 0).length, 1)
          assert.deepStrictEqual(Option.getOrThrow(yield* dataOf(store, tokens[0])), {
            cart: ["book"],
            user: "ada",
            elevated: true,
            role: "admin"
          })
          // the tombstone and the one moved session: the loser's record was deleted again
          assert.strictEqual(yield* size, 2)
        })))

    it.live(`${where}: a write loaded under the old token gets no removal cookie and does not reach the new session`, () =>
      withServers(instances, ({ gate, store, urls }) =>
        Effect.gen(function*() {
          const token = yield* seed(urls[0])
          const g = yield* gate("write")
          const write = yield* Effect.fork(withCookie(urls[instances - 1], token).post("/write?gate=write"))
          yield* Deferred.await(g.entered)
          const moved = tokenIn(yield* withCookie(urls[0], token).post("/login"))
          assert.isDefined(moved)
          yield* Deferred.succeed(g.open, undefined)
          const late = yield* Fiber.join(write)
          assert.strictEqual(late.status, 200)
          assert.strictEqual(late.setCookies.length, 0, "no cookie: a removal would log the user out")
          const data = Option.getOrThrow(yield* dataOf(store, moved!))
          assert.isFalse("late" in data)
          assert.deepStrictEqual(Option.getOrThrow(yield* dataOf(store, token)), {})
        })))
  }

  it.live("a cycle needs no delete: with deletes failing the login succeeds and nothing is left behind", () =>
    withServers(1, ({ probe, store, urls }) =>
      Effect.gen(function*() {
        const token = yield* seed(urls[0])
        probe.fail("delete", "Unavailable")
        const login = yield* withCookie(urls[0], token).post("/login")
        assert.strictEqual(login.status, 200)
        const moved = tokenIn(login)
        assert.isDefined(moved)
        probe.heal()
        assert.strictEqual(Option.getOrThrow(yield* dataOf(store, moved!)).user, "ada")
        assert.deepStrictEqual(Option.getOrThrow(yield* dataOf(store, token)), {})
        assert.strictEqual(yield* size, 2)
      })))

  it.live("a move whose compare-and-set fails: a 500, the old session as it was, the new record unreachable", () =>
    withServers(1, ({ probe, store, urls }) =>
      Effect.gen(function*() {
        const token = yield* seed(urls[0])
        probe.fail("save", "Unavailable")
        const failed = yield* withCookie(urls[0], token).post("/login")
        assert.strictEqual(failed.status, 500)
        assert.strictEqual(failed.setCookies.length, 0)
        probe.heal()
        // the record made for the move was deleted again
        assert.strictEqual(yield* size, 1)
        assert.strictEqual(Option.getOrThrow(yield* dataOf(store, token)).user, "guest")
        // and when the clean-up delete fails too, the record is left, but no response ever carried its token
        probe.fail("save", "Unavailable")
        probe.fail("delete", "Unavailable")
        const again = yield* withCookie(urls[0], token).post("/login")
        assert.strictEqual(again.status, 500)
        assert.strictEqual(again.setCookies.length, 0)
        probe.heal()
        assert.strictEqual(yield* size, 2)
        assert.strictEqual(Option.getOrThrow(yield* dataOf(store, token)).user, "guest")
      })))

  it.live("rotateCsrfOnCycle: the CSRF secret is dropped by a move, unless the option keeps it", () =>
    Effect.gen(function*() {
      const csrfRoutes = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/csrf",
          Effect.as(Session.insert("effect-sessions:csrf", "s".repeat(43)), HttpServerResponse.text("ok"))
        ),
        HttpRouter.post("/login", Effect.as(Session.cycleId, HttpServerResponse.text("ok")))
      )
      for (const [options, kept] of [[undefined, false], [{ rotateCsrfOnCycle: false }, true]] as const) {
        const store = yield* SessionStore.SessionStore
        const middleware = yield* SessionMiddleware.make(options)
        const url = yield* serve(middleware.apply(csrfRoutes))
        const client = makeClient(url)
        yield* client.post("/csrf")
        const moved = tokenIn(yield* client.post("/login"))
        assert.isDefined(moved)
        const data = Option.getOrThrow(yield* dataOf(store, moved!))
        assert.strictEqual("effect-sessions:csrf" in data, kept)
      }
    }).pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
})
