/**
 * When a session ends.
 *
 * - `OnSessionEnd`: the cookie is a browser-session cookie (no `Max-Age`); the
 *   store keeps the record for a configured lifetime (default 14 days).
 * - `OnInactivity({ duration })`: the session ends after `duration` without a
 *   request; it slides forward as requests arrive.
 * - `AtDateTime({ at })`: the session ends at a fixed instant (epoch milliseconds).
 *
 * An optional absolute lifetime, counted from the session's creation, caps any of them.
 *
 * @example
 * ```ts
 * import { Expiry } from "effect-sessions"
 *
 * const expiry = Expiry.OnInactivity("30 minutes")
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/**
 * The expiry of a session.
 *
 * @since 0.1.0
 */
export type Expiry = Data.TaggedEnum<{
  OnSessionEnd: {}
  OnInactivity: { readonly duration: Duration.Duration }
  AtDateTime: { readonly at: number }
}>

const ctor = Data.taggedEnum<Expiry>()

/**
 * `match` folds an expiry by its kind.
 *
 * @since 0.1.0
 */
export const match = <A>(
  expiry: Expiry,
  cases: {
    readonly OnSessionEnd: () => A
    readonly OnInactivity: (expiry: Extract<Expiry, { readonly _tag: "OnInactivity" }>) => A
    readonly AtDateTime: (expiry: Extract<Expiry, { readonly _tag: "AtDateTime" }>) => A
  }
): A => {
  switch (expiry._tag) {
    case "OnSessionEnd":
      return cases.OnSessionEnd()
    case "OnInactivity":
      return cases.OnInactivity(expiry)
    case "AtDateTime":
      return cases.AtDateTime(expiry)
  }
}

/**
 * `OnSessionEnd` ends the session when the browser session ends (no `Max-Age` on the cookie).
 *
 * @since 0.1.0
 */
export const OnSessionEnd: Expiry = ctor.OnSessionEnd()

/**
 * `OnInactivity(duration)` ends the session after `duration` without a request.
 *
 * @since 0.1.0
 */
export const OnInactivity = (duration: Duration.DurationInput): Expiry =>
  ctor.OnInactivity({ duration: Duration.decode(duration) })

/**
 * `AtDateTime(at)` ends the session at a fixed instant.
 *
 * @since 0.1.0
 */
export const AtDateTime = (at: Date | number): Expiry =>
  ctor.AtDateTime({ at: typeof at === "number" ? at : at.getTime() })

/**
 * The default store lifetime of an `OnSessionEnd` session: 14 days.
 *
 * @since 0.1.0
 */
export const DEFAULT_SESSION_END_LIFETIME: Duration.Duration = Duration.days(14)

/**
 * `expiresAt` is the instant (epoch ms) a session with this expiry ends when touched at `now`,
 * capped by `absoluteDeadline` when one is given.
 *
 * @since 0.1.0
 */
export const expiresAt = (
  expiry: Expiry,
  now: number,
  options?: {
    readonly sessionEndLifetime?: Duration.DurationInput | undefined
    readonly absoluteDeadline?: number | undefined
  }
): number => {
  let at: number
  switch (expiry._tag) {
    case "OnSessionEnd":
      at = now + Duration.toMillis(options?.sessionEndLifetime ?? DEFAULT_SESSION_END_LIFETIME)
      break
    case "OnInactivity":
      at = now + Duration.toMillis(expiry.duration)
      break
    case "AtDateTime":
      at = expiry.at
      break
  }
  const deadline = options?.absoluteDeadline
  return deadline !== undefined && deadline < at ? deadline : Math.floor(at)
}

/**
 * `maxAgeSeconds` is the cookie `Max-Age` for a session ending at `expiresAt`, seen at `now`:
 * `floor((expiresAt - now) / 1000)`, never below 0; `undefined` for `OnSessionEnd` (a browser-session cookie).
 *
 * @since 0.1.0
 */
export const maxAgeSeconds = (expiry: Expiry, expiresAtMillis: number, now: number): number | undefined =>
  expiry._tag === "OnSessionEnd" ? undefined : Math.max(0, Math.floor((expiresAtMillis - now) / 1000))

/**
 * The stored form of an expiry: `{ _tag: "OnSessionEnd" }`, `{ _tag: "OnInactivity", duration }` (whole
 * milliseconds) or `{ _tag: "AtDateTime", at }` (epoch milliseconds).
 *
 * @since 0.2.0
 */
export const ExpiryJson = Schema.Union(
  Schema.Struct({ _tag: Schema.Literal("OnSessionEnd") }),
  Schema.Struct({ _tag: Schema.Literal("OnInactivity"), duration: Schema.NonNegativeInt }),
  Schema.Struct({ _tag: Schema.Literal("AtDateTime"), at: Schema.Int })
)

/**
 * `ExpiryFromJson` decodes the stored form into an `Expiry` and encodes an `Expiry` into it.
 *
 * @since 0.2.0
 */
export const ExpiryFromJson: Schema.Schema<Expiry, typeof ExpiryJson.Encoded> = Schema.transform(
  ExpiryJson,
  Schema.declare((u: unknown): u is Expiry =>
    typeof u === "object" && u !== null && "_tag" in u &&
    (u._tag === "OnSessionEnd" || u._tag === "OnInactivity" || u._tag === "AtDateTime")
  ),
  {
    strict: true,
    decode: (json): Expiry => {
      switch (json._tag) {
        case "OnSessionEnd":
          return OnSessionEnd
        case "OnInactivity":
          return OnInactivity(Duration.millis(json.duration))
        case "AtDateTime":
          return AtDateTime(json.at)
      }
    },
    encode: (expiry) => {
      switch (expiry._tag) {
        case "OnSessionEnd":
          return { _tag: "OnSessionEnd" as const }
        case "OnInactivity":
          return {
            _tag: "OnInactivity" as const,
            duration: Math.max(0, Math.floor(Duration.toMillis(expiry.duration)))
          }
        case "AtDateTime":
          return { _tag: "AtDateTime" as const, at: Math.floor(expiry.at) }
      }
    }
  }
)

/**
 * `equals` is true when two expiries end a session the same way.
 *
 * @since 0.2.0
 */
export const equals = (a: Expiry, b: Expiry): boolean => {
  switch (a._tag) {
    case "OnSessionEnd":
      return b._tag === "OnSessionEnd"
    case "OnInactivity":
      return b._tag === "OnInactivity" && Duration.toMillis(a.duration) === Duration.toMillis(b.duration)
    case "AtDateTime":
      return b._tag === "AtDateTime" && Math.floor(a.at) === Math.floor(b.at)
  }
}
