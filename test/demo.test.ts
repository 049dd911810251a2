/**
 * The demo as `npm start` runs it (`tsx demo/main.ts` in a child process), observed over HTTP.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { CookieSigner } from "effect-sessions"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { demo } from "./support/browser.js"
import { type Client, csrfOf, makeClient, visitsOf } from "./support/http.js"

const COOKIE = "__Host-session"

const sessionJson = (client: Client) =>
  Effect.map(client.get("/api/session"), (reply) => {
    assert.strictEqual(reply.status, 200)
    return JSON.parse(reply.body) as unknown
  })

/** A fresh client holding just this session cookie. */
const withCookie = (url: string, cookie: string): Client => {
  const client = makeClient(url)
  client.jar.set(COOKIE, cookie)
  return client
}

const form = (url: string, fields: Record<string, string>): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", origin: url },
  body: new URLSearchParams(fields).toString()
})

describe("demo", () => {
  it.live("memory store: counter, login (CSRF-protected, new cookie), logout, JSON; no secrets in the log", () =>
    Effect.gen(function*() {
      const d = yield* demo({ SESSION_STORE: "memory", SESSION_KEYS: undefined })
      assert.match(d.startLine, /Listening on http:\/\/127\.0\.0\.1:\d+ \(session store: memory/)
      assert.include(d.output(), "SESSION_KEYS is not set")
      const client = makeClient(d.url)

      const first = yield* client.get("/")
      assert.strictEqual(visitsOf(first), 1)
      const cookie = first.cookie(COOKIE)
      assert.isDefined(cookie)
      assert.include(cookie!.attributes, { httponly: true, secure: true, samesite: "Lax", path: "/" })
      assert.notProperty(cookie!.attributes, "domain")
      const anonymous = client.jar.get(COOKIE)!

      const second = yield* client.get("/")
      assert.strictEqual(visitsOf(second), 2)
      assert.deepStrictEqual(yield* sessionJson(client), { visits: 2, name: null, loggedIn: false })

      // login: refused without the form's token, accepted with it; a new cookie, the data kept
      assert.strictEqual((yield* client.request("/login", form(d.url, { name: "Ada" }))).status, 403)
      const login = yield* client.request("/login", form(d.url, { name: "  Ada ", _csrf: csrfOf(second) }))
      assert.strictEqual(login.status, 303)
      const loggedIn = client.jar.get(COOKIE)!
      assert.notStrictEqual(loggedIn, anonymous)
      assert.deepStrictEqual(yield* sessionJson(client), { visits: 2, name: "Ada", loggedIn: true })
      const page = yield* client.get("/")
      assert.strictEqual(visitsOf(page), 3)
      assert.include(page.body, `<strong id="user">Ada</strong>`)

      // the pre-login cookie is worth nothing now
      assert.deepStrictEqual(yield* sessionJson(withCookie(d.url, anonymous)), {
        visits: 0,
        name: null,
        loggedIn: false
      })

      // logout: a removal cookie; the logged-in cookie no longer works
      const logout = yield* client.request("/logout", form(d.url, { _csrf: csrfOf(page) }))
      assert.strictEqual(logout.status, 303)
      assert.strictEqual(logout.cookie(COOKIE)?.attributes["max-age"], "0")
      assert.isFalse(client.jar.has(COOKIE))
      assert.deepStrictEqual(yield* sessionJson(withCookie(d.url, loggedIn)), {
        visits: 0,
        name: null,
        loggedIn: false
      })

      // no token, signature or session data in anything the demo printed
      for (const value of [anonymous, loggedIn]) {
        const [token, mac] = decodeURIComponent(value).split(".")
        assert.notInclude(d.output(), token)
        assert.notInclude(d.output(), mac)
      }
      assert.notInclude(d.output(), "Ada")
      assert.strictEqual(yield* Effect.promise(() => d.stop()), 0)
    }).pipe(Effect.scoped))

  it.live("default store (SQLite file): sessions survive a restart with SESSION_KEYS; rotation re-issues, a new key revokes", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-demo-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const env = { SESSION_STORE: undefined, SQLITE_FILE: path.join(dir, "sessions.db") }
      const [key1, key2, key3] = [1, 2, 3].map(() => CookieSigner.unsafeGenerateKey())

      const run = <A, E>(keys: string, body: (url: string) => Effect.Effect<A, E>) =>
        Effect.scoped(Effect.gen(function*() {
          const d = yield* demo({ ...env, SESSION_KEYS: keys })
          assert.match(d.startLine, /session store: sqlite/)
          assert.notInclude(d.output(), "SESSION_KEYS is not set")
          for (const key of [key1, key2, key3]) assert.notInclude(d.output(), key)
          return yield* body(d.url)
        }))

      const signedWithKey1 = yield* run(key1, (url) =>
        Effect.gen(function*() {
          const at = makeClient(url)
          assert.strictEqual(visitsOf(yield* at.get("/")), 1)
          const page = yield* at.get("/")
          assert.strictEqual(visitsOf(page), 2)
          assert.strictEqual(
            (yield* at.request("/login", form(url, { name: "Grace", _csrf: csrfOf(page) }))).status,
            303
          )
          return at.jar.get(COOKIE)!
        }))
      assert.isTrue(fs.existsSync(env.SQLITE_FILE))

      // a new first key, the old one still listed: the session survives and its cookie is re-issued
      const signedWithKey2 = yield* run(`${key2},${key1}`, (url) =>
        Effect.gen(function*() {
          const at = withCookie(url, signedWithKey1)
          const reply = yield* at.get("/api/session")
          assert.deepStrictEqual(JSON.parse(reply.body), { visits: 2, name: "Grace", loggedIn: true })
          const reissued = reply.cookie(COOKIE)
          assert.isDefined(reissued, "expected the cookie re-issued under the new key")
          assert.notStrictEqual(encodeURIComponent(reissued!.value), signedWithKey1)
          assert.strictEqual(reissued!.value.split(".")[0], decodeURIComponent(signedWithKey1).split(".")[0])
          return at.jar.get(COOKIE)!
        }))

      // keys replaced: every session is revoked at once
      yield* run(key3, (url) =>
        Effect.gen(function*() {
          for (const cookie of [signedWithKey1, signedWithKey2]) {
            assert.deepStrictEqual(yield* sessionJson(withCookie(url, cookie)), {
              visits: 0,
              name: null,
              loggedIn: false
            })
          }
        }))
    }).pipe(Effect.scoped))
})
