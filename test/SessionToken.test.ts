import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SessionId, SessionToken } from "effect-sessions"
import { createHash } from "node:crypto"

describe("SessionToken", () => {
  it.effect("generates 22-character canonical base64url tokens that parse", () =>
    Effect.gen(function*() {
      const seen = new Set<string>()
      for (let i = 0; i < 1000; i++) {
        const token = yield* SessionToken.generate
        assert.strictEqual(token.length, 22)
        assert.isTrue(Option.isSome(SessionToken.parse(token)))
        assert.strictEqual(Buffer.from(token, "base64url").length, 16)
        seen.add(token)
      }
      assert.strictEqual(seen.size, 1000)
    }))

  it("rejects anything that is not a canonical token", () => {
    const good = SessionToken.unsafeGenerate()
    const bad = [
      "",
      good.slice(0, 21),
      good + "A",
      good.slice(0, 21) + "B", // stray low bits
      good.slice(0, 21) + "=",
      "+".repeat(22),
      "/".repeat(22),
      "a".repeat(21) + ".",
      "x".repeat(10_000),
      "ä".repeat(22)
    ]
    for (const input of bad) {
      assert.isTrue(Option.isNone(SessionToken.parse(input)))
    }
  })
})

describe("SessionId", () => {
  it("is the base64url SHA-256 digest of the token", () => {
    const token = SessionToken.unsafeGenerate()
    const id = SessionId.fromToken(token)
    assert.strictEqual(id.length, 43)
    assert.isTrue(SessionId.isSessionId(id))
    assert.strictEqual(id, SessionId.fromToken(token))
    const expected = createHash("sha256").update(token).digest("base64url")
    assert.strictEqual(id, expected)
    assert.notStrictEqual<string>(id, token)
  })
})
