/**
 * What a session may hold: JSON values, with objects as null-prototype records
 * (so a `__proto__` key is plain data), strings free of `\u0000` and lone
 * surrogates, and an encoded size of at most `maxDataBytes` (default 64 KiB).
 *
 * Every store applies these rules through `SessionStore.make` before it is
 * called, so data one store accepts is accepted by all of them. Data that breaks
 * a rule is refused with a `StoreError` of reason `Encode`; the error says which
 * rule, never which value.
 *
 * @example
 * ```ts
 * import { SessionData } from "effect-sessions"
 *
 * const data = SessionData.fromEntries([["user", { name: "Ada" }], ["visits", 3]])
 * const json = SessionData.encode(data, SessionData.DEFAULT_MAX_BYTES) // Either<string, string>
 * ```
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * A JSON value as a session may hold it.
 *
 * @since 0.1.0
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<JsonValue>
  | { readonly [key: string]: JsonValue }

/**
 * The data of one session: string keys to JSON values.
 *
 * @since 0.1.0
 */
export type SessionData = { readonly [key: string]: JsonValue }

/**
 * The default cap on a session's encoded JSON, in UTF-8 bytes: 64 KiB.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_BYTES = 65_536

/**
 * `empty` is a new, empty, null-prototype data object.
 *
 * @since 0.1.0
 */
export const empty = (): SessionData => Object.create(null)

/**
 * `fromEntries` builds a null-prototype data object (a `__proto__` key is kept as data).
 *
 * @since 0.1.0
 */
export const fromEntries = (entries: Iterable<readonly [string, JsonValue]>): SessionData => {
  const out: Record<string, JsonValue> = Object.create(null)
  for (const [key, value] of entries) {
    out[key] = value
  }
  return out
}

const hasLoneSurrogate = (s: string): boolean => {
  // fast path: no surrogate at all
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1)
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++
          continue
        }
      }
      return true
    }
  }
  return false
}

const checkString = (s: string): string | undefined => {
  if (s.indexOf("\u0000") !== -1) return "a string holds \\u0000"
  if (hasLoneSurrogate(s)) return "a string holds a lone surrogate"
  return undefined
}

const MAX_DEPTH = 64

