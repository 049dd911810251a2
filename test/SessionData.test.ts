import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Schema } from "effect"
import { MemoryStore, Session, SessionData, SessionMiddleware } from "effect-sessions"
import { makeClient, serve } from "./support/http.js"

const SECRET = "MARK-do-not-echo-7Qv"

const refusal = (data: unknown, maxBytes?: number): string => {
  const result = SessionData.encode(data as SessionData.SessionData, maxBytes)
  assert.isTrue(Either.isLeft(result), "expected the data to be refused")
  return Either.isLeft(result) ? result.left : ""
}

const accepted = (data: unknown, maxBytes?: number): string => {
  const result = SessionData.encode(data as SessionData.SessionData, maxBytes)
  assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left : "")
  return Either.isRight(result) ? result.right : ""
}

/** Data whose JSON is exactly `bytes` UTF-8 bytes: `{"k":"<pad>"}` padded with `unit` and ASCII. */
const ofBytes = (bytes: number, unit: string) => {
  const unitBytes = Buffer.byteLength(unit, "utf8")
  let room = bytes - Buffer.byteLength(`{"k":""}`, "utf8")
  const units = Math.floor(room / unitBytes)
  room -= units * unitBytes
  const data = SessionData.fromEntries([["k", unit.repeat(units) + "a".repeat(room)]])
  assert.strictEqual(Buffer.byteLength(JSON.stringify(data), "utf8"), bytes)
  return data
}

