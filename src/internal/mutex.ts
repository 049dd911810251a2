/**
 * A mutex for session commits: uncontended, taking it costs a flag and an `ensuring`, less than an
 * `Effect.Semaphore` on a path every request takes. Contended, waiters queue in arrival
 * order and the lock is handed from one to the next without being released in between, so a newcomer
 * cannot overtake a waiter.
 *
 * Interruption: a waiter interrupted while queued leaves the queue; one interrupted after the lock was
 * handed to it passes the lock on. The body runs with the caller's interruptibility, and the lock is
 * released when it ends however it ends.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

export class Mutex {
  private held = false
  private readonly waiters: Array<() => void> = []

  /** `onIdle` runs each time the lock is released with nobody waiting. */
  constructor(private readonly onIdle?: () => void) {}

  private readonly unlock = (): void => {
    const next = this.waiters.shift()
    if (next !== undefined) {
      next()
      return
    }
    this.held = false
    if (this.onIdle !== undefined) this.onIdle()
  }

  private readonly release: Effect.Effect<void> = Effect.sync(this.unlock)

  /** `withLock` runs `self` holding the lock; callers run one at a time, in arrival order. */
  withLock<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Mutex.withLockOf(() => this, () => self)
  }

  /**
   * `withLockOf(mutex, body)` picks the mutex and builds the body inside the same uninterruptible step that
   * takes the lock, so nothing can interrupt between finding a mutex and holding (or queueing on) it; `body`
   * is built once the lock is held and told whether it had to wait for it.
   */
  static withLockOf<A, E, R>(
    mutex: () => Mutex,
    body: (waited: boolean) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => {
      const m = mutex()
      if (!m.held) {
        // Uncontended: take it and build the body now; one match frame releases it however the body ends.
        m.held = true
        let effect: Effect.Effect<A, E, R>
        try {
          effect = body(false)
        } catch (defect) {
          // a body that throws while being built must not keep the lock
          m.unlock()
          return Effect.die(defect)
        }
        return Effect.matchCauseEffect(restore(effect), {
          onSuccess: (a) => {
            m.unlock()
            return Effect.succeed(a)
          },
          onFailure: (cause) => {
            m.unlock()
            return Effect.failCause(cause)
          }
        })
      }
      const acquire = Effect.async<void>((resume) => {
        const waiter = () => resume(Effect.void)
        m.waiters.push(waiter)
        return Effect.sync(() => {
          const i = m.waiters.indexOf(waiter)
          // interrupted while queued: leave the queue; interrupted after the hand-off: pass the lock on
          if (i >= 0) m.waiters.splice(i, 1)
          else m.unlock()
        })
      })
      return Effect.zipRight(restore(acquire), Effect.ensuring(restore(Effect.suspend(() => body(true))), m.release))
    })
  }

  /** `acquireFree` takes the lock, which must be free (the caller checked `locked` in the same step). */
  acquireFree(): void {
    this.held = true
  }

  /** `releaseHeld` gives back a lock taken with `acquireFree`, handing it to the next waiter if any. */
  releaseHeld(): void {
    this.unlock()
  }

  /** Whether the lock is held (for tests). */
  get locked(): boolean {
    return this.held
  }
}
