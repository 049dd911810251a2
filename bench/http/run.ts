/**
 * One HTTP measurement: the variant's server in its own process (bench/http/server.ts), autocannon in
 * this one; a warm-up with its own sessions, then the timed run with fresh ones (so every counter
 * starts at 1), and the store calls counted by the server between the two.
 */
import { here, spawnChild } from "../lib/child.js"
import type { HttpRow } from "../lib/results.js"
import { runLoad } from "./load.js"
import type { Variant } from "./variants.js"

export interface HttpSettings {
  readonly connections: number
  readonly seconds: number
  readonly warmupSeconds: number
}

type Counts = {
  readonly type: "counts"
  readonly writes: number
  readonly reads: number
  readonly cpuMicros: number
}

export const runHttp = async (variant: Variant, route: "count" | "read", settings: HttpSettings): Promise<HttpRow> => {
  const child = spawnChild(here(import.meta.url, "./server.ts"), { args: [variant.id] })
  try {
    const { port } = await child.next<{ type: "ready"; port: number }>("ready", 60_000)
    const sessions = variant.store !== "none"
    if (settings.warmupSeconds > 0) {
      await runLoad({ port, route, connections: settings.connections, seconds: settings.warmupSeconds, sessions })
    }
    child.send({ type: "counts" })
    const before = await child.next<Counts>("counts")
    const load = await runLoad({ port, route, connections: settings.connections, seconds: settings.seconds, sessions })
    child.send({ type: "counts" })
    const after = await child.next<Counts>("counts")
    return {
      name: variant.name,
      route,
      kind: variant.kind,
      framework: variant.framework,
      store: variant.store,
      requestsPerSec: load.requestsPerSec,
      requests: load.requests,
      seconds: load.seconds,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      errors: load.errors,
      non2xx: load.non2xx,
      connections: settings.connections,
      sessions: load.sessions,
      valid: load.valid,
      voidReason: load.voidReason,
      storeWrites: sessions ? after.writes - before.writes : undefined,
      storeReads: sessions ? after.reads - before.reads : undefined,
      serverCpuMicrosPerRequest: load.requests > 0 ? (after.cpuMicros - before.cpuMicros) / load.requests : 0
    }
  } finally {
    child.send({ type: "stop" })
    await child.stop(15_000)
  }
}
