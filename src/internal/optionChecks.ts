/**
 * The option checks every store shares, so each refuses a bad option the same way: a `StoreConfigError`
 * with reason `InvalidOption` naming the store, the option and why.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as StoreError from "../StoreError.js"

/** A refused option, or `undefined` when it is fine. */
export type Problem = StoreError.StoreConfigError | undefined

/** `positiveInteger` refuses a set option that is not a positive safe integer. */
export const positiveInteger = (store: string, option: string, value: unknown): Problem =>
  value === undefined || (typeof value === "number" && Number.isSafeInteger(value) && value > 0)
    ? undefined
    : StoreError.invalidOption(store, option, `${option} must be a positive integer`)

/**
 * `duration` refuses a set option that is not a duration, a zero one unless `zero` is allowed, and an
 * infinite one unless `infinite` is allowed.
 */
export const duration = (
  store: string,
  option: string,
  value: Duration.DurationInput | undefined,
  allow: { readonly zero?: boolean; readonly infinite?: boolean } = {}
): Problem => {
  if (value === undefined) return undefined
  const decoded = Duration.decodeUnknown(value)
  if (Option.isNone(decoded)) return StoreError.invalidOption(store, option, `${option} is not a duration`)
  const millis = Duration.toMillis(decoded.value)
  if (millis === 0 && allow.zero !== true) {
    return StoreError.invalidOption(store, option, `${option} must be a positive duration`)
  }
  if (!Number.isFinite(millis) && allow.infinite !== true) {
    return StoreError.invalidOption(store, option, `${option} must be a finite duration`)
  }
  return undefined
}

/** `string` refuses a set option that is not a string, or an empty one unless `empty` is allowed. */
export const string = (
  store: string,
  option: string,
  value: unknown,
  allow: { readonly empty?: boolean } = {}
): Problem =>
  value === undefined || (typeof value === "string" && (value.length > 0 || allow.empty === true))
    ? undefined
    : StoreError.invalidOption(store, option, `${option} must be a ${allow.empty === true ? "" : "non-empty "}string`)

/** `first(problems)` is the first refused option, or `undefined`. */
export const first = (problems: ReadonlyArray<Problem>): Problem => problems.find((problem) => problem !== undefined)

/** `check(problems)` fails with the first refused option, or succeeds. */
export const check = (problems: ReadonlyArray<Problem>): Effect.Effect<void, StoreError.StoreConfigError> => {
  const problem = first(problems)
  return problem === undefined ? Effect.void : Effect.fail(problem)
}
