import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Option, Redacted } from "effect"
import { CookieSigner, SessionToken } from "effect-sessions"
import { execFile } from "node:child_process"
import * as path from "node:path"

const key = () => Redacted.make(CookieSigner.unsafeGenerateKey())

const signer = (...keys: ReadonlyArray<Redacted.Redacted<string>>) => Effect.runSync(CookieSigner.make({ keys }))

const verified = (result: Option.Option<{ readonly value: string; readonly reissue: boolean }>) =>
  Option.getOrThrowWith(result, () => new Error("expected the cookie to verify"))

describe("CookieSigner", () => {
  it("signs and verifies a token under the cookie's name", () => {
    const s = signer(key())
    const token = SessionToken.unsafeGenerate()
    const cookie = s.sign("__Host-session", token)
    assert.isTrue(cookie.startsWith(`${token}.`))
    assert.deepStrictEqual(verified(s.verify("__Host-session", cookie)), { value: token, reissue: false })
  })

  it("rejects a value signed for another cookie name", () => {
    const s = signer(key())
    const token = SessionToken.unsafeGenerate()
    const cookie = s.sign("session", token)
    assert.isTrue(Option.isSome(s.verify("session", cookie)))
    assert.isTrue(Option.isNone(s.verify("other", cookie)))
    assert.isTrue(Option.isNone(s.verify("sessio", cookie)))
  })

  it("rejects tampered, truncated, unsigned and malformed values without throwing", () => {
    const s = signer(key())
    const token = SessionToken.unsafeGenerate()
    const cookie = s.sign("session", token)
    const mac = cookie.slice(token.length + 1)
    const flip = (c: string) => (c === "A" ? "B" : "A")
    const other = SessionToken.unsafeGenerate()
    const bad = [
      "",
      ".",
      token,
      `${token}.`,
      `.${mac}`,
      `${other}.${mac}`,
      `${token}.${mac.slice(0, -1)}`,
      `${token}.${mac}A`,
      `${token}.${flip(mac[0])}${mac.slice(1)}`,
      `${token}.${mac.slice(0, -1)}${flip(mac[mac.length - 1])}`,
      `${token.slice(0, -1)}${flip(token[token.length - 1])}.${mac}`,
      `${token}.${mac}.${mac}`,
      `${token}.${"é".repeat(43)}`,
      `${token}.${"\u{1F600}".repeat(22)}`,
      "x".repeat(100_000) + `.${mac}`,
      signer(key()).sign("session", token)
    ]
    for (const value of bad) {
      assert.isTrue(Option.isNone(s.verify("session", value)), `accepted: ${JSON.stringify(value.slice(0, 80))}`)
    }
  })

  it("signs with the first key, verifies with all, and asks to reissue under an older key", () => {
    const older = key()
    const newer = key()
    const token = SessionToken.unsafeGenerate()
    const oldCookie = signer(older).sign("session", token)

    const rotated = signer(newer, older)
    assert.deepStrictEqual(verified(rotated.verify("session", oldCookie)), { value: token, reissue: true })

    const reissued = rotated.sign("session", token)
    assert.notStrictEqual(reissued, oldCookie)
    assert.deepStrictEqual(verified(rotated.verify("session", reissued)), { value: token, reissue: false })
    assert.deepStrictEqual(verified(signer(newer).verify("session", reissued)), { value: token, reissue: false })

    // dropping the old key revokes every cookie signed under it
    assert.isTrue(Option.isNone(signer(newer).verify("session", oldCookie)))
  })

  it("is deterministic for the same key, and different keys sign differently", () => {
    const k = key()
    const token = SessionToken.unsafeGenerate()
    assert.strictEqual(signer(k).sign("session", token), signer(k).sign("session", token))
    assert.notStrictEqual(signer(k).sign("session", token), signer(key()).sign("session", token))
  })

  it("accepts base64url and padded or unpadded base64 keys", () => {
    const bytes = Buffer.alloc(32, 0xfb)
    const token = SessionToken.unsafeGenerate()
    const standard = bytes.toString("base64")
    assert.isTrue(standard.includes("+") || standard.includes("/"))
    const cookie = signer(Redacted.make(standard)).sign("s", token)
    for (const form of [standard.replace(/=+$/, ""), bytes.toString("base64url"), ` ${standard}\n`]) {
      assert.isTrue(Option.isSome(signer(Redacted.make(form)).verify("s", cookie)), form)
    }
  })

  it.effect("refuses short, non-base64 and missing keys with a message that never echoes the key", () =>
    Effect.gen(function*() {
      const short = Buffer.alloc(31, 7).toString("base64")
      const notBase64 = "this is not base64 at all, but it is long enough to be 32 bytes"
      const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
        [[], "NoKeys"],
        [[short], "InvalidKey"],
        [[notBase64], "InvalidKey"],
        [[""], "InvalidKey"],
        [[CookieSigner.unsafeGenerateKey(), short], "InvalidKey"],
        [[CookieSigner.unsafeGenerateKey().slice(1)], "InvalidKey"]
      ]
      for (const [keys, reason] of cases) {
        const error = yield* Effect.flip(CookieSigner.make({ keys: keys.map((k) => Redacted.make(k)) }))
        assert.strictEqual(error._tag, "CookieSignerError")
        assert.strictEqual(error.reason, reason)
        assert.include(error.message, "keygen")
        for (const k of keys) {
          if (k.length > 0) assert.notInclude(error.message, k.slice(0, 8))
        }
      }
      const second = yield* Effect.flip(CookieSigner.make({ keys: [key(), Redacted.make(short)] }))
      assert.include(second.message, "key number 2")
    }))

  it.effect("layerConfig reads comma-separated keys from the environment, newest first", () =>
    Effect.gen(function*() {
      const older = CookieSigner.unsafeGenerateKey()
      const newer = CookieSigner.unsafeGenerateKey()
      const token = SessionToken.unsafeGenerate()
      const oldCookie = signer(Redacted.make(older)).sign("session", token)
      const env = (value: string) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["SESSION_KEYS", value]])))

      const s = yield* Effect.provide(
        CookieSigner.CookieSigner,
        CookieSigner.layerConfig({ keys: CookieSigner.keysConfig("SESSION_KEYS") }).pipe(
          Layer.provide(env(`${newer}, ${older}`))
        )
      )
      assert.deepStrictEqual(verified(s.verify("session", oldCookie)), { value: token, reissue: true })
      assert.isTrue(Option.isSome(signer(Redacted.make(newer)).verify("session", s.sign("session", token))))

      const bad = yield* Effect.exit(
        Effect.provide(
          CookieSigner.CookieSigner,
          CookieSigner.layerConfig({ keys: CookieSigner.keysConfig("SESSION_KEYS") }).pipe(
            Layer.provide(env(`${newer},tooshort`))
          )
        )
      )
      assert.isTrue(Exit.isFailure(bad))
      assert.notInclude(String(bad), newer)

      const missing = yield* Effect.exit(
        Effect.provide(
          CookieSigner.CookieSigner,
          CookieSigner.layerConfig({ keys: CookieSigner.keysConfig("SESSION_KEYS") }).pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
          )
        )
      )
      assert.isTrue(Exit.isFailure(missing))
    }))

  it.effect("generateKey makes distinct 32-byte keys", () =>
    Effect.gen(function*() {
      const a = Redacted.value(yield* CookieSigner.generateKey)
      const b = Redacted.value(yield* CookieSigner.generateKey)
      assert.strictEqual(Buffer.from(a, "base64").length, 32)
      assert.notStrictEqual(a, b)
    }))
})

