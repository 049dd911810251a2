/**
 * Revocation across instances (`npm run bench`, level `revocation`): three app processes (bench/http/instance.ts) sharing one store, each with a
 * `CachingStore` (maxStaleness 5 s), with or without the store engine's invalidation channel.
 *
 * - Load: autocannon against each instance (a third of the connections each, a session per connection, sticky
 *   to its instance as behind a load balancer with session affinity): a connection's first request creates its
 *   session (`/count`), then 95% `/read` and 5% `/count`. Every response must be 200, and a `/read` must see the
 *   session (a positive counter); anything else voids the run.
 * - Probes, one a second during the timed run: a session is created on a random instance and read twice on the
 *   two others (so that their caches hold it); then it logs out on the first, and each other instance is asked
 *   for `/read` with the logged-out cookie, back to back, until it answers `0`. Revocation latency is the time
 *   from the logout's response to that answer, one sample per other instance.
 * - Hit ratio: the share of loads reaching the caching store that did not reach the persistent store, over the
 *   timed run on all three instances.
 */
import autocannon from "autocannon"
import { Redis } from "ioredis"
import * as http from "node:http"
import pg from "pg"
import { here, spawnChild } from "../lib/child.js"
import { services, uniqueName, unlinkPrefix } from "../lib/services.js"

export interface RevocationSettings {
  readonly connections: number
  readonly seconds: number
  readonly warmupSeconds: number
}

export interface RevocationRow {
  readonly name: string
  readonly engine: "redis" | "pg"
  readonly channel: boolean
  readonly instances: number
  readonly logouts: number
  /** Latencies measured: one per logout and other instance. */
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Every latency measured, in ms, sorted. */
  readonly latenciesMs: ReadonlyArray<number>
  /** Samples whose instance still served the logged-out session after `PROBE_LIMIT_MS`. */
  readonly unresolved: number
  readonly hitRatio: number
  readonly requestsPerSec: number
  readonly requests: number
  readonly seconds: number
  /** Server CPU (user + system, all three processes) per load-generator request, in µs. */
  readonly serverCpuMicrosPerRequest: number
  readonly valid: boolean
  readonly voidReason?: string | undefined
}

const INSTANCES = 3
const PROBE_LIMIT_MS = 10_000
const COOKIE = "__Host-session"

const agents = new Map<number, http.Agent>()
const agentFor = (port: number): http.Agent => {
  let agent = agents.get(port)
  if (agent === undefined) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
    agents.set(port, agent)
  }
  return agent
}

/** One GET; resolves with the status, the body and the session cookie's new value, if one was set. */
const get = (port: number, path: string, cookie?: string) =>
  new Promise<{ status: number; body: string; cookie: string | undefined }>((resolve, reject) => {
    const request = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        agent: agentFor(port),
        headers: cookie === undefined ? {} : { cookie: `${COOKIE}=${cookie}` }
      },
      (response) => {
        let body = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => (body += chunk))
        response.on("end", () => {
          const set = (response.headers["set-cookie"] ?? []).find((line) => line.startsWith(`${COOKIE}=`))
          const value = set?.slice(COOKIE.length + 1).split(";", 1)[0]
          resolve({ status: response.statusCode ?? 0, body, cookie: value === "" ? undefined : value })
        })
      }
    )
    request.on("error", reject)
    request.end()
  })

/** A probe from instance `i`: latencies (ms) at the other instances, `undefined` where the limit passed. */
const probe = async (ports: ReadonlyArray<number>, i: number): Promise<ReadonlyArray<number | undefined>> => {
  const created = await get(ports[i], "/count")
  if (created.status !== 200 || created.cookie === undefined) {
    throw new Error(`probe: /count answered ${created.status}`)
  }
  const cookie = created.cookie
  const others = ports.filter((_, j) => j !== i)
  for (const port of others) {
    for (let k = 0; k < 2; k++) {
      const read = await get(port, "/read", cookie)
      if (read.body !== "1") throw new Error(`probe: /read before the logout answered ${read.status} ${read.body}`)
    }
  }
  const logout = await get(ports[i], "/logout", cookie)
  if (logout.status !== 200) throw new Error(`probe: /logout answered ${logout.status}`)
  const loggedOutAt = performance.now()
  return Promise.all(others.map(async (port) => {
    while (performance.now() - loggedOutAt < PROBE_LIMIT_MS) {
      const read = await get(port, "/read", cookie)
      if (read.body === "0") return performance.now() - loggedOutAt
    }
    return undefined
  }))
}

interface LoadResult {
  readonly requests: number
  readonly seconds: number
  readonly problem: string | undefined
}

