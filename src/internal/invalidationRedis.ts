/**
 * The Redis transport of the invalidation channel: `PUBLISH` on the store's kind of fail-fast connection (its
 * `commandTimeout` is the channel's `publishTimeout`, so ioredis bounds every publish), and
 * a subscription on a connection of its own that never reconnects by itself, so that every lost subscription
 * is seen (the channel subscribes again, and its caches drop what they held). On a Cluster the subscription is
 * a plain connection to one node: a `PUBLISH` on any node of a Redis Cluster reaches the subscribers of every
 * node.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Redis } from "ioredis"
import type { Cluster, RedisOptions } from "ioredis"
import * as StoreError from "../StoreError.js"
import type { Transport } from "./invalidation.js"
import { toStoreError, writeBatcher } from "./redis.js"

/** The default channel name. */
export const DEFAULT_CHANNEL = "effect-sessions:invalidation"

/** Settings of a subscriber connection: no reconnection and no resubscription behind the channel's back. */
export const subscriberOptions = (connectTimeout: number): RedisOptions => ({
  lazyConnect: true,
  retryStrategy: () => null,
  autoResubscribe: false,
  maxRetriesPerRequest: 0,
  connectTimeout
})

/**
 * `transport(publisher, channel, openSubscriber)`: publishes on `publisher`; each subscription opens a fresh
 * connection with `openSubscriber(attempt)` and ends with an `Unavailable` failure when that connection closes.
 */
export const transport = (
  publisher: Redis | Cluster,
  channel: string,
  openSubscriber: (attempt: number) => Redis
): Transport => {
  let attempt = 0
  // the publishes of one turn leave in one write, as the store's own commands do
  const beforeSend = publisher instanceof Redis ? writeBatcher(publisher) : undefined
  return {
    publish: (payload) =>
      Effect.async<void, StoreError.StoreError>((resume) => {
        try {
          beforeSend?.()
          publisher.publish(channel, payload).then(
            () => resume(Effect.void),
            (error: unknown) => resume(Effect.fail(toStoreError("publish", error)))
          )
        } catch (error) {
          resume(Effect.fail(toStoreError("publish", error)))
        }
      }),
    messages: Stream.asyncScoped<string, StoreError.StoreError>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = openSubscriber(attempt++)
          let lastError: unknown = undefined
          client.on("message", (from: string, message: string) => {
            if (from === channel) void emit.single(message)
          })
          // kept for the failure the close reports; the channel logs the lost subscription
          client.on("error", (error: unknown) => {
            lastError = error
          })
          client.on("close", () => {
            void emit.fail(
              lastError === undefined
                ? StoreError.make("Unavailable", "subscribe")
                : toStoreError("subscribe", lastError)
            )
          })
          client.connect().then(() => client.subscribe(channel)).catch((error: unknown) => {
            void emit.fail(toStoreError("subscribe", error))
          })
          return client
        }),
        (client) => Effect.sync(() => client.disconnect())
      )
    )
  }
}
