/**
 * Test support: a real HTTP server on a random loopback port, and a `fetch` client with a cookie jar.
 *
 * ```ts
 * it.live("counter", () =>
 *   Effect.gen(function*() {
 *     const url = yield* serve(app)            // scoped: the server stops with the test
 *     const client = makeClient(url)
 *     const reply = yield* client.get("/count")
 *     assert.strictEqual(reply.status, 200)
 *     assert.strictEqual(reply.cookie("__Host-session")?.attributes["max-age"], undefined)
 *   }).pipe(Effect.scoped, Effect.provide(layer)))
 * ```
 *
 * The jar keeps one value per cookie name (one host, so domain and path are not modelled), applies
 * `Max-Age<=0` as removal, and sends `Secure` cookies over plain HTTP to 127.0.0.1 as browsers do for
 * loopback hosts.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert } from "@effect/vitest"
import { Session, SessionMiddleware, SessionStore } from "effect-sessions"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"

/** `serve(app)` serves `app` on 127.0.0.1 on a random port for the life of the scope and succeeds with its base URL. */
export const serve = <E, R>(
  app: HttpApp.Default<E, R>
): Effect.Effect<string, never, Scope.Scope | Exclude<R, HttpServerRequest.HttpServerRequest>> =>
  Effect.gen(function*() {
    const server = yield* Effect.orDie(NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" }))
    yield* server.serve(app)
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })

/** One `Set-Cookie` header, parsed. Attribute names are lower-cased; flags map to `true`. */
export interface SetCookie {
  readonly raw: string
  readonly name: string
  readonly value: string
  readonly attributes: Readonly<Record<string, string | true>>
}

export const parseSetCookie = (raw: string): SetCookie => {
  const [pair, ...rest] = raw.split(";")
  const eq = pair.indexOf("=")
  const name = pair.slice(0, eq).trim()
  const value = decodeURIComponent(pair.slice(eq + 1).trim())
  const attributes: Record<string, string | true> = {}
  for (const part of rest) {
    const i = part.indexOf("=")
    if (i === -1) attributes[part.trim().toLowerCase()] = true
    else attributes[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim()
  }
  return { raw, name, value, attributes }
}

/** What a request observed. */
export interface Reply {
  readonly status: number
  readonly body: string
  readonly setCookies: ReadonlyArray<SetCookie>
  /** The `Set-Cookie` of `name` in this reply, if any. */
  readonly cookie: (name: string) => SetCookie | undefined
}

export interface Client {
  /** The cookies the jar holds, by name. */
  readonly jar: Map<string, string>
  readonly request: (path: string, init?: RequestInit) => Effect.Effect<Reply>
  readonly get: (path: string) => Effect.Effect<Reply>
  readonly post: (path: string, body?: string) => Effect.Effect<Reply>
}

/**
 * `makeClient(baseUrl, send)` is a client with its own empty cookie jar; it sends each Web `Request` with
 * `send`: `fetch` by default, or a Web handler (`HttpApp.toWebHandler`, a router's `fetch`) served in-process.
 */
export const makeClient = (
  baseUrl: string,
  send: (request: Request) => Promise<Response> = (request) => fetch(request)
): Client => {
  const jar = new Map<string, string>()
  const request = (path: string, init?: RequestInit): Effect.Effect<Reply> =>
    Effect.promise(async (signal) => {
      const headers = new Headers(init?.headers)
      if (jar.size > 0 && !headers.has("cookie")) {
        headers.set("cookie", Array.from(jar, ([k, v]) => `${k}=${v}`).join("; "))
      }
      const response = await send(new Request(baseUrl + path, { ...init, headers, signal, redirect: "manual" }))
      const body = await response.text()
      const setCookies = response.headers.getSetCookie().map(parseSetCookie)
      for (const c of setCookies) {
        const maxAge = c.attributes["max-age"]
        if (typeof maxAge === "string" && Number(maxAge) <= 0) jar.delete(c.name)
        else jar.set(c.name, encodeURIComponent(c.value))
      }
      return {
        status: response.status,
        body,
        setCookies,
        cookie: (name: string) => setCookies.find((c) => c.name === name)
      }
    })
  return {
    jar,
    request,
    get: (path) => request(path),
    post: (path, body) => request(path, { method: "POST", ...(body !== undefined ? { body } : {}) })
  }
}

/** `visitsOf(reply)` is the visit counter of the demo's page (the reply must be a 200). */
export const visitsOf = (reply: Reply): number => {
  assert.strictEqual(reply.status, 200, reply.body)
  const match = /<strong id="visits">(\d+)<\/strong>/.exec(reply.body)
  assert.isNotNull(match, "expected the visit counter on the page")
  return Number(match![1])
}

/** `csrfOf(reply)` is the CSRF token in the demo page's form. */
export const csrfOf = (reply: Reply): string => {
  const match = /name="_csrf" value="([^"]+)"/.exec(reply.body)
  assert.isNotNull(match, "expected a CSRF token in the page's form")
  return match![1]
}

