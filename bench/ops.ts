/**
 * Effect operations per request of the bench's HTTP app (bench/http/effect.ts: `/count` and `/read`
 * with `SessionMiddleware` over MemoryStore, and the same routes without sessions), served in this process by
 * `NodeHttpServer` and driven by `fetch` with one cookie per client. Operations are counted by a scheduler that
 * sees every step of every fiber (`shouldYield` is asked once per operation); they are deterministic for a
 * given version of the code. (CPU is not reported here: client and server share this process; the HTTP part
 * of `npm run bench` measures the server's CPU per request.)
 *
 * `npx tsx bench/ops.ts` (`OPS_REQUESTS` requests per row, default 2,000).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as Expiry from "../src/Expiry.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as SessionMiddleware from "../src/SessionMiddleware.js"
import { plainRouter, sessionRouter } from "./http/effect.js"

const requests = Number(process.env.OPS_REQUESTS ?? 2_000)

let ops = 0
const base = Scheduler.defaultScheduler
const counting: Scheduler.Scheduler = {
  scheduleTask: (task, priority) => base.scheduleTask(task, priority),
  shouldYield: (fiber) => {
    ops++
    return base.shouldYield(fiber)
  }
}

const serve = async (sessions: boolean) => {
  const serverLayer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
  const live = sessions
    ? HttpServer.serve(sessionRouter).pipe(
      Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("4 seconds"), refreshAfter: "2 seconds" })),
      Layer.provide(MemoryStore.layer()),
      Layer.provideMerge(serverLayer)
    )
    : HttpServer.serve(plainRouter()).pipe(Layer.provideMerge(serverLayer))
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(Layer.provide(live, Layer.setScheduler(counting)), scope) as Effect.Effect<
      Context.Context<HttpServer.HttpServer>,
      unknown
    >
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return { url: `http://127.0.0.1:${address.port}`, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const row = async (name: string, sessions: boolean, route: "count" | "read") => {
  const server = await serve(sessions)
  const clients = 50
  const cookies: Array<string | undefined> = new Array(clients).fill(undefined)
  const hit = async (i: number) => {
    const c = cookies[i % clients]
    const res = await fetch(`${server.url}/${route}`, { headers: c === undefined ? {} : { cookie: c } })
    await res.text()
    const set = res.headers.getSetCookie()[0]
    if (set !== undefined) cookies[i % clients] = set.split(";")[0]
  }
  // every client gets its session first (a `/count`), then the measured requests
  for (let i = 0; i < clients; i++) {
    const res = await fetch(`${server.url}/count`)
    await res.text()
    const set = res.headers.getSetCookie()[0]
    if (set !== undefined) cookies[i] = set.split(";")[0]
  }
  for (let i = 0; i < 200; i++) await hit(i)
  ops = 0
  for (let i = 0; i < requests; i++) await hit(i)
  const perRequest = ops / requests
  await server.close()
  return { name, route, opsPerRequest: Math.round(perRequest * 10) / 10 }
}

const rows = [
  await row("Effect, no sessions", false, "count"),
  await row("Effect + MemoryStore", true, "count"),
  await row("Effect + MemoryStore", true, "read")
]
console.table(rows)
