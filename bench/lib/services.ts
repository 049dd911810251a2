/**
 * Where the benchmark's backends are, and the unique names a run uses on them (a table per store,
 * a Redis key prefix), so parallel runs and other users of the servers never see each other's data.
 * Every run removes what it created.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type { Redis } from "ioredis"
import { randomBytes } from "node:crypto"

export const services = {
  pg: {
    host: process.env.PGHOST ?? "127.0.0.1",
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? "postgres",
    database: process.env.PGDATABASE ?? "test"
  },
  redis: {
    host: process.env.REDIS_HOST ?? "127.0.0.1",
    port: Number(process.env.REDIS_PORT ?? 6379)
  },
  mysql: {
    host: process.env.MYSQL_HOST ?? "127.0.0.1",
    port: Number(process.env.MYSQL_PORT ?? 3306),
    user: process.env.MYSQL_USER ?? "root",
    database: process.env.MYSQL_DATABASE ?? "test"
  }
} as const

/** A name unique to this process and call: lower-case letters, digits and `_`, safe as a SQL identifier. */
export const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`

/** Size of the pg pool the bench gives every Postgres client (ours and the peers alike). */
export const PG_POOL_SIZE = 10

/** Removes every key under `prefix` with SCAN + UNLINK (never KEYS). */
export const unlinkPrefix = async (client: Redis, prefix: string): Promise<void> => {
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    if (keys.length > 0) await client.unlink(...keys)
    cursor = next
  } while (cursor !== "0")
}

/** `PgClient` on the benchmark's Postgres with a pool of `PG_POOL_SIZE`, as every Effect Postgres store here uses. */
export const pgClientLayer = PgClient.layer({
  host: services.pg.host,
  port: services.pg.port,
  username: services.pg.user,
  database: services.pg.database,
  maxConnections: PG_POOL_SIZE
})
