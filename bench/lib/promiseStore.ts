/**
 * Drives an express-session `Store` (connect-redis, connect-pg-simple, its MemoryStore) with the
 * store-level plan: each call goes through the store's own `get` / `set` callbacks, wrapped in a
 * Promise, one async worker per lane (`runPromise`), after the plan's sessions are seeded with `set`.
 *
 * express-session always stores the cookie inside the session, so the object the peers store is
 * `sessionData(index, write)` plus express-session's `cookie` field (about 90 bytes more).
 */
import type { SessionData as ExpressSessionData, Store } from "express-session"
import type { Plan, PromiseOps, Stats } from "./workload.js"
import { expiresAt, runPromise, sessionData } from "./workload.js"

const session = (index: number, write: number): ExpressSessionData => {
  const expires = expiresAt(Date.now())
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(expires), httpOnly: true, path: "/" },
    ...sessionData(index, write)
  } as unknown as ExpressSessionData
}

const get = (store: Store, sid: string): Promise<unknown> =>
  new Promise((resolve, reject) =>
    store.get(sid, (error, data) => {
      if (error !== null && error !== undefined) reject(error)
      else if (data === null || data === undefined) reject(new Error("session missing"))
      else resolve(data)
    })
  )

const set = (store: Store, sid: string, data: ExpressSessionData): Promise<void> =>
  new Promise((resolve, reject) =>
    store.set(sid, data, (error) => {
      if (error !== null && error !== undefined) reject(error)
      else resolve()
    })
  )

/** Runs `task(i)` for i in [0, count) with `concurrency` in flight. */
export const forEachConcurrent = async (
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>
): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await task(next++)
  }))
}

/** Seeds the plan's sessions into an express-session store, then runs the plan through `get` / `set`. */
export const runExpressStore = async (name: string, plan: Plan, store: Store): Promise<Stats> => {
  await forEachConcurrent(plan.ids.length, plan.options.concurrency, (i) => set(store, plan.ids[i], session(i, 0)))
  const ops: PromiseOps = {
    load: (index) => get(store, plan.ids[index]),
    save: (index, write) => set(store, plan.ids[index], session(index, write))
  }
  return runPromise(name, plan, ops)
}
