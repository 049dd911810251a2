/**
 * The peer app: the same two routes on express 5 + express-session 1.18, with its MemoryStore,
 * connect-redis 7 (over ioredis) or connect-pg-simple (over a `pg` pool), configured the way its
 * docs recommend for a counter (`resave: false`, `saveUninitialized: false`) and with the same
 * 4-second inactivity expiry as the Effect app (`cookie.maxAge`). Store writes (`set` + `touch`)
 * and reads (`get`) are counted by wrapping the store.
 */
import pgSession from "connect-pg-simple"
import ConnectRedis from "connect-redis"
import express from "express"
import session from "express-session"
import { Redis } from "ioredis"
import type { Server as HttpServer } from "node:http"
import type { AddressInfo } from "node:net"
import pg from "pg"
import { PG_POOL_SIZE, services, uniqueName, unlinkPrefix } from "../lib/services.js"
import type { Server, Variant } from "./variants.js"

declare module "express-session" {
  interface SessionData {
    n: number
  }
}

const INACTIVITY_MS = 4_000

interface Backend {
  readonly store: session.Store | undefined
  readonly close: () => Promise<void>
}

const backend = async (store: Variant["store"]): Promise<Backend> => {
  switch (store) {
    case "none":
      return { store: undefined, close: async () => {} }
    case "memory":
      return { store: new session.MemoryStore(), close: async () => {} }
    case "redis": {
      const client = new Redis({ ...services.redis, lazyConnect: true })
      await client.connect()
      const prefix = `${uniqueName("bench")}:`
      return {
        store: new ConnectRedis({ client, prefix }),
        close: async () => {
          await unlinkPrefix(client, prefix)
          await client.quit()
        }
      }
    }
    case "pg": {
      const pool = new pg.Pool({ ...services.pg, max: PG_POOL_SIZE })
      const table = uniqueName("bench_cps")
      await createPgSimpleTable(pool, table)
      const PgStore = pgSession(session)
      const store = new PgStore({ pool, tableName: table, pruneSessionInterval: false })
      return {
        store,
        close: async () => {
          // requests still in flight when the server closed finish their queries first
          const deadline = Date.now() + 5_000
          while (pool.idleCount < pool.totalCount && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
          await pool.query(`DROP TABLE IF EXISTS "${table}"`)
          await pool.end()
        }
      }
    }
    default:
      throw new Error(`express-session has no ${store} store in this benchmark`)
  }
}

/** connect-pg-simple's own table.sql, with the table and index names made unique to this run. */
export const createPgSimpleTable = async (pool: pg.Pool, table: string): Promise<void> => {
  await pool.query(
    `CREATE TABLE "${table}" ("sid" varchar NOT NULL COLLATE "default" PRIMARY KEY, "sess" json NOT NULL, "expire" timestamp(6) NOT NULL)`
  )
  await pool.query(`CREATE INDEX "${table}_expire" ON "${table}" ("expire")`)
}

const countCalls = (store: session.Store, counts: { writes: number; reads: number }): void => {
  const s = store as session.Store & Record<"get" | "set" | "touch", (...args: Array<unknown>) => unknown>
  for (const method of ["get", "set", "touch"] as const) {
    const original = s[method]
    if (typeof original !== "function") continue
    s[method] = function(this: unknown, ...args: Array<unknown>) {
      if (method === "get") counts.reads++
      else counts.writes++
      return original.apply(this, args)
    }
  }
}

export const start = async (variant: Variant): Promise<Server> => {
  const counts = { writes: 0, reads: 0 }
  const { close, store } = await backend(variant.store)
  const app = express()
  let plain = 0
  if (store === undefined) {
    app.get("/count", (_req, res) => {
      plain++
      res.send(String(plain))
    })
    app.get("/read", (_req, res) => {
      res.send(String(plain))
    })
  } else {
    countCalls(store, counts)
    app.use(session({
      store,
      secret: "effect-sessions benchmark secret, not a real one",
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: INACTIVITY_MS, httpOnly: true, sameSite: "lax" }
    }))
    app.get("/count", (req, res) => {
      const n = (req.session.n ?? 0) + 1
      req.session.n = n
      res.send(String(n))
    })
    app.get("/read", (req, res) => {
      res.send(String(req.session.n ?? 0))
    })
  }
  const server = await new Promise<HttpServer>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s))
  })
  return {
    port: (server.address() as AddressInfo).port,
    counts: () => ({ ...counts }),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await close()
    }
  }
}
