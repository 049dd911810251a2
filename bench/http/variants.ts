/**
 * The HTTP variants: the same app (a `/count` route incrementing a counter in the session, a `/read`
 * route reading it) on Effect with effect-sessions and on express with express-session, per store.
 */
import type { Kind } from "../lib/results.js"

export type StoreName = "none" | "memory" | "redis" | "pg" | "caching"

export interface Variant {
  readonly id: string
  readonly name: string
  readonly framework: "effect" | "express"
  readonly store: StoreName
  readonly kind: Kind
  /** Routes this variant is measured on. */
  readonly routes: ReadonlyArray<"count" | "read">
}

/** A running server, in the child process. */
export interface Server {
  readonly port: number
  /** Store calls so far: writes (create + save; express-session set + touch) and reads (load; get). */
  readonly counts: () => { readonly writes: number; readonly reads: number }
  readonly close: () => Promise<void>
}

export const variants: ReadonlyArray<Variant> = [
  {
    id: "effect-none",
    name: "Effect, no sessions",
    framework: "effect",
    store: "none",
    kind: "baseline",
    routes: ["count"]
  },
  {
    id: "effect-memory",
    name: "Effect + MemoryStore",
    framework: "effect",
    store: "memory",
    kind: "ours",
    routes: ["count", "read"]
  },
  {
    id: "effect-redis",
    name: "Effect + RedisStore",
    framework: "effect",
    store: "redis",
    kind: "ours",
    routes: ["count", "read"]
  },
  {
    id: "effect-pg",
    name: "Effect + SqlStore (Postgres)",
    framework: "effect",
    store: "pg",
    kind: "ours",
    routes: ["count", "read"]
  },
  {
    id: "effect-caching",
    name: "Effect + CachingStore (Lru over Postgres)",
    framework: "effect",
    store: "caching",
    kind: "ours",
    routes: ["count", "read"]
  },
  {
    id: "express-none",
    name: "express, no sessions",
    framework: "express",
    store: "none",
    kind: "baseline",
    routes: ["count"]
  },
  {
    id: "express-memory",
    name: "express-session + MemoryStore",
    framework: "express",
    store: "memory",
    kind: "peer",
    routes: ["count", "read"]
  },
  {
    id: "express-redis",
    name: "express-session + connect-redis",
    framework: "express",
    store: "redis",
    kind: "peer",
    routes: ["count", "read"]
  },
  {
    id: "express-pg",
    name: "express-session + connect-pg-simple",
    framework: "express",
    store: "pg",
    kind: "peer",
    routes: ["count", "read"]
  }
]
