/**
 * A store's `SessionIndex` from its two queries. The clock read, the span, the user's index key and the one
 * order of a list live here once; a store supplies only what it reads and what it deletes.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"
import type { SessionId } from "../SessionId.js"
import * as SessionIndex from "../SessionIndex.js"
import type * as StoreError from "../StoreError.js"
import * as Binding from "./binding.js"
import { withClockAndSpan } from "./tracing.js"

/** What a store runs for its index; `userKey` is `Binding.userKey(userId)`, `now` the `Clock`'s time. */
export interface Queries {
  /** The entries of the user's live sessions (`Binding.entryOf` of each), in any order. */
  readonly list: (
    userId: string,
    userKey: string,
    now: number
  ) => Effect.Effect<Array<SessionIndex.Entry>, StoreError.StoreError>
  /** Deletes the user's sessions but `except` and succeeds with the ids of the live ones it deleted. */
  readonly revokeIds: (
    userKey: string,
    except: SessionId | undefined,
    now: number
  ) => Effect.Effect<ReadonlyArray<SessionId>, StoreError.StoreError>
}

/** `make(store, options, queries)` is the index service, its calls in spans `<store>.index.list` / `.revoke`. */
export const make = (
  store: string,
  options: { readonly spans: boolean; readonly span: Tracer.SpanOptions },
  queries: Queries
): SessionIndex.Service => {
  const listName = `${store}.index.list`
  const revokeName = `${store}.index.revoke`
  return SessionIndex.make({
    list: (userId) =>
      withClockAndSpan(
        (now) =>
          Effect.map(queries.list(userId, Binding.userKey(userId), now), (entries) => entries.sort(Binding.byRecency)),
        options.spans,
        listName,
        options.span
      ),
    revokeIds: (userId, revokeOptions) =>
      withClockAndSpan(
        (now) => queries.revokeIds(Binding.userKey(userId), revokeOptions?.except, now),
        options.spans,
        revokeName,
        options.span
      )
  })
}
