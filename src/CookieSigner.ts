/**
 * Signed session cookies with key rotation.
 *
 * The cookie carries `<value>.<mac>`: the session token and an HMAC-SHA256 over the
 * cookie's `name=value` and a format version, base64url. What signing buys:
 *
 * - junk, guessed or forged cookies are rejected before any store lookup, so they
 *   cost a hash, not a database round trip;
 * - rotating the keys (dropping every old key) revokes every session at once.
 *
 * There is no encrypted mode: the value is a random token, there is nothing to hide.
 *
 * Keys are at least 32 random bytes, base64-encoded (`npx effect-sessions keygen`
 * prints one). The first key signs; every key verifies, so a new key can be put first
 * while the old ones still accept the cookies already out there. A cookie verified
 * under an older key reports `reissue: true` and the middleware re-sends it signed
 * under the first key. The MAC keys are derived from the given keys with HKDF under a
 * label of this library, so a key shared with another system never signs the same way.
 *
 * @example
 * ```ts
 * import { CookieSigner, MemoryStore, SessionMiddleware } from "effect-sessions"
 * import { Layer } from "effect"
 *
 * // SESSION_KEYS=<newest>,<older> (comma-separated, base64; `npx effect-sessions keygen` makes one)
 * const SignerLive = CookieSigner.layerConfig({ keys: CookieSigner.keysConfig("SESSION_KEYS") })
 *
 * // the middleware signs with the CookieSigner it finds in its context
 * const SessionsLive = SessionMiddleware.layer().pipe(
 *   Layer.provide(Layer.merge(MemoryStore.layer(), SignerLive))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as internal from "./internal/signer.js"
import { TaggedError } from "./internal/taggedError.js"

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
  readonly verify: (
    name: string,
    cookieValue: string
  ) => Option.Option<{ readonly value: string; readonly reissue: boolean }>
}

/**
 * The signer service.
 *
 * @since 0.1.0
 */
export class CookieSigner extends Context.Tag("effect-sessions/CookieSigner")<CookieSigner, Signer>() {}

/**
 * Options of a signer.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Base64 (or base64url) keys of at least 32 random bytes each; the first signs, all verify.
   * Warning: a key is a secret that lets anyone who holds it mint cookies the app accepts.
   */
  readonly keys: ReadonlyArray<Redacted.Redacted<string>>
}

/**
 * The least number of bytes a key must decode to.
 *
 * @since 0.1.0
 */
export const MIN_KEY_BYTES = internal.MIN_KEY_BYTES

/**
 * `make` succeeds with a signer for the given keys, or fails with a `CookieSignerError` naming the
 * position of a key that is not valid base64 of at least 32 bytes (never the key itself).
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<Signer, CookieSignerError> =>
  Effect.suspend(() => {
    if (options.keys.length === 0) {
      return Effect.fail(new CookieSignerError({ reason: "NoKeys", index: undefined }))
    }
    const keys: Array<Buffer> = []
    for (let i = 0; i < options.keys.length; i++) {
      const key = internal.decodeKey(Redacted.value(options.keys[i]))
      if (key === undefined) return Effect.fail(new CookieSignerError({ reason: "InvalidKey", index: i }))
      keys.push(key)
    }
    return Effect.succeed(internal.makeSigner(keys))
  })

/**
 * `layer` provides a `CookieSigner` for the given keys; it fails to build on a key that is not
 * valid base64 of at least 32 bytes.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<CookieSigner, CookieSignerError> =>
  Layer.effect(CookieSigner, make(options))

/**
 * `layerConfig` provides a `CookieSigner` with its keys read from configuration
 * (see `keysConfig`); it fails to build when the keys are missing or invalid.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<CookieSigner, ConfigError.ConfigError | CookieSignerError> =>
  Layer.effect(CookieSigner, Effect.flatMap(Config.unwrap(config), make))

/**
 * `keysConfig(name)` reads comma-separated base64 keys, newest first, from one redacted setting
 * (e.g. the environment variable `SESSION_KEYS`). Whitespace around each key is ignored.
 *
 * @since 0.1.0
 */
export const keysConfig = (name: string = "SESSION_KEYS"): Config.Config<ReadonlyArray<Redacted.Redacted<string>>> =>
  Config.map(
    Config.redacted(name),
    (all) => Redacted.value(all).split(",").map((key) => Redacted.make(key.trim()))
  )

/**
 * `unsafeGenerateKey` returns a fresh key: 32 bytes from `crypto.getRandomValues`, base64.
 *
 * @since 0.1.0
 */
export const unsafeGenerateKey = (): string => internal.generateKey()

/**
 * `generateKey` succeeds with a fresh redacted key: 32 bytes from `crypto.getRandomValues`, base64.
 *
 * @since 0.1.0
 */
export const generateKey: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  Redacted.make(internal.generateKey())
)

/**
 * Why a signer could not be built. Its message names the position of the bad key, never the key.
 *
 * @since 0.1.0
 */
export class CookieSignerError extends TaggedError("CookieSignerError")<{
  readonly reason: "NoKeys" | "InvalidKey"
  /** Position (from 0) of the invalid key in the list. */
  readonly index: number | undefined
}>() {
  override get message(): string {
    return this.reason === "NoKeys"
      ? "CookieSigner: no signing key given; generate one with `npx effect-sessions keygen`"
      : `CookieSigner: key number ${
        (this.index ?? 0) + 1
      } is not base64 of at least ${internal.MIN_KEY_BYTES} bytes; ` +
        "generate one with `npx effect-sessions keygen`"
  }
}
