/**
 * Memory: what 100,000 sessions of ~300 B cost in an in-process store, in heap bytes after a GC.
 *
 * Each store is measured in its own process (`node --expose-gc --import tsx bench/memory.ts <store>`):
 * the store is built and warmed up (1,000 sessions created and deleted, so code and runtime caches are
 * not counted), the heap is measured after two full GCs, then the sessions are created — their ids
 * drawn inside the measured window, since a store holds its keys — the benchmark drops every reference
 * of its own, and the heap is measured again after two full GCs. The difference is the sessions' cost.
 * The budget is 2 × the sessions' JSON bytes + 300 B per session.
 *
 * Stores: `memory` (our MemoryStore), `lru` (our LruStore, sized for them), `express` (express-session's
 * MemoryStore, which keeps each session as a JSON string with its cookie, for comparison).
 * The parent gets `{ type: "memory", row }` over IPC; run alone, it prints the row.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import session from "express-session"
import * as LruStore from "../src/LruStore.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionToken from "../src/SessionToken.js"
import type * as StoreError from "../src/StoreError.js"
import { toParent } from "./lib/child.js"
import type { MemoryRow } from "./lib/results.js"
import { expiresAt, sessionData } from "./lib/workload.js"

export const MEMORY_SESSIONS = 100_000
const WARMUP = 1_000

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run with node --expose-gc")
  collect()
  collect()
}

interface Subject {
  readonly name: string
  readonly kind: MemoryRow["kind"]
  readonly create: (id: string, index: number) => Promise<void>
  readonly remove: (id: string) => Promise<void>
  readonly close: () => Promise<void>
}

const effectStore = async (
  name: string,
  layer: Layer.Layer<SessionStore.SessionStore, StoreError.StoreConfigError>
): Promise<Subject> => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const store = Context.get(context, SessionStore.SessionStore)
  const now = Date.now()
  return {
    name,
    kind: "ours",
    create: (id, index) =>
      Effect.runPromise(
        Effect.asVoid(
          store.create({
            id: id as SessionId.SessionId,
            data: sessionData(index, 0),
            expiresAt: expiresAt(now),
            version: 1
          })
        )
      ),
    remove: (id) => Effect.runPromise(store.delete(id as SessionId.SessionId)),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const expressStore = (): Subject => {
  const store = new session.MemoryStore()
  const expires = new Date(expiresAt(Date.now()))
  return {
    name: "express-session MemoryStore",
    kind: "peer",
    create: (id, index) =>
      new Promise((resolve, reject) =>
        store.set(
          id,
          {
            cookie: { originalMaxAge: 3_600_000, expires, httpOnly: true, path: "/" },
            ...sessionData(index, 0)
          } as never,
          (error) => (error ? reject(error) : resolve())
        )
      ),
    remove: (id) => new Promise((resolve) => store.destroy(id, () => resolve())),
    close: async () => {}
  }
}

const subject = (which: string): Promise<Subject> | Subject => {
  switch (which) {
    case "memory":
      return effectStore("MemoryStore", MemoryStore.layer())
    case "lru":
      return effectStore("LruStore", LruStore.layer({ maxEntries: MEMORY_SESSIONS }))
    case "express":
      return expressStore()
    default:
      throw new Error(`unknown store ${which}: memory, lru or express`)
  }
}

export const measure = async (which: string, sessions: number): Promise<MemoryRow> => {
  const s = await subject(which)
  const newId = () => SessionId.fromToken(SessionToken.unsafeGenerate()) as string
  for (let i = 0; i < WARMUP; i++) {
    const id = newId()
    await s.create(id, i)
    await s.remove(id)
  }
  let jsonBytes = 0
  for (let i = 0; i < sessions; i++) jsonBytes += Buffer.byteLength(JSON.stringify(sessionData(i, 0)))
  gc()
  const before = process.memoryUsage()
  for (let i = 0; i < sessions; i++) await s.create(newId(), i)
  gc()
  const after = process.memoryUsage()
  const heapBytes = after.heapUsed - before.heapUsed
  const row: MemoryRow = {
    name: s.name,
    kind: s.kind,
    sessions,
    jsonBytes,
    heapBytes,
    rssBytes: after.rss - before.rss,
    heapPerSession: heapBytes / sessions,
    budgetBytes: 2 * jsonBytes + 300 * sessions
  }
  await s.close()
  return row
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const which = process.argv[2] ?? "memory"
  const row = await measure(which, Number(process.env.BENCH_MEMORY_SESSIONS ?? MEMORY_SESSIONS))
  if (process.send !== undefined) toParent({ type: "memory", row })
  else console.log(row)
  process.exit(0)
}
