/**
 * Signed session cookies with key rotation.
 *
 * (Interface only; the implementation lands with the middleware issue.)
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Option from "effect/Option"

/**
 * What the session middleware needs from a signer.
 *
 * @since 0.1.0
 */
export interface Signer {
  /** `sign` returns the cookie value carrying `value` and a MAC over `name=value` under the first key. */
  readonly sign: (name: string, value: string) => string
  /**
   * `verify` succeeds with the inner value when the MAC verifies under any listed key; `reissue` is true
   * when it verified under a key other than the first (the cookie should be re-sent, signed with the first).
   * Anything malformed or forged is `Option.none()`.
   */
  readonly verify: (name: string, cookieValue: string) => Option.Option<{ readonly value: string; readonly reissue: boolean }>
}

/**
 * The signer service.
 *
 * @since 0.1.0
 */
export class CookieSigner extends Context.Tag("effect-sessions/CookieSigner")<CookieSigner, Signer>() {}
