/**
 * Test support for Redis: private `redis-server`s on spare loopback ports (for tests that stop or freeze a
 * server), a throw-away 3-master Redis Cluster, unique key prefixes and their clean-up with SCAN + UNLINK.
 *
 * Every server started here is killed by `stop()`, and, should a test die before its `afterAll`, when the
 * test process exits.
 */
import { assert } from "@effect/vitest"
import { Clock, Effect, Either, type Layer } from "effect"
import {
  Session,
  SessionData,
  SessionId,
  type SessionRecord,
  SessionStore,
  SessionToken,
  type StoreError
} from "effect-sessions"
import type { Redis } from "ioredis"
import { Cluster } from "ioredis"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { shiftClock } from "./services.js"

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

/** Walks every key under `prefix` with SCAN (on each master of a cluster), a page at a time. */
const scanPrefix = async (
  client: Redis | Cluster,
  prefix: string,
  onPage: (node: Redis, keys: ReadonlyArray<string>) => Promise<void>
): Promise<void> => {
  const nodes = client instanceof Cluster ? client.nodes("master") : [client]
  for (const node of nodes) {
    let cursor = "0"
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await onPage(node, keys)
    } while (cursor !== "0")
  }
}

/** Deletes every key under `prefix` with SCAN + UNLINK. Returns the count. */
export const deletePrefix = async (client: Redis | Cluster, prefix: string): Promise<number> => {
  let deleted = 0
  await scanPrefix(client, prefix, async (node, keys) => {
    for (const key of keys) deleted += await node.unlink(key)
  })
  return deleted
}

/** Counts the keys under `prefix` (SCAN). */
export const countPrefix = async (client: Redis | Cluster, prefix: string): Promise<number> => {
  let count = 0
  await scanPrefix(client, prefix, async (_, keys) => {
    count += keys.length
  })
  return count
}

/** A live `Clock` running `shiftMs` ahead of the real one. */
export const shiftedClock = (shiftMs: number): Clock.Clock => shiftClock(Clock.make(), shiftMs)

/** A fresh version-1 record with the given data, expiring `ttlMs` after the real clock's now. */
export const freshRecord = (
  data: Record<string, SessionData.JsonValue>,
  ttlMs = 60_000
): SessionRecord.SessionRecord => ({
  id: SessionId.fromToken(SessionToken.unsafeGenerate()),
  data: SessionData.fromEntries(Object.entries(data)),
  expiresAt: Date.now() + ttlMs,
  version: 1
})

/**
 * `race` runs `attempt(i)` for every i below `n` all at once and succeeds with the indexes that
 * succeeded and the distinct reasons of those that failed.
 */
export const race = <A>(
  n: number,
  attempt: (i: number) => Effect.Effect<A, StoreError.StoreError>
): Effect.Effect<{ readonly winners: ReadonlyArray<number>; readonly reasons: ReadonlyArray<StoreError.Reason> }> =>
  Effect.map(
    Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => Effect.either(attempt(i)), {
      concurrency: "unbounded"
    }),
    (results) => ({
      winners: results.flatMap((r, i) => (Either.isRight(r) ? [i] : [])),
      reasons: [...new Set(results.flatMap((r) => (Either.isLeft(r) ? [r.left.reason] : [])))]
    })
  )

/**
 * `unreachable(makeLayer)` builds the layer against a spare loopback port where nothing listens and asserts
 * that construction fails with `Unavailable` from `connect` within 10 s; it succeeds with that error.
 */
export const unreachable = (
  makeLayer: (
    port: number
  ) => Layer.Layer<SessionStore.SessionStore, StoreError.StoreError | StoreError.StoreConfigError>
): Effect.Effect<StoreError.StoreError> =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => sparePort())
    const started = Date.now()
    const error = yield* Effect.flip(Effect.provide(SessionStore.SessionStore, makeLayer(port))).pipe(
      Effect.catchAll(() => Effect.dieMessage("the layer was built against a port where nothing listens"))
    )
    assert.strictEqual(error._tag, "StoreError")
    if (error._tag !== "StoreError") return yield* Effect.dieMessage("the layer refused its options")
    assert.strictEqual(error.reason, "Unavailable")
    assert.strictEqual(error.method, "connect")
    assert.isBelow(Date.now() - started, 10_000)
    return error
  })

/** Data bound to `userId` as the middleware stores it (`Session.bindUser`). */
export const boundData = (userId: string, extra: Record<string, SessionData.JsonValue> = {}): SessionData.SessionData =>
  SessionData.fromEntries([
    ...Object.entries(extra),
    [Session.META_KEY, { createdAt: 1, user: { id: userId, authenticatedAt: 2 }, refreshedAt: 3 }]
  ])

/** A fresh user id. */
export const freshUser = (): string => `user-${SessionToken.unsafeGenerate().slice(0, 16)}`
