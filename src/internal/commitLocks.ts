/**
 * Per-session commit locks of one middleware instance.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as SessionId from "../SessionId.js"
import type * as SessionRecord from "../SessionRecord.js"
import { Mutex } from "./mutex.js"

export interface LockEntry {
  readonly mutex: Mutex
  /** The last record a commit under this lock saved, while others wait: their base when it is newer. */
  latest: SessionRecord.SessionRecord | undefined
}

/**
 * Commits of one session inside one process take turns, and each starts from the record the previous one
 * saved: concurrent requests of one browser then merge without a single `Conflict`. Across processes the
 * store's compare-and-set and the reload-and-retry loop do the work. An entry lives only while a commit of
 * its session is running or waiting: it goes when its mutex is released with nobody waiting.
 */
export class CommitLocks {
  private readonly entries = new Map<SessionId.SessionId, LockEntry>()

  /** `with(id, f)` runs `f` holding the lock of session `id`; `waited` tells whether it had to wait for it. */
  with<A, E>(
    id: SessionId.SessionId,
    f: (entry: LockEntry, waited: boolean) => Effect.Effect<A, E>
  ): Effect.Effect<A, E> {
    let entry: LockEntry | undefined
    return Mutex.withLockOf(() => {
      entry = this.entries.get(id)
      if (entry === undefined) {
        const created: LockEntry = {
          mutex: new Mutex(() => {
            if (this.entries.get(id) === created) this.entries.delete(id)
          }),
          latest: undefined
        }
        this.entries.set(id, created)
        entry = created
      }
      return entry.mutex
    }, (waited) => f(entry!, waited))
  }

  /** The number of sessions with a commit running or waiting (for tests). */
  get size(): number {
    return this.entries.size
  }
}
