/**
 * Test support for the cross-process invalidation tests: app instances (`instance.ts`), each in its own Node
 * process with its own connections, driven over IPC. Every instance started here is killed when the test
 * process exits, should a test die before stopping it.
 */
import { Effect, Option } from "effect"
import type { SessionId, SessionRecord } from "effect-sessions"
import { SessionData } from "effect-sessions"
import { type ChildProcess, fork } from "node:child_process"
import * as path from "node:path"
import type { Op, Result, WireRecord } from "./instance.js"

const root = path.resolve(import.meta.dirname, "../..")

const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

export interface InstanceConfig {
  readonly store: "redis" | "pg"
  readonly channel: "redis" | "pg"
  /** The channel's Redis (for `channel: "redis"`). */
  readonly redisUrl?: string
  readonly keyPrefix?: string
  readonly table?: string
  readonly channelName: string
  readonly maxStalenessMs: number
}

/** An event of the instance's channel, as it reported it after its caching store had applied it. */
export interface Received {
  readonly tag: "Invalidated" | "InvalidatedAll" | "Connected" | "Disconnected"
  readonly ids: ReadonlyArray<string>
}

export interface Instance {
  readonly instanceId: string
  readonly create: (record: SessionRecord.SessionRecord) => Effect.Effect<Reply>
  readonly save: (record: SessionRecord.SessionRecord) => Effect.Effect<Reply>
  readonly load: (id: SessionId.SessionId) => Effect.Effect<Reply>
  readonly delete: (id: SessionId.SessionId) => Effect.Effect<Reply>
  /** Every event received so far. */
  readonly received: () => ReadonlyArray<Received>
  /** Waits until an event at or after index `from` matches `match`, and succeeds with its index. */
  readonly receipt: (match: (event: Received) => boolean, from?: number) => Effect.Effect<number>
  /** Stops the instance (closing its layers) and waits for it to exit. */
  readonly stop: () => Promise<void>
}

export interface Reply {
  readonly record: Option.Option<SessionRecord.SessionRecord>
  readonly error: string | null
  readonly storeLoads: number
}

const toWire = (record: SessionRecord.SessionRecord): WireRecord => ({
  id: record.id,
  data: { ...record.data },
  expiresAt: record.expiresAt,
  version: record.version
})

const fromWire = (record: WireRecord | null): Option.Option<SessionRecord.SessionRecord> =>
  record === null ? Option.none() : Option.some({
    id: record.id as SessionId.SessionId,
    data: SessionData.fromEntries(Object.entries(record.data) as Array<[string, SessionData.JsonValue]>),
    expiresAt: record.expiresAt,
    version: record.version
  })

/** `startInstance(config)` starts an instance and resolves once its channel is connected. */
export const startInstance = (config: InstanceConfig): Promise<Instance> =>
  new Promise((resolve, reject) => {
    const child = fork(path.join(root, "test/support/instance.ts"), [], {
      cwd: root,
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        INSTANCE_STORE: config.store,
        INSTANCE_CHANNEL: config.channel,
        INSTANCE_REDIS_URL: config.redisUrl ?? "",
        INSTANCE_KEY_PREFIX: config.keyPrefix ?? "",
        INSTANCE_TABLE: config.table ?? "",
        INSTANCE_CHANNEL_NAME: config.channelName,
        INSTANCE_MAX_STALENESS_MS: String(config.maxStalenessMs)
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    running.add(child)
    const exited = new Promise<void>((done) =>
      child.once("exit", () => {
        running.delete(child)
        done()
      })
    )
    const pending = new Map<number, (result: Result) => void>()
    const received: Array<Received> = []
    const waiters = new Set<() => void>()
    let n = 0
    child.on("message", (raw) => {
      const message = raw as { readonly type: string }
      if (message.type === "ready") {
        resolve(instance((message as unknown as { readonly instanceId: string }).instanceId))
      } else if (message.type === "result") {
        const result = message as Result
        pending.get(result.n)?.(result)
        pending.delete(result.n)
      } else if (message.type === "event") {
        received.push(message as unknown as Received)
        for (const wake of Array.from(waiters)) wake()
      }
    })
    void exited.then(() => reject(new Error("the instance exited before it was ready")))

    const call = (op: Op): Effect.Effect<Reply> =>
      Effect.async<Reply>((resume) => {
        const id = ++n
        pending.set(id, (result) =>
          resume(Effect.succeed({
            record: fromWire(result.record),
            error: result.error,
            storeLoads: result.storeLoads
          })))
        child.send({ type: "op", n: id, ...op })
      })

    const instance = (instanceId: string): Instance => ({
      instanceId,
      create: (record) => call({ op: "create", record: toWire(record) }),
      save: (record) => call({ op: "save", record: toWire(record) }),
      load: (id) => call({ op: "load", id }),
      delete: (id) => call({ op: "delete", id }),
      received: () => received,
      receipt: (match, from = 0) =>
        Effect.async<number>((resume) => {
          const check = () => {
            const index = received.findIndex((event, i) => i >= from && match(event))
            if (index < 0) return false
            waiters.delete(wake)
            resume(Effect.succeed(index))
            return true
          }
          const wake = () => {
            check()
          }
          if (!check()) waiters.add(wake)
          return Effect.sync(() => waiters.delete(wake))
        }),
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.send({ type: "stop" })
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
          await exited
          clearTimeout(timer)
        }
      }
    })
  })

/** `instances(configs)` starts instances for the life of the scope. */
export const instances = (
  ...configs: ReadonlyArray<InstanceConfig>
) =>
  Effect.acquireRelease(
    Effect.promise(() => Promise.all(configs.map(startInstance))),
    (started) => Effect.promise(() => Promise.all(started.map((i) => i.stop())))
  )

/** `invalidatedId(id)` matches an `Invalidated` event naming `id`. */
export const invalidatedId = (id: string) => (event: Received): boolean =>
  event.tag === "Invalidated" && event.ids.includes(id)
