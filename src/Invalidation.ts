/**
 * An invalidation channel between app instances that share a persistent store: every write one instance's
 * `CachingStore` makes is announced (the `SessionId`s, never tokens) once it is durable, and every other
 * instance evicts those sessions from its cache, so a logout or a revocation is seen everywhere within a
 * message's trip instead of within `maxStaleness`.
 *
 * Channels run on existing engines: Redis pub/sub (`RedisStore.layerInvalidation`,
 * `RedisStore.layerInvalidationCluster`, whatever the persistent store is) and PostgreSQL `LISTEN`/`NOTIFY`
 * (`SqlStore.layerInvalidation`, through `@effect/sql-pg`). Give one to `CachingStore.layer` as its
 * `invalidation` option.
 *
 * What a channel guarantees, and what it does not:
 * - `maxStaleness` stays the hard bound: a lost message, a dead channel or a slow one never makes an instance
 *   serve a cached entry for longer.
 * - The channel knows whether its subscription works: it publishes a heartbeat on the channel and expects it
 *   back. Until it is back, and from the moment the connection is lost (at once when the connection closes,
 *   within `heartbeatTimeout` when it goes silent), subscribers get `Disconnected`; a caching store then serves
 *   nothing from its cache, and drops everything it held once `Connected` comes again.
 * - An instance's own announcements are not delivered back to it.
 *
 * @example
 * ```ts
 * import { CachingStore, LruStore } from "effect-sessions"
 * import * as RedisStore from "effect-sessions/RedisStore"
 * import * as SqlStore from "effect-sessions/SqlStore"
 *
 * const Sessions = CachingStore.layer({
 *   cache: LruStore.layer(),
 *   store: SqlStore.layer(),
 *   invalidation: RedisStore.layerInvalidation()
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { SessionId } from "./SessionId.js"

/**
 * What a subscriber hears.
 *
 * - `Invalidated`: another instance wrote (or removed) these sessions.
 * - `InvalidatedAll`: another instance removed sessions it cannot name (a run of `deleteExpired`).
 * - `Connected`: the subscription works (its heartbeat came back); announcements made from now on arrive.
 * - `Disconnected`: the subscription is lost; announcements may be missed until the next `Connected`.
 *
 * @since 0.1.0
 */
export type Event =
  | { readonly _tag: "Invalidated"; readonly ids: ReadonlyArray<SessionId> }
  | { readonly _tag: "InvalidatedAll" }
  | { readonly _tag: "Connected" }
  | { readonly _tag: "Disconnected" }

/**
 * The channel service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** A random id of this channel instance; messages carry it so that an instance skips its own. */
  readonly instanceId: string
  /**
   * `announce(ids)` tells the other instances that these sessions changed; call it after the write is durable.
   * It waits for one round of publishes (ids in batches of `MAX_IDS_PER_MESSAGE`, sent at once) and never fails:
   * a failed or timed-out publish is logged, and the others fall back to `maxStaleness`.
   */
  readonly announce: (ids: ReadonlyArray<SessionId>) => Effect.Effect<void>
  /** `announceAll` tells the other instances to drop every cached session (after removals it cannot name). */
  readonly announceAll: Effect.Effect<void>
  /**
   * `subscribe(listener)` calls `listener` synchronously with every event, in the order events arrive, for the
   * life of the scope. It is called at once with `Connected` or `Disconnected` (the current state). A listener
   * that throws is logged and kept.
   */
  readonly subscribe: (listener: (event: Event) => void) => Effect.Effect<void, never, Scope.Scope>
  /** `connected` is whether the subscription works now. */
  readonly connected: Effect.Effect<boolean>
}

/**
 * The invalidation channel.
 *
 * @since 0.1.0
 */
export class Invalidation extends Context.Tag("effect-sessions/Invalidation")<Invalidation, Service>() {}

/**
 * Most session ids one message carries (43 characters each; PostgreSQL's `NOTIFY` payload stops at 8,000 bytes).
 *
 * @since 0.1.0
 */
export const MAX_IDS_PER_MESSAGE = 150

/**
 * Options every channel takes.
 *
 * @since 0.1.0
 */
export interface ChannelOptions {
  /** How often the channel checks its subscription with a heartbeat through the server. Default 1 second. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /**
   * How long the subscription may stay silent (no heartbeat back) before it counts as lost and is made again.
   * Default 3 seconds. Warning: a connection that hangs without closing is noticed only this late; until then
   * its caches are trusted, still within `maxStaleness`.
   */
  readonly heartbeatTimeout?: Duration.DurationInput | undefined
  /** How long one publish may take before it is given up (and logged). Default 2 seconds. */
  readonly publishTimeout?: Duration.DurationInput | undefined
  /** How long building the layer waits for the first working subscription before it fails. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * The default heartbeat interval: 1 second.
 *
 * @since 0.1.0
 */
export const DEFAULT_HEARTBEAT: Duration.Duration = Duration.seconds(1)

/**
 * The default heartbeat timeout: 3 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_HEARTBEAT_TIMEOUT: Duration.Duration = Duration.seconds(3)

/**
 * The default publish timeout: 2 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_PUBLISH_TIMEOUT: Duration.Duration = Duration.seconds(2)

/**
 * The default connect timeout: 5 seconds.
 *
 * @since 0.1.0
 */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)