/**
 * `loadBarrier(layer)` wraps the `SessionStore` a layer provides so that, once `arm(n)` has been called,
 * the next `n` loads each wait (after reading the store) until all `n` have read it. Twenty requests on
 * one session then all read the same version before any of them saves: their saves must conflict, and
 * only a merge lets every change land.
 */
export const loadBarrier = <ROut, E, R>(
  layer: Layer.Layer<ROut | SessionStore.SessionStore, E, R>
): {
  readonly layer: Layer.Layer<ROut | SessionStore.SessionStore, E, R>
  readonly arm: (parties: number) => void
} => {
  let remaining = 0
  let gate: Deferred.Deferred<void> | undefined
  const wrap = (inner: SessionStore.Service): SessionStore.Service => ({
    ...inner,
    load: (id) =>
      Effect.tap(inner.load(id), () => {
        const current = gate
        if (current === undefined) return Effect.void
        remaining--
        if (remaining <= 0) {
          gate = undefined
          return Deferred.succeed(current, undefined)
        }
        return Deferred.await(current)
      })
  })
  return {
    layer: Layer.map(
      layer,
      (ctx) => Context.add(ctx, SessionStore.SessionStore, wrap(Context.get(ctx, SessionStore.SessionStore)))
    ),
    arm: (parties) => {
      remaining = parties
      gate = Deferred.unsafeMake<void>(FiberId.none)
    }
  }
}

/**
 * `concurrentWriters(storeLayer, { writers, instances })` serves an app with the session middleware over one
 * store from `instances` middleware instances (as if from that many processes, each on its own server), makes
 * a session, then sends `writers` concurrent requests on it, spread over the instances, each inserting its
 * own key, all having read the same version (see `loadBarrier`). It succeeds with the keys the session then
 * holds (sorted), the expected keys, the statuses, and the number of `save` calls (more than `writers`
 * means conflicts between instances were merged).
 */
export const concurrentWriters = <E, R>(
  storeLayer: Layer.Layer<SessionStore.SessionStore, E, R>,
  options?: { readonly writers?: number | undefined; readonly instances?: number | undefined }
): Effect.Effect<
  {
    readonly keys: ReadonlyArray<string>
    readonly expected: ReadonlyArray<string>
    readonly statuses: ReadonlyArray<number>
    readonly saves: number
  },
  E | SessionMiddleware.SessionConfigError,
  R
> => {
  const writers = options?.writers ?? 20
  const instances = options?.instances ?? 1
  let saves = 0
  const barrier = loadBarrier(
    Layer.map(storeLayer, (ctx) => {
      const inner = Context.get(ctx, SessionStore.SessionStore)
      return Context.add(ctx, SessionStore.SessionStore, {
        ...inner,
        save: (record) => Effect.suspend(() => (saves++, inner.save(record)))
      })
    })
  )
  const routes = HttpRouter.empty.pipe(
    HttpRouter.post(
      "/put",
      Effect.flatMap(
        HttpServerRequest.ParsedSearchParams,
        (params) =>
          Effect.as(Session.insert(String(params.key), `value-of-${String(params.key)}`), HttpServerResponse.text("ok"))
      )
    ),
    HttpRouter.get(
      "/keys",
      Effect.map(Session.keys, (keys) => HttpServerResponse.text(JSON.stringify([...keys].sort())))
    )
  )
  return Effect.gen(function*() {
    const urls: Array<string> = []
    for (let i = 0; i < instances; i++) {
      const middleware = yield* SessionMiddleware.make()
      urls.push(yield* serve(middleware.apply(routes)))
    }
    const owner = makeClient(urls[0])
    const seed = yield* owner.post("/put?key=seed")
    const cookie = seed.setCookies[0]
    const keys = Array.from({ length: writers }, (_, i) => `k${String(i).padStart(2, "0")}`)
    saves = 0
    barrier.arm(writers)
    const statuses = yield* Effect.forEach(keys, (key, i) => {
      const client = makeClient(urls[i % instances])
      if (cookie !== undefined) client.jar.set(cookie.name, cookie.value)
      return Effect.map(client.post(`/put?key=${key}`), (r) => r.status)
    }, { concurrency: "unbounded" })
    const stored: ReadonlyArray<string> = JSON.parse((yield* owner.get("/keys")).body)
    return { keys: stored, expected: ["seed", ...keys].sort(), statuses, saves }
  }).pipe(Effect.scoped, Effect.provide(barrier.layer))
}
