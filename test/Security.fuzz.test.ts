/**
 * Property-based fuzzing of what attackers control: the `Cookie` header reading, the signer's `verify`, the
 * CSRF decisions, schema reads of hostile data, and whole requests (arbitrary methods, headers and bodies) sent
 * over raw sockets to a real server with sessions, a signer and `Csrf.middleware`, recorded by a Tracer and a
 * Logger. Never a throw or a defect, never a 5xx, never a token, secret or session id in a response, a log line
 * or a span.
 *
 * `FUZZ_RUNS` sets the number of cases of each property (default 1,000), `FUZZ_SEED` the seed (default: drawn
 * and printed). The long run: `FUZZ_RUNS=100000 npx vitest run test/Security.fuzz.test.ts`.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Option, Redacted, Schema } from "effect"
import {
  CookieSigner,
  Csrf,
  MemoryStore,
  Session,
  SessionData,
  SessionId,
  SessionMiddleware,
  SessionToken
} from "effect-sessions"
import { connect } from "node:net"
import * as Cookie from "../src/internal/cookie.js"
import * as CsrfInternal from "../src/internal/csrf.js"
import { makeClient } from "./support/http.js"
import { makeRecorder, serveLayer } from "./support/recording.js"

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
Effect.runSync(Effect.log(`Security.fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`))

/** `check(property)` runs a property with the suite's seed; a failure reports the seed, path and shrunk case. */
const check = <T>(property: fc.IProperty<T>, runs: number = RUNS) => fc.assert(property, { seed: SEED, numRuns: runs })
const checkAsync = <T>(property: fc.IAsyncProperty<T>, runs: number = RUNS) =>
  fc.assert(property, { seed: SEED, numRuns: runs })

/** Characters a header value may carry on the wire (visible ASCII, space, tab, obs-text), plus the separators. */
const headerChar = fc.oneof(
  fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  fc.constantFrom("\t", "\xa0", "\xff", ";", "=", "%", " ", "%2E", "%E0%A4%A", "\u00e9")
)
const headerText = (maxLength: number) => fc.array(headerChar, { maxLength }).map((cs) => cs.join(""))

const signer = Effect.runSync(CookieSigner.make({ keys: [Redacted.make(CookieSigner.unsafeGenerateKey())] }))
const stranger = Effect.runSync(CookieSigner.make({ keys: [Redacted.make(CookieSigner.unsafeGenerateKey())] }))

/** What the strict reading should return, written the plain way, for headers within the length cap. */
const referenceValues = (header: string, name: string): Array<string> => {
  const out: Array<string> = []
  for (const part of header.split(";")) {
    const pair = part.replace(/^ +/, "")
    if (!pair.startsWith(`${name}=`)) continue
    const raw = pair.slice(name.length + 1)
    let value: string | undefined = raw
    if (raw.includes("%")) {
      try {
        value = decodeURIComponent(raw)
      } catch {
        value = undefined
      }
    }
    if (value !== undefined) out.push(value)
    if (out.length >= Cookie.MAX_VALUES) break
  }
  return out
}

const cookieName = fc.constantFrom("sid", "__Host-session", "__proto__", "constructor", "toString", "a")