describe("effect-sessions keygen", () => {
  const bin = path.resolve(import.meta.dirname, "../bin/effect-sessions.ts")
  const tsx = path.resolve(import.meta.dirname, "../node_modules/.bin/tsx")
  const run = (...args: ReadonlyArray<string>) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(tsx, [bin, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })
      })
    })

  it("prints a fresh base64 key of 32 bytes that a signer accepts", async () => {
    const [a, b] = await Promise.all([run("keygen"), run("keygen")])
    for (const r of [a, b]) {
      assert.strictEqual(r.code, 0)
      assert.match(r.stdout, /^[A-Za-z0-9+/]{43}=\n$/)
      assert.strictEqual(Buffer.from(r.stdout.trim(), "base64").length, 32)
      const s = signer(Redacted.make(r.stdout))
      assert.isTrue(Option.isSome(s.verify("session", s.sign("session", SessionToken.unsafeGenerate()))))
    }
    assert.notStrictEqual(a.stdout, b.stdout)
  })

  it("prints its usage and exits with 2 on anything else", async () => {
    for (const args of [[], ["keygen", "extra"], ["nope"]]) {
      const r = await run(...args)
      assert.strictEqual(r.code, 2)
      assert.strictEqual(r.stdout, "")
      assert.include(r.stderr, "Usage: effect-sessions")
    }
  })
})