describe("SessionData", () => {
  describe("rules", () => {
    it("accepts JSON values: nested objects, arrays, numbers, booleans, null, unicode", () => {
      const data = SessionData.fromEntries([
        ["user", { name: "Ada", tags: ["a", "b"], nested: { deeper: [1, { x: null }] } }],
        ["n", -1.5e-7],
        ["ok", true],
        ["none", null],
        ["text", "emoji \u{1F600} astral \u{1D518} rtl \u05e9\u05dc\u05d5\u05dd combining e\u0301 \u0001"]
      ])
      assert.isTrue(SessionData.equals(JSON.parse(accepted(data)), data))
    })

    const refused: ReadonlyArray<readonly [string, unknown, RegExp]> = [
      ["\\u0000 in a value", { s: `${SECRET}\u0000` }, /\\u0000/],
      ["\\u0000 in a key", { [`${SECRET}\u0000`]: 1 }, /key/],
      ["a lone high surrogate", { s: `${SECRET}\ud83d` }, /lone surrogate/],
      ["a lone low surrogate", { s: `\ude00${SECRET}` }, /lone surrogate/],
      ["a reversed surrogate pair", { s: `\ude00\ud83d${SECRET}` }, /lone surrogate/],
      ["a lone surrogate in a key", { [`\ud800${SECRET}`]: 1 }, /key/],
      ["NaN", { n: Number.NaN }, /not finite/],
      ["Infinity", { n: Number.POSITIVE_INFINITY }, /not finite/],
      ["-Infinity", { list: [Number.NEGATIVE_INFINITY] }, /not finite/],
      ["undefined", { u: undefined }, /not JSON/],
      ["a function", { f: () => SECRET }, /not JSON/],
      ["a bigint", { b: 1n }, /not JSON/],
      ["a symbol", { s: Symbol(SECRET) }, /not JSON/],
      ["a Date", { d: new Date() }, /not a plain object/],
      ["a Map", { m: new Map([[SECRET, SECRET]]) }, /not a plain object/],
      ["a class instance", {
        c: new (class Secretive {
          v = SECRET
        })()
      }, /not a plain object/],
      ["a symbol key", { [Symbol(SECRET)]: 1 }, /symbol keys/],
      ["an array at the top", [SECRET], /not an object/],
      ["null at the top", null, /not an object/],
      ["a string at the top", SECRET, /not an object/]
    ]
    for (const [what, data, rule] of refused) {
      it(`refuses ${what}, naming the rule and not the value`, () => {
        const message = refusal(data)
        assert.match(message, rule)
        assert.notInclude(message, SECRET)
      })
    }

    it("refuses circular data and nesting deeper than 64, but accepts a shared (non-circular) value", () => {
      const circular: Record<string, unknown> = {}
      circular.self = circular
      assert.match(refusal({ c: circular }), /circular/)
      let deep: unknown = 1
      for (let i = 0; i < 64; i++) deep = [deep]
      assert.match(refusal({ deep }), /deeper/)
      const shared = { x: 1 }
      accepted({ a: shared, b: shared, list: [shared, shared] })
    })

    it("accepts proper surrogate pairs, in values and keys", () => {
      accepted({ "\u{1F511}": "\u{1F600}\u{10348}" })
    })
  })

  describe("size cap", () => {
    it("is measured in UTF-8 bytes of the JSON: exactly the default 65,536 passes, one byte more is refused", () => {
      assert.strictEqual(SessionData.DEFAULT_MAX_BYTES, 65_536)
      for (const unit of ["a", "\u00e9", "\u20ac", "\u{1F600}"]) {
        accepted(ofBytes(65_536, unit))
        assert.match(refusal(ofBytes(65_537, unit)), /65537 bytes, over the cap of 65536/)
      }
    })

    it("counts multi-byte characters as their UTF-8 bytes, not UTF-16 units", () => {
      // 30,000 euro signs: 30,000 UTF-16 units but 90,000 UTF-8 bytes
      const data = SessionData.fromEntries([["k", "\u20ac".repeat(30_000)]])
      assert.isBelow(JSON.stringify(data).length, 65_536)
      assert.match(refusal(data), /over the cap/)
    })

    it("follows a custom cap", () => {
      accepted(ofBytes(100, "\u{1F600}"), 100)
      refusal(ofBytes(101, "\u{1F600}"), 100)
      refusal(ofBytes(65_536, "a"), 1_000)
    })
  })

  describe("__proto__ and friends", () => {
    it("fromEntries keeps a __proto__ key as data and sets no prototype", () => {
      const data = SessionData.fromEntries([["__proto__", { isAdmin: true }], ["constructor", "c"]])
      assert.isNull(Object.getPrototypeOf(data))
      assert.isTrue(Object.prototype.hasOwnProperty.call(data, "__proto__"))
      assert.isUndefined((data as { isAdmin?: unknown }).isAdmin)
      assert.strictEqual(accepted(data), `{"__proto__":{"isAdmin":true},"constructor":"c"}`)
    })

    it("decode keeps __proto__ keys as data at every level, in null-prototype objects, and pollutes nothing", () => {
      const json =
        `{"__proto__":{"polluted":"yes"},"a":{"__proto__":{"polluted":"yes"}},"l":[{"__proto__":{"polluted":"yes"}}]}`
      const decoded = SessionData.decode(json)
      assert.isTrue(Either.isRight(decoded))
      if (Either.isLeft(decoded)) return
      const data = decoded.right as Record<string, any>
      for (const object of [data, data.a, data.l[0]]) {
        assert.isNull(Object.getPrototypeOf(object))
        assert.isTrue(Object.prototype.hasOwnProperty.call(object, "__proto__"))
        assert.deepStrictEqual(Object.keys(object.__proto__), ["polluted"])
        assert.isUndefined(object.polluted)
      }
      assert.isUndefined(({} as Record<string, unknown>).polluted)
      assert.strictEqual(accepted(data), json)
    })
  })

  describe("decode", () => {
    it("round-trips what encode produced", () => {
      const data = SessionData.fromEntries([["user", { name: "\u{1F600}", n: [1, 2.5] }], ["e", {}]])
      const back = SessionData.decode(accepted(data))
      assert.isTrue(Either.isRight(back) && SessionData.equals(back.right, data))
    })

    it("refuses what is not a JSON object, without repeating the text", () => {
      for (const text of [`{"a":"${SECRET}"`, `["${SECRET}"]`, `"${SECRET}"`, "null", "42", ""]) {
        const result = SessionData.decode(text)
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) assert.notInclude(result.left, SECRET)
      }
    })

    it("fromJsonValue turns a parsed value into null-prototype data", () => {
      const result = SessionData.fromJsonValue({ a: { b: [{ c: 1 }] } })
      assert.isTrue(Either.isRight(result))
      if (Either.isRight(result)) {
        assert.isNull(Object.getPrototypeOf(result.right))
        assert.isNull(Object.getPrototypeOf((result.right.a as any).b[0]))
      }
      assert.isTrue(Either.isLeft(SessionData.fromJsonValue([1])))
    })
  })

  describe("equals", () => {
    it("ignores key order and prototypes, not values, array order or types", () => {
      assert.isTrue(
        SessionData.equals({ a: 1, b: { c: [1, 2] } }, SessionData.fromEntries([["b", { c: [1, 2] }], ["a", 1]]))
      )
      assert.isFalse(SessionData.equals({ a: [1, 2] }, { a: [2, 1] }))
      assert.isFalse(SessionData.equals({ a: 1 }, { a: "1" }))
      assert.isFalse(SessionData.equals({ a: 1 }, { a: 1, b: undefined }))
      assert.isFalse(SessionData.equals({ a: {} }, { a: [] }))
      assert.isFalse(SessionData.equals({ a: null }, { a: {} }))
    })
  })

  describe("SessionDataSchema", () => {
    it("accepts data following the rules and refuses the rest", () => {
      assert.isTrue(Either.isRight(Schema.decodeUnknownEither(SessionData.SessionDataSchema)({ a: [1, "x"] })))
      assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(SessionData.SessionDataSchema)({ a: "\u0000" })))
      assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(SessionData.SessionDataSchema)([1])))
    })
  })
})

