/**
 * The one error of session stores. `reason` tells the members of the family apart:
 *
 * - `Unavailable`: the backend could not be reached or failed (connection, timeout, driver error).
 * - `Encode`: the data breaks the session data rules (see `SessionData`); nothing was written.
 * - `Decode`: a stored record could not be read back; other sessions are unaffected.
 * - `Collision`: `create` found a live record with that id; nothing was written.
 * - `Conflict`: `save` found a live record with another version; nothing was written.
 * - `Gone`: `save` found no live record (deleted, expired, revoked); nothing was written.
 *
 * A store that refuses its options at construction fails with `StoreConfigError` instead (below).
 *
 * Its message names the method and the reason only. Its `cause` is a redacted
 * summary of what went wrong (an error's name and code, or a rule that was
 * broken), never a driver error's message or detail, which can hold row data.
 *
 * @example
 * ```ts
 * import { StoreError } from "effect-sessions"
 * import { Effect } from "effect"
 *
 * const recover = <A>(self: Effect.Effect<A, StoreError.StoreError>) =>
 *   Effect.catchTag(self, "StoreError", (e) => e.reason === "Gone" ? Effect.succeed(null) : Effect.fail(e))
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"
import { TaggedError } from "./internal/taggedError.js"

/**
 * The reasons a store operation can fail.
 *
 * @since 0.1.0
 */
export type Reason = "Unavailable" | "Encode" | "Decode" | "Collision" | "Conflict" | "Gone"

/**
 * The store methods an error can come from.
 *
 * @since 0.1.0
 */
export type Method = "create" | "save" | "load" | "delete" | "deleteExpired" | "migrate" | (string & {})

/**
 * A redacted account of a failure's cause: the error's name and its code, or a broken rule.
 * It never carries a driver message, a row, a token, an id or session data.
 *
 * @since 0.1.0
 */
export class RedactedCause extends Data.Class<{
  readonly name: string
  readonly code: string | undefined
  readonly rule: string | undefined
}> {
  override toString(): string {
    const code = this.code !== undefined ? ` (${this.code})` : ""
    const rule = this.rule !== undefined ? `: ${this.rule}` : ""
    return `${this.name}${code}${rule}`
  }
  toJSON(): unknown {
    return { name: this.name, code: this.code, rule: this.rule }
  }
}

const safeCode = (u: unknown): string | undefined => {
  if (Predicate.hasProperty(u, "code")) {
    const code = u.code
    if (typeof code === "string" && /^[A-Za-z0-9_.-]{1,40}$/.test(code)) return code
    if (typeof code === "number" && Number.isFinite(code)) return String(code)
  }
  return undefined
}

const safeName = (u: unknown): string => {
  if (u instanceof Error) {
    const name = u.name
    return typeof name === "string" && /^[A-Za-z0-9_$.]{1,60}$/.test(name) ? name : "Error"
  }
  if (Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && /^[A-Za-z0-9_$.]{1,60}$/.test(u._tag)) {
    return u._tag
  }
  return typeof u
}

/**
 * `redact` keeps of any thrown value only its name and code (and, for a broken data rule, the rule).
 *
 * @since 0.1.0
 */
export const redact = (cause: unknown): RedactedCause => {
  if (cause instanceof RedactedCause) return cause
  if (cause instanceof StoreError) {
    return new RedactedCause({ name: "StoreError", code: cause.reason, rule: undefined })
  }
  return new RedactedCause({ name: safeName(cause), code: safeCode(cause), rule: undefined })
}

/**
 * The error of every store operation.
 *
 * @since 0.1.0
 */
export class StoreError extends TaggedError("StoreError")<{
  readonly reason: Reason
  readonly method: Method
  readonly cause: RedactedCause | undefined
}>() {
  override get message(): string {
    return `session store ${this.method} failed: ${this.reason}`
  }
}

/**
 * `make` builds a `StoreError`, redacting the cause to its name and code.
 *
 * @since 0.1.0
 */
export const make = (reason: Reason, method: Method, cause?: unknown): StoreError =>
  new StoreError({ reason, method, cause: cause === undefined ? undefined : redact(cause) })

/**
 * `rule` builds an `Encode` or `Decode` error naming the broken rule (never the value).
 *
 * @since 0.1.0
 */
export const rule = (reason: "Encode" | "Decode", method: Method, ruleText: string): StoreError =>
  new StoreError({ reason, method, cause: new RedactedCause({ name: reason, code: undefined, rule: ruleText }) })

/**
 * The reasons a store refuses its configuration: an option it cannot honour, or (SqlStore) a client whose
 * dialect it does not support.
 *
 * @since 0.1.0
 */
export type ConfigReason = "InvalidOption" | "UnsupportedDialect"

/**
 * The error of every store constructor and layer that refuses its configuration, before the store touches
 * its backend. `store` names the store, `option` the refused option (when one is to blame), and the message
 * says which option and why.
 *
 * @since 0.1.0
 */
export class StoreConfigError extends TaggedError("StoreConfigError")<{
  readonly reason: ConfigReason
  readonly store: string
  readonly option: string | undefined
  readonly message: string
}>() {}

/**
 * `invalidOption(store, option, why)` builds the `InvalidOption` error with the message `"<store>: <why>"`;
 * `why` names the option.
 *
 * @since 0.1.0
 */
export const invalidOption = (store: string, option: string, why: string): StoreConfigError =>
  new StoreConfigError({ reason: "InvalidOption", store, option, message: `${store}: ${why}` })

/**
 * `isStoreConfigError` is true for a `StoreConfigError`.
 *
 * @since 0.1.0
 */
export const isStoreConfigError = (u: unknown): u is StoreConfigError => u instanceof StoreConfigError

/**
 * `isStoreError` is true for a `StoreError`.
 *
 * @since 0.1.0
 */
export const isStoreError = (u: unknown): u is StoreError => u instanceof StoreError