describe("fuzz: pure functions", () => {
  it("sessionCookieValues returns exactly the values of the exact name, bounded, and never throws", () => {
    const pair = fc.tuple(fc.oneof(cookieName, headerText(8)), fc.constantFrom("=", "", "=="), headerText(30))
      .map(([n, eq, v]) => `${n}${eq}${v}`)
    check(
      fc.property(
        fc.array(pair, { maxLength: 40 }),
        fc.constantFrom(";", "; ", ";  "),
        cookieName,
        (pairs, sep, name) => {
          const header = pairs.join(sep)
          const values = Cookie.sessionCookieValues(header, name)
          assert.isAtMost(values.length, Cookie.MAX_VALUES)
          assert.deepStrictEqual(values, referenceValues(header, name))
        }
      )
    )
    check(
      fc.property(headerText(20_000), cookieName, (header, name) => {
        assert.isAtMost(Cookie.sessionCookieValues(header, name).length, Cookie.MAX_VALUES)
      }),
      Math.max(10, Math.floor(RUNS / 10))
    )
  })

  it("selectToken and verify never throw, and only what verifies is selected", () => {
    const token = SessionToken.unsafeGenerate()
    const signed = signer.sign("sid", token)
    const mutated = fc.tuple(fc.nat(signed.length - 1), headerChar).map(([i, c]) =>
      signed.slice(0, i) + c + signed.slice(i + 1)
    )
    const value = fc.oneof(
      headerText(60),
      mutated,
      fc.constant(signed),
      fc.constant(token),
      fc.constant(stranger.sign("sid", token))
    )
    check(fc.property(fc.array(value, { maxLength: 20 }), fc.boolean(), (values, withSigner) => {
      const chosen = Cookie.selectToken(values, "sid", withSigner ? signer : undefined)
      if (chosen === undefined) return
      assert.isTrue(SessionToken.isSessionToken(chosen.token))
      if (withSigner) {
        assert.isTrue(values.some((v) => Option.exists(signer.verify("sid", v), (r) => r.value === chosen.token)))
      } else assert.include(values, chosen.token)
    }))
    check(fc.property(value, cookieName, (v, name) => {
      const result = signer.verify(name, v)
      if (Option.isSome(result)) {
        assert.strictEqual(v, signer.sign(name, result.value.value), "only a value the signer made verifies")
      }
    }))
  })

  it("the CSRF decisions never throw, and no arbitrary string passes as a token", () => {
    const secret = CsrfInternal.generateSecret()
    const headers = fc.record({
      "sec-fetch-site": fc.option(
        fc.oneof(fc.constantFrom("same-origin", "same-site", "cross-site", "none"), headerText(12)),
        { nil: undefined }
      ),
      origin: fc.option(
        fc.oneof(
          fc.constantFrom("null", "http://a.example", "https://a.example", "http://a.example:80"),
          headerText(30)
        ),
        { nil: undefined }
      ),
      host: fc.option(fc.oneof(fc.constantFrom("a.example", "a.example:80", "A.EXAMPLE"), headerText(20)), {
        nil: undefined
      }),
      "x-forwarded-proto": fc.option(fc.oneof(fc.constantFrom("https", "http", "https, http"), headerText(8)), {
        nil: undefined
      })
    })
    const allowed = fc.option(fc.constant(new Set(["https://a.example"])), { nil: undefined })
    check(fc.property(headers, allowed, headerText(100), headerText(20), (h, origins, candidate, length) => {
      const verdict = CsrfInternal.judgeOrigin(h, origins)
      assert.include(["SameOrigin", "CrossOrigin", "NoSignal"], verdict)
      if (h.origin === "null" && h["sec-fetch-site"] !== "same-origin" && h["sec-fetch-site"] !== "none") {
        assert.strictEqual(verdict, "CrossOrigin")
      }
      assert.isFalse(CsrfInternal.matches(secret, candidate))
      const declared = CsrfInternal.declaredLength(length)
      if (declared !== undefined) assert.isTrue(Number.isSafeInteger(declared) && declared >= 0)
    }))
  })

  it("schema reads of data with __proto__ keys never yield a prototype that is not Object.prototype", () => {
    const key = fc.oneof(fc.constant("__proto__"), fc.constantFrom("a", "isAdmin", "constructor"))
    const { json } = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.integer(),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        tie("array"),
        tie("object")
      ),
      array: fc.array(tie("json"), { maxLength: 4 }),
      object: fc.array(fc.tuple(key, tie("json")), { maxLength: 4 }).map((entries) =>
        SessionData.fromEntries(entries as never)
      )
    }))
    const schemas = [
      Schema.Record({ key: Schema.String, value: Schema.Unknown }),
      Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      Schema.Struct({ a: Schema.Unknown }, { key: Schema.String, value: Schema.Unknown }),
      Schema.Unknown
    ]
    const plainAll = (u: unknown, depth: number): boolean => {
      if (typeof u !== "object" || u === null || depth > 70) return true
      const proto = Object.getPrototypeOf(u)
      if (proto !== null && proto !== Object.prototype && proto !== Array.prototype) return false
      return Object.keys(u).every((k) => plainAll((u as Record<string, unknown>)[k], depth + 1))
    }
    check(fc.property(json, fc.nat(schemas.length - 1), (input, i) => {
      const decoded = Schema.decodeUnknownEither(schemas[i] as Schema.Schema<unknown>)(input)
      if (decoded._tag === "Left") return
      if (SessionData.decodedIsPlain(input as SessionData.JsonValue, decoded.right)) {
        assert.isTrue(plainAll(decoded.right, 0), "a read that passes is plain data")
      }
    }))
  })
})