/** Data with a `__proto__` key, as `JSON.parse` makes it (an own data property), at the top and nested. */
const hostile = () => JSON.parse(`{"__proto__":{"isAdmin":true},"theme":"dark"}`)

const Prefs = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** The schemas a read goes through; each builds its objects by assignment somewhere. */
const schemas = {
  record: Prefs,
  struct: Schema.Struct({ theme: Schema.String }, { key: Schema.String, value: Schema.Unknown }),
  nested: Schema.Struct({ inner: Prefs }),
  array: Schema.Array(Prefs),
  recordOfRecords: Schema.Record({ key: Schema.String, value: Prefs })
} as const

const stored = {
  record: hostile,
  struct: hostile,
  nested: () => ({ inner: hostile() }),
  array: () => [{ a: 1 }, hostile()],
  recordOfRecords: () => ({ a: hostile() })
} as const

/** Nothing in the decoded value may inherit `isAdmin`: an own `__proto__` is data, a prototype is a leak. */
const leaks = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (Array.isArray(value)) return value.some(leaks)
  const proto = Object.getPrototypeOf(value)
  if (proto !== null && proto !== Object.prototype) return true
  if ("isAdmin" in value && !Object.prototype.hasOwnProperty.call(value, "isAdmin")) return true
  return Object.keys(value).some((k) => leaks((value as Record<string, unknown>)[k]))
}

describe("values read through a schema stay plain data", () => {
  it("decodedIsPlain refuses a decoded value whose __proto__ key became a prototype or was dropped", () => {
    for (const [name, schema] of Object.entries(schemas)) {
      const input = stored[name as keyof typeof stored]()
      const output = Schema.decodeUnknownSync(schema as Schema.Schema<unknown>)(input)
      assert.isFalse(SessionData.decodedIsPlain(input, output), name)
    }
    // kept as data: the value itself, or a schema that passes it through
    const input = hostile()
    assert.isTrue(SessionData.decodedIsPlain(input, input))
    assert.isTrue(SessionData.decodedIsPlain(input, Schema.decodeUnknownSync(Schema.Unknown)(input)))
    assert.isTrue(SessionData.decodedIsPlain({ a: [1, { b: "c" }] }, { a: [1, { b: "c" }] }))
    assert.isTrue(SessionData.decodedIsPlain(3, 3))
  })

  it.live("Session.get / Session.key with a schema: a __proto__ key in stored data fails the read as Decode, never a prototype", () =>
    Effect.gen(function*() {
      const read = (name: keyof typeof schemas) =>
        Session.get(name, schemas[name] as Schema.Schema<unknown>).pipe(
          Effect.map((o) => Option.isSome(o) && leaks(o.value) ? "leak" : Option.isSome(o) ? "plain" : "none"),
          Effect.catchTag("SessionError", (e) => Effect.succeed(e.reason))
        )
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/put",
          Effect.gen(function*() {
            for (const name of Object.keys(stored) as Array<keyof typeof stored>) {
              yield* Session.insert(name, stored[name]())
            }
            yield* Session.insert("own", hostile())
            return HttpServerResponse.text("ok")
          })
        ),
        HttpRouter.get(
          "/read",
          Effect.gen(function*() {
            const out: Record<string, string> = {}
            for (const name of Object.keys(schemas) as Array<keyof typeof schemas>) out[name] = yield* read(name)
            const own = yield* Session.key("own", Schema.Unknown)
            out.unknown =
              Option.isSome(own) && Object.prototype.hasOwnProperty.call(own.value, "__proto__") && !leaks(own.value)
                ? "own data"
                : "lost"
            return HttpServerResponse.text(JSON.stringify(out))
          })
        ),
        HttpRouter.use(SessionMiddleware.middleware)
      )
      const client = makeClient(yield* serve(app))
      assert.strictEqual((yield* client.post("/put")).status, 200)
      const replies = JSON.parse((yield* client.get("/read")).body)
      assert.deepStrictEqual(replies, {
        record: "Decode",
        struct: "Decode",
        nested: "Decode",
        array: "Decode",
        recordOfRecords: "Decode",
        unknown: "own data"
      })
    }).pipe(Effect.scoped, Effect.provide(SessionMiddleware.layer().pipe(Layer.provide(MemoryStore.layer())))))
})
