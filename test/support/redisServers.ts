/**
 * Private Redis servers for tests and benchmarks: a `redis-server` on a spare loopback port, and a 3-master Redis
 * Cluster of them. No test framework here, so a benchmark can start them too.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

/** A key prefix no other test run uses. */
export const uniquePrefix = (label: string): string => `test:${label}:${randomBytes(6).toString("hex")}:`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)))
  })

/** A free loopback port whose cluster bus port (port + 10000) is free too. */
export const sparePort = async (): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 35_000)
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port
  }
  throw new Error("no spare loopback port found")
}

const cli = (port: number, ...args: Array<string>): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile(
      "redis-cli",
      ["-h", "127.0.0.1", "-p", String(port), ...args],
      { timeout: 30_000 },
      (error, stdout) => error ? reject(error) : resolve(stdout)
    )
  )

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

export interface PrivateRedis {
  readonly port: number
  readonly dir: string
  readonly url: string
  /** Starts (or restarts, on the same port and directory) the server and waits until it answers. */
  readonly start: () => Promise<void>
  /** Kills the server at once (SIGKILL: no shutdown, nothing flushed that was not already). */
  readonly kill: () => Promise<void>
  /** Freezes (SIGSTOP) and resumes (SIGCONT) the server process. */
  readonly freeze: () => void
  readonly resume: () => void
  /** `redis-cli` against this server. */
  readonly cli: (...args: Array<string>) => Promise<string>
  /** Kills the server and removes its directory. */
  readonly stop: () => Promise<void>
}

/**
 * `privateRedis` starts a `redis-server` on a spare loopback port in a fresh directory, with extra arguments
 * (e.g. `["--appendonly", "yes", "--appendfsync", "always"]`).
 */
export const privateRedis = async (extra: ReadonlyArray<string> = []): Promise<PrivateRedis> => {
  const port = await sparePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-redis-"))
  let child: ChildProcess | undefined
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--daemonize",
    "no",
    ...extra
  ]
  const kill = async () => {
    const current = child
    if (current === undefined) return
    child = undefined
    if (current.exitCode === null && current.signalCode === null) {
      const exited = new Promise<void>((resolve) => current.once("exit", () => resolve()))
      current.kill("SIGKILL")
      await exited
    }
    running.delete(current)
  }
  const server: PrivateRedis = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    start: async () => {
      await kill()
      const started = spawn("redis-server", args, { stdio: "ignore" })
      running.add(started)
      child = started
      await waitFor(`redis-server on ${port}`, async () => (await cli(port, "ping")).trim() === "PONG")
    },
    kill,
    freeze: () => {
      child?.kill("SIGSTOP")
    },
    resume: () => {
      child?.kill("SIGCONT")
    },
    cli: (...a) => cli(port, ...a),
    stop: async () => {
      await kill()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  await server.start()
  return server
}

export interface TestCluster {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  readonly stop: () => Promise<void>
}

/** `startCluster` starts three `redis-server --cluster-enabled yes` on loopback and joins them as three masters. */
export const startCluster = async (): Promise<TestCluster> => {
  const servers: Array<PrivateRedis> = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  try {
    for (let i = 0; i < 3; i++) {
      servers.push(
        await privateRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--appendonly",
          "no"
        ])
      )
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`)
    await cli(servers[0].port, "--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes")
    for (const s of servers) {
      await waitFor("cluster_state:ok", async () => (await s.cli("cluster", "info")).includes("cluster_state:ok"))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { nodes: servers.map((s) => ({ host: "127.0.0.1", port: s.port })), stop }
}