/** One request as bytes on the wire, and how its body is framed. */
interface Case {
  readonly method: string
  readonly path: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string | undefined
  readonly chunked: boolean
}

interface Sent {
  readonly status: number
  readonly text: string
}

/** Sends `request` on a fresh socket and resolves with the first complete response (keep-alive, then closed). */
const send = (url: string, c: Case): Promise<Sent> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const socket = connect({ host: hostname, port: Number(port) })
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => finish(new Error("no response within 20 s")), 20_000)
    const finish = (result: Sent | Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (result instanceof Error) reject(result)
      else resolve(result)
    }
    const complete = (): Sent | undefined => {
      const end = received.indexOf("\r\n\r\n")
      if (end === -1) return undefined
      const head = received.subarray(0, end).toString("latin1")
      const status = Number(head.split(" ")[1])
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      const body = received.subarray(end + 4)
      const text = received.toString("latin1")
      if (c.method === "HEAD" || status === 204 || status === 304) return { status, text }
      if (length !== null) return body.length >= Number(length[1]) ? { status, text } : undefined
      if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        return body.includes("0\r\n\r\n")
          ? { status, text }
          : undefined
      }
      return undefined
    }
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk])
      const done = complete()
      if (done !== undefined) finish(done)
    })
    socket.on("error", () => {
      // the server may close while the rest of a refused body is still being written
      const done = complete()
      finish(done ?? new Error("the connection failed before a complete response"))
    })
    socket.on("close", () => finish(complete() ?? new Error("the connection closed before a complete response")))
    const lines = c.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")
    const framing = c.body === undefined
      ? ""
      : c.chunked
      ? "transfer-encoding: chunked\r\n"
      : `content-length: ${Buffer.byteLength(c.body, "latin1")}\r\n`
    const body = c.body === undefined
      ? ""
      : c.chunked
      ? (c.body.length > 0 ? `${Buffer.byteLength(c.body, "latin1").toString(16)}\r\n${c.body}\r\n` : "") + "0\r\n\r\n"
      : c.body
    socket.write(Buffer.from(`${c.method} ${c.path} HTTP/1.1\r\n${lines}${framing}\r\n${body}`, "latin1"))
  })

describe("fuzz: requests to a real server", () => {
  // the default name, and one that is an `Object.prototype` member
  for (const name of ["__Host-session", "constructor"]) fuzzServer(name)
})