/** 95% `/read`, 5% `/count` on one instance, a session per connection. */
export const mixedLoad = (port: number, connections: number, seconds: number): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    let problem: string | undefined
    const instance = autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      duration: seconds,
      pipelining: 1,
      timeout: 10,
      setupClient: (client) => {
        let cookie: string | undefined
        let path = "/count"
        client.setRequests([{
          method: "GET",
          setupRequest: (request) => {
            path = cookie === undefined || Math.random() < 0.05 ? "/count" : "/read"
            return { ...request, path, headers: cookie === undefined ? {} : { cookie: `${COOKIE}=${cookie}` } }
          },
          onResponse: (status, body, _context, headers) => {
            if (status !== 200) problem ??= `HTTP ${status} on ${path}`
            else if (Number(body) < 1) problem ??= `${path} answered ${body.slice(0, 20)}`
            const raw = (headers as Record<string, unknown>)["set-cookie"]
            const lines = raw === undefined ? [] : Array.isArray(raw) ? (raw as Array<string>) : [String(raw)]
            const set = lines.find((line) => line.startsWith(`${COOKIE}=`))
            if (set !== undefined) cookie = set.slice(COOKIE.length + 1).split(";", 1)[0]
          }
        }])
      }
    }, (error, result) => {
      if (error !== null && error !== undefined) return reject(error)
      resolve({
        requests: result.requests.total,
        seconds: result.duration,
        problem: problem ?? (result.errors > 0 ? `${result.errors} connection errors` : undefined)
      })
    })
    instance.on("error", reject)
  })

type Counts = {
  readonly type: "counts"
  readonly loads: number
  readonly storeLoads: number
  readonly cpuMicros: number
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

export const revocationName = (engine: "redis" | "pg", channel: boolean): string =>
  `revocation latency: 3 x CachingStore over ${engine === "redis" ? "Redis" : "Postgres"}, ${
    channel ? (engine === "redis" ? "Redis pub/sub channel" : "LISTEN/NOTIFY channel") : "no channel"
  }`

export const runRevocation = async (
  engine: "redis" | "pg",
  channel: boolean,
  settings: RevocationSettings
): Promise<RevocationRow> => {
  const name = uniqueName("bench_rev")
  const channelName = uniqueName("bench_chan")
  const children = Array.from({ length: INSTANCES }, () =>
    spawnChild(here(import.meta.url, "./instance.ts"), {
      args: [engine, channel ? "channel" : "none", engine === "redis" ? `${name}:` : name, channelName]
    }))
  const perInstance = Math.max(1, Math.floor(settings.connections / INSTANCES))
  const counts = async () => {
    for (const child of children) child.send({ type: "counts" })
    return Promise.all(children.map((child) => child.next<Counts>("counts")))
  }
  try {
    // started one after the other: the three migrations of one table need not race at start
    const ports: Array<number> = []
    for (const child of children) ports.push((await child.next<{ type: "ready"; port: number }>("ready", 60_000)).port)
    if (settings.warmupSeconds > 0) {
      await Promise.all(ports.map((port) => mixedLoad(port, perInstance, settings.warmupSeconds)))
    }
    const before = await counts()
    const started = performance.now()
    const probes: Array<Promise<ReadonlyArray<number | undefined>>> = []
    const timer = setInterval(() => {
      if (performance.now() - started < settings.seconds * 1000) {
        probes.push(probe(ports, Math.floor(Math.random() * INSTANCES)))
      }
    }, 1000)
    const loads = await Promise.all(ports.map((port) => mixedLoad(port, perInstance, settings.seconds)))
    clearInterval(timer)
    const after = await counts()
    const samples = (await Promise.all(probes)).flat()
    const latencies = samples.filter((s): s is number => s !== undefined).sort((a, b) => a - b)
    const loadsDelta = after.reduce((n, c, i) => n + c.loads - before[i].loads, 0)
    const storeDelta = after.reduce((n, c, i) => n + c.storeLoads - before[i].storeLoads, 0)
    const cpu = after.reduce((n, c, i) => n + c.cpuMicros - before[i].cpuMicros, 0)
    const requests = loads.reduce((n, l) => n + l.requests, 0)
    const seconds = Math.max(...loads.map((l) => l.seconds))
    const problem = loads.find((l) => l.problem !== undefined)?.problem
    return {
      name: revocationName(engine, channel),
      engine,
      channel,
      instances: INSTANCES,
      logouts: probes.length,
      samples: samples.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.length === 0 ? Number.NaN : latencies[latencies.length - 1],
      latenciesMs: latencies,
      unresolved: samples.length - latencies.length,
      hitRatio: loadsDelta === 0 ? 0 : (loadsDelta - storeDelta) / loadsDelta,
      requestsPerSec: requests / seconds,
      requests,
      seconds,
      serverCpuMicrosPerRequest: requests === 0 ? 0 : cpu / requests,
      valid: problem === undefined && probes.length > 0,
      voidReason: problem ?? (probes.length === 0 ? "no logout measured" : undefined)
    }
  } finally {
    for (const child of children) child.send({ type: "stop" })
    await Promise.all(children.map((child) => child.stop(15_000)))
    for (const agent of agents.values()) agent.destroy()
    agents.clear()
    if (engine === "redis") {
      const client = new Redis(services.redis)
      await unlinkPrefix(client, `${name}:`)
      await client.quit()
    } else {
      const pool = new pg.Pool({ ...services.pg, max: 1 })
      await pool.query(`DROP TABLE IF EXISTS "${name}"`)
      await pool.end()
    }
  }
}