const checkValue = (value: unknown, depth: number, seen: Set<object>): string | undefined => {
  switch (typeof value) {
    case "string":
      return checkString(value)
    case "boolean":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : "a number is not finite"
    case "object": {
      if (value === null) return undefined
      if (depth >= MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH}`
      if (seen.has(value)) return "a value is circular"
      seen.add(value)
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const err = checkValue(value[i], depth + 1, seen)
            if (err !== undefined) return err
          }
          return undefined
        }
        const proto = Object.getPrototypeOf(value)
        if (proto !== null && proto !== Object.prototype) return "a value is not a plain object"
        if (Object.getOwnPropertySymbols(value).length > 0) return "an object has symbol keys"
        for (const key of Object.keys(value)) {
          const keyErr = checkString(key)
          if (keyErr !== undefined) return keyErr.replace("a string", "a key")
          const err = checkValue((value as Record<string, unknown>)[key], depth + 1, seen)
          if (err !== undefined) return err
        }
        return undefined
      } finally {
        seen.delete(value)
      }
    }
    default:
      return `a value of type ${typeof value} is not JSON`
  }
}

/**
 * `validate` succeeds with `undefined` when `data` follows the rules (size aside), or names the broken rule.
 * The message names the rule, never the offending value.
 *
 * @since 0.1.0
 */
export const validate = (data: unknown): string | undefined => {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return "session data is not an object"
  return checkValue(data, 0, new Set())
}

/**
 * `encode` checks the rules and the size cap and succeeds with the JSON text, or fails with the broken rule.
 *
 * @since 0.1.0
 */
export const encode = (data: SessionData, maxBytes: number = DEFAULT_MAX_BYTES): Either.Either<string, string> => {
  const err = validate(data)
  if (err !== undefined) return Either.left(err)
  const json = JSON.stringify(data)
  // A string's UTF-8 length is at least its UTF-16 length; only measure when it may matter.
  if (json.length > maxBytes || json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json, "utf8")
    if (bytes > maxBytes) return Either.left(`session data is ${bytes} bytes, over the cap of ${maxBytes}`)
  }
  return Either.right(json)
}

/** Gives every object of a freshly parsed JSON value a null prototype, in place (cheaper than a copy). */
const toNullProto = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) toNullProto(value[i])
    return value
  }
  Object.setPrototypeOf(value, null)
  for (const key in value) toNullProto((value as Record<string, unknown>)[key])
  return value
}

/**
 * `fromJsonValue` turns a freshly parsed JSON value (as a driver returns a `jsonb` column) into
 * session data, or names why it is not session data. It takes ownership: objects get a null prototype in place.
 *
 * @since 0.1.0
 */
export const fromJsonValue = (value: unknown): Either.Either<SessionData, string> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Either.left("stored data is not an object")
  }
  return Either.right(toNullProto(value) as SessionData)
}

/**
 * `decode` parses stored JSON text into null-prototype session data, or names why it cannot.
 * The message never repeats the text.
 *
 * @since 0.1.0
 */
export const decode = (json: string): Either.Either<SessionData, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return Either.left("stored data is not valid JSON")
  }
  return fromJsonValue(parsed)
}

/**
 * `equals` is deep equality of two JSON values, ignoring key order and prototypes.
 *
 * @since 0.1.0
 */
export const equals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false
    if (!equals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false
  }
  return true
}

const PROTO = "__proto__"

/** Cap on the objects `decodedIsPlain` walks in a decoded value; a larger one holding a `__proto__` key is refused. */
const MAX_WALK = 100_000

/**
 * Counts the objects holding an own `__proto__` key in a value (each object once), walking own enumerable
 * keys and array items; `-1` when the walk passes `MAX_WALK` objects or `MAX_DEPTH` levels.
 */
const countProtoKeys = (root: unknown): number => {
  const seen = new Set<object>()
  let found = 0
  const visit = (value: unknown, depth: number): boolean => {
    if (typeof value !== "object" || value === null || seen.has(value)) return true
    if (depth > MAX_DEPTH || seen.size >= MAX_WALK) return false
    seen.add(value)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (!visit(value[i], depth + 1)) return false
      return true
    }
    if (Object.prototype.hasOwnProperty.call(value, PROTO)) found++
    for (const key of Object.keys(value)) {
      if (!visit((value as Record<string, unknown>)[key], depth + 1)) return false
    }
    return true
  }
  return visit(root, 0) ? found : -1
}

/** True when some object of a JSON value has an own `__proto__` key (or is nested too deep to tell); stops at the first. */
const hasProtoKey = (value: unknown, depth: number): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (depth > MAX_DEPTH) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (hasProtoKey(value[i], depth + 1)) return true
    return false
  }
  if (Object.prototype.hasOwnProperty.call(value, PROTO)) return true
  for (const key of Object.keys(value)) if (hasProtoKey((value as Record<string, unknown>)[key], depth + 1)) return true
  return false
}

/**
 * `decodedIsPlain(input, output)` is true when every `__proto__` key of the stored `input` is still an own data
 * property of the schema's `output`. A schema that builds objects by assignment (`Schema.Record`, `Schema.Struct`
 * with excess properties kept) would otherwise turn such a key into the prototype of the object it builds, or
 * drop it; such a read must fail. Without a `__proto__` key in `input` it is true after one scan of `input`.
 *
 * @since 0.1.0
 */
export const decodedIsPlain = (input: JsonValue, output: unknown): boolean => {
  if (!hasProtoKey(input, 0)) return true
  const expected = countProtoKeys(input)
  const kept = countProtoKeys(output)
  return expected >= 0 && kept >= expected
}

/**
 * Schema of session data: decoding accepts a JSON object that follows the rules (size aside)
 * (it validates; it does not copy).
 *
 * @since 0.1.0
 */
export const SessionDataSchema: Schema.Schema<SessionData> = Schema.declare(
  (u: unknown): u is SessionData => validate(u) === undefined,
  { identifier: "SessionData", description: "JSON object following the session data rules" }
)