function fuzzServer(name: string) {
  it.live(
    `arbitrary methods, cookies, origins, tokens and bodies (cookie ${name}): never a 5xx, never a secret in a response, span or log`,
    () => {
      const recorder = makeRecorder()
      const routes = HttpRouter.empty.pipe(
        HttpRouter.get("/token", Effect.map(Csrf.token, (t) => HttpServerResponse.text(t))),
        HttpRouter.all("/action", Effect.as(Session.insert("n", 1), HttpServerResponse.text("done"))),
        HttpRouter.get("/plain", Effect.succeed(HttpServerResponse.text("plain"))),
        HttpRouter.use(Csrf.middleware({ maxBodyBytes: 4096 })),
        HttpRouter.use(SessionMiddleware.middleware)
      )
      const layer = SessionMiddleware.layer({ cookie: { name, secure: name.startsWith("__Host-") } }).pipe(
        Layer.provide(Layer.merge(MemoryStore.layer(), Layer.succeed(CookieSigner.CookieSigner, signer)))
      )
      // the summary is logged outside the recorder, which would keep it from the console
      const fuzzed = recorder.provide(
        Effect.gen(function*() {
          const url = yield* serveLayer(routes, layer)
          const client = makeClient(url)
          const masked = (yield* client.get("/token")).body
          const cookie = decodeURIComponent(client.jar.get(name)!)
          const token = cookie.slice(0, cookie.lastIndexOf("."))
          const bytes = Buffer.from(masked, "base64url")
          const secret = Buffer.from(bytes.subarray(0, 32).map((b, i) => b ^ bytes[32 + i])).toString("base64url")
          const secrets = [masked, cookie, token, SessionId.fromToken(token as SessionToken.SessionToken), secret]
          recorder.clear()

          const mutate = (s: string) =>
            fc.tuple(fc.nat(s.length - 1), headerChar).map(([i, ch]) => s.slice(0, i) + ch + s.slice(i + 1))
          const cookiePair = fc.oneof(
            fc.constant(`${name}=${encodeURIComponent(cookie)}`),
            mutate(cookie).map((v) => `${name}=${v}`),
            fc.constantFrom(
              `\xa0${name}=${cookie}`,
              `\t${name}=${cookie}`,
              `${name} =${cookie}`,
              `__proto__=${cookie}`,
              `${name.toUpperCase()}=${cookie}`
            ),
            fc.tuple(fc.oneof(cookieName, headerText(6)), headerText(30)).map(([n, v]) => `${n}=${v}`),
            headerText(20)
          )
          const cookieHeader = fc.tuple(fc.array(cookiePair, { maxLength: 6 }), fc.constantFrom("; ", ";", ";  ")).map((
            [ps, sep]
          ) => ps.join(sep))
          const tokenValue = fc.oneof(fc.constant(masked), mutate(masked), headerText(90))
          const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 })
          const request: fc.Arbitrary<Case> = fc.record({
            method: fc.constantFrom(
              "GET",
              "HEAD",
              "OPTIONS",
              "TRACE",
              "POST",
              "PUT",
              "PATCH",
              "DELETE",
              "PROPFIND",
              "MKCOL",
              "LOCK",
              "PURGE",
              "SEARCH",
              "REPORT"
            ),
            path: fc.constantFrom("/action", "/plain", "/nope", "/action?x=1"),
            cookie: optional(cookieHeader),
            origin: optional(
              fc.oneof(
                fc.constantFrom(url, url.replace("http:", "https:"), "null", "https://evil.example"),
                headerText(30)
              )
            ),
            site: optional(fc.oneof(fc.constantFrom("same-origin", "same-site", "cross-site", "none"), headerText(10))),
            proto: optional(fc.constantFrom("https", "http", "https, http")),
            csrf: optional(tokenValue),
            type: optional(fc.oneof(
              fc.constantFrom(
                "application/x-www-form-urlencoded",
                "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
                "text/plain",
                "application/json",
                "multipart/form-data; boundary=x"
              ),
              headerText(20)
            )),
            body: optional(fc.oneof(
              tokenValue.map((t) => `_csrf=${encodeURIComponent(t)}`),
              fc.tuple(fc.nat(6000), tokenValue).map(([n, t]) => `pad=${"x".repeat(n)}&_csrf=${encodeURIComponent(t)}`),
              headerText(200)
            )),
            chunked: fc.boolean()
          }).map((r) => ({
            method: r.method,
            path: r.path,
            headers: [
              ["host", new URL(url).host],
              ...Object.entries({
                cookie: r.cookie,
                origin: r.origin,
                "sec-fetch-site": r.site,
                "x-forwarded-proto": r.proto,
                "x-csrf-token": r.csrf,
                "content-type": r.type
              }).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const]))
            ],
            body: r.body,
            chunked: r.chunked
          }))

          const counts = { cases: 0, accepted: 0, byStatus: new Map<number, number>() }
          yield* Effect.promise(() =>
            checkAsync(fc.asyncProperty(request, async (c) => {
              const reply = await send(url, c)
              counts.cases++
              counts.byStatus.set(reply.status, (counts.byStatus.get(reply.status) ?? 0) + 1)
              if (CsrfInternal.isUnsafeMethod(c.method) && c.path.startsWith("/action") && reply.status === 200) {
                counts.accepted++
              }
              assert.isBelow(reply.status, 500, `a ${reply.status}`)
              for (const s of secrets) assert.notInclude(reply.text, s, "a secret in a response")
              const dump = recorder.dump()
              recorder.clear()
              for (const s of secrets) assert.notInclude(dump, s, "a secret in a span or log line")
              assert.notMatch(dump, /\b(Die|defect|Interrupt)\b/, "a defect was logged")
            }))
          )
          return `Security.fuzz (${name}): ${counts.cases} requests, by status ${
            JSON.stringify([...counts.byStatus].sort())
          }, ${counts.accepted} unsafe requests accepted`
        }).pipe(Effect.scoped)
      )
      return Effect.flatMap(fuzzed, (summary) => Effect.log(summary))
    },
    1_200_000
  )
}
