/**
 * The shape of one benchmark run as written to `bench/results/<date>.json` and read by the chart,
 * `latest.json`'s pointer to the latest of them, and the machine description printed under the table and
 * the chart.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { RevocationRow } from "../http/revocation.js"

/** Who a row belongs to: our library, a peer a user would pick instead, or the raw driver (the backend's limit). */
export type Kind = "ours" | "peer" | "raw" | "baseline"

export interface StoreRow {
  readonly name: string
  readonly kind: Kind
  readonly backend: string
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly operations: number
  readonly seconds: number
}

export interface HttpRow {
  readonly name: string
  /** `count`: increments a counter in the session; `read`: reads the session, writes nothing. */
  readonly route: "count" | "read"
  readonly kind: Kind
  readonly framework: "effect" | "express"
  readonly store: string
  readonly requestsPerSec: number
  readonly requests: number
  readonly seconds: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
  readonly connections: number
  /** Sessions the timed run created (one per connection when the run is valid). */
  readonly sessions: number
  /** false when a connection's counter did not go 1, 2, 3… (or a read returned another value). */
  readonly valid: boolean
  readonly voidReason?: string | undefined
  /** Store writes (create + save, or express-session set + touch) during the timed run. */
  readonly storeWrites?: number | undefined
  readonly storeReads?: number | undefined
  /**
   * CPU time (user + system) of the server process during the timed run, per request, in µs: the cost of
   * a request on the server, less sensitive than req/s to what else the machine is running.
   */
  readonly serverCpuMicrosPerRequest: number
  /** Every round of an interleaved run (the row itself is the median round). */
  readonly rounds?:
    | ReadonlyArray<{ readonly requestsPerSec: number; readonly serverCpuMicrosPerRequest: number }>
    | undefined
}

export interface MemoryRow {
  readonly name: string
  readonly kind: Kind
  readonly sessions: number
  readonly jsonBytes: number
  readonly heapBytes: number
  readonly rssBytes: number
  readonly heapPerSession: number
  /** 2 × JSON bytes + 300 B per session: the budget. */
  readonly budgetBytes: number
}

export interface Target {
  readonly name: string
  readonly value: string
  readonly goal: string
  /** null when a figure it needs is missing (store not built, run void, level skipped). */
  readonly met: boolean | null
}

/** One figure of the session index benchmark (bench/index-*.ts): a call's latency, or a write rate. */
export interface IndexResultRow {
  readonly store: string
  readonly op: string
  readonly n: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly note: string
}

export interface Missing {
  readonly level: "store" | "index" | "http" | "memory" | "revocation"
  readonly name: string
  readonly reason: string
}

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  readonly loadAverage: ReadonlyArray<number>
}

export interface Results {
  readonly date: string
  readonly command: string
  readonly machine: Machine
  readonly settings: Record<string, unknown>
  readonly store: ReadonlyArray<StoreRow>
  readonly http: ReadonlyArray<HttpRow>
  readonly memory: ReadonlyArray<MemoryRow>
  /** The session index per store (absent in runs made before it was measured). */
  readonly index?: ReadonlyArray<IndexResultRow> | undefined
  /** Revocation across three instances (absent in runs made before it was measured). */
  readonly revocation?: ReadonlyArray<RevocationRow> | undefined
  readonly targets: ReadonlyArray<Target>
  readonly missing: ReadonlyArray<Missing>
  readonly elapsedSeconds: number
}

const cpuModel = (): string => {
  try {
    const line = fs.readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"))
    if (line !== undefined) return line.slice(line.indexOf(":") + 1).trim()
  } catch {
    // not Linux: fall back to what Node reports
  }
  return os.cpus()[0]?.model ?? "unknown CPU"
}

export const machine = (): Machine => ({
  cpu: cpuModel(),
  cores: os.availableParallelism(),
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  loadAverage: os.loadavg().map((n) => Math.round(n * 100) / 100)
})

export const describeMachine = (m: Machine): string =>
  `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`

/** What `bench/results/latest.json` holds: the name of the latest run's dated file beside it. */
export interface LatestPointer {
  readonly latest: string
}

/** `latestPointer(datedFile)` is the text of `latest.json` pointing at `datedFile` (a name in the same folder). */
export const latestPointer = (datedFile: string): string =>
  `${JSON.stringify({ latest: path.basename(datedFile) } satisfies LatestPointer, null, 2)}\n`

/**
 * `readResults(file)` reads a run's figures from `file`, following `latest.json`'s pointer to the dated file
 * beside it.
 */
export const readResults = (file: string): Results => {
  const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Results | LatestPointer
  if ("latest" in parsed && typeof parsed.latest === "string") {
    return JSON.parse(fs.readFileSync(path.join(path.dirname(file), path.basename(parsed.latest)), "utf8")) as Results
  }
  return parsed as Results
}
