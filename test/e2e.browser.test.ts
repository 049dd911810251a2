/**
 * The demo in a real Chromium, on its default store (SQLite under .data/), as `npm start` runs it.
 */
import { afterAll, assert, beforeAll, it } from "@effect/vitest"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Browser, BrowserContext, Cookie, Page } from "playwright-core"
import { type Demo, describeBrowser, launchChromium, startDemo } from "./support/browser.js"

const COOKIE = "__Host-session"

describeBrowser("demo in Chromium", () => {
  let browser: Browser
  let demo: Demo

  beforeAll(async () => {
    ;[browser, demo] = await Promise.all([
      launchChromium(),
      startDemo({ SESSION_STORE: undefined, SQLITE_FILE: undefined })
    ])
  })

  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
  })

  const sessionCookie = async (context: BrowserContext): Promise<Cookie | undefined> =>
    (await context.cookies(demo.url)).find((c) => c.name === COOKIE)

  const visits = async (page: Page) => Number(await page.locator("#visits").textContent())

  const sessionJson = async (page: Page) => {
    const response = await page.goto(`${demo.url}/api/session`)
    assert.strictEqual(response?.status(), 200)
    return JSON.parse(await response!.text()) as unknown
  }

  /** `/api/session` as seen by a new browser profile holding only `cookie` (taken from another profile). */
  const sessionJsonWith = async (cookie: Cookie) => {
    const context = await browser.newContext()
    await context.addCookies([
      {
        name: cookie.name,
        value: cookie.value,
        domain: "127.0.0.1",
        path: "/",
        httpOnly: true,
        secure: true,
        sameSite: "Lax"
      }
    ])
    const json = await sessionJson(await context.newPage())
    await context.close()
    return json
  }

  /** Logs in through the page's form (the page must show it). */
  const login = async (page: Page, name: string) => {
    await page.fill("input[name=name]", name)
    await page.click("button:has-text('Log in')")
    await page.locator("#user").waitFor()
  }

  /** A new browser profile, logged in as `name` through the page's form. */
  const loggedIn = async (name: string) => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(demo.url)
    await login(page, name)
    return { context, page }
  }

  it("runs on the default store, SQLite under .data/", () => {
    assert.match(demo.startLine, /session store: sqlite \(\.data\/demo-sessions\.db\)/)
  })

  it("the counter survives reloads; the session cookie is HttpOnly, so document.cookie does not show it", async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(demo.url)
    assert.strictEqual(await visits(page), 1)
    await page.reload()
    assert.strictEqual(await visits(page), 2)
    await page.reload()
    assert.strictEqual(await visits(page), 3)

    assert.notInclude(await page.evaluate(() => document.cookie), COOKIE)
    const cookie = await sessionCookie(context)
    assert.isDefined(cookie)
    assert.include(cookie!, { httpOnly: true, secure: true, sameSite: "Lax", path: "/", domain: "127.0.0.1" })

    const other = await (await browser.newContext()).newPage()
    await other.goto(demo.url)
    assert.strictEqual(await visits(other), 1, "another browser profile has its own session")
    await other.context().close()
    await context.close()
  })

  it("login changes the cookie value and keeps the session's data; the pre-login cookie is dead", async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(demo.url)
    const before = (await sessionCookie(context))!
    assert.isDefined(before)

    await login(page, "Ada Lovelace")
    assert.strictEqual(await page.locator("#user").textContent(), "Ada Lovelace")
    assert.strictEqual(await visits(page), 2)
    const after = (await sessionCookie(context))!
    assert.isDefined(after)
    assert.notStrictEqual(after.value, before.value)
    assert.deepStrictEqual(await sessionJson(page), { visits: 2, name: "Ada Lovelace", loggedIn: true })

    assert.deepStrictEqual(await sessionJsonWith(after), { visits: 2, name: "Ada Lovelace", loggedIn: true })
    assert.deepStrictEqual(await sessionJsonWith(before), { visits: 0, name: null, loggedIn: false })
    await context.close()
  })

  it("logout removes the cookie and ends the session on the server", async () => {
    const { context, page } = await loggedIn("Grace")
    const cookie = (await sessionCookie(context))!
    assert.isDefined(cookie)

    await Promise.all([page.waitForURL(`${demo.url}/logged-out`), page.click("button:has-text('Log out')")])
    assert.isUndefined(await sessionCookie(context))

    assert.deepStrictEqual(await sessionJsonWith(cookie), { visits: 0, name: null, loggedIn: false })
    await context.close()
  })

  it("a form posted from a sibling origin (same site, so the Lax cookie is sent) is refused with 403", async () => {
    const { context, page } = await loggedIn("Victim")
    const token = await page.locator("input[name=_csrf]").first().getAttribute("value")
    assert.isString(token)

    // another origin on the same site: 127.0.0.1 on another port
    const attacker = http.createServer((_req, res) => {
      res.setHeader("content-type", "text/html")
      res.end(
        `<form method="post" action="${demo.url}/logout"><input type="hidden" name="_csrf" value="${token}"></form>
        <script>document.forms[0].submit()</script>`
      )
    })
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve))
    try {
      const response = page.waitForResponse(`${demo.url}/logout`)
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`)
      const refused = await response
      assert.include(
        (await refused.request().allHeaders())["cookie"] ?? "",
        `${COOKIE}=`,
        "SameSite=Lax sends the cookie"
      )
      assert.strictEqual(refused.status(), 403)
      assert.strictEqual(await refused.text(), "Forbidden")
    } finally {
      await new Promise((resolve) => attacker.close(resolve))
    }
    assert.deepStrictEqual(await sessionJson(page), { visits: 2, name: "Victim", loggedIn: true })
    await context.close()
  })

  it("one user in two browsers: each lists both sessions; logging out the others from one ends the other", async () => {
    // a name of its own: the SQLite file keeps the sessions of earlier runs
    const name = `Pat ${Date.now().toString(36)}`
    const laptop = await loggedIn(name)
    const phone = await loggedIn(name)
    await laptop.page.reload()
    const rows = laptop.page.locator("#sessions tr.session")
    assert.strictEqual(await rows.count(), 2)
    assert.strictEqual(await laptop.page.locator("#sessions tr.session.current").count(), 1)
    assert.include(await laptop.page.locator("#sessions tr.session.current").textContent(), "(this browser)")
    assert.include(await rows.first().textContent(), "HeadlessChrome")

    await Promise.all([
      laptop.page.waitForURL(`${demo.url}/`),
      laptop.page.click("button:has-text('Log out other sessions')")
    ])
    assert.strictEqual(await laptop.page.locator("#sessions tr.session").count(), 1)
    assert.strictEqual(await laptop.page.locator("#user").textContent(), name)

    // the other browser's next request finds no session: it is logged out
    await phone.page.reload()
    assert.strictEqual(await phone.page.locator("#user").count(), 0)
    assert.strictEqual(await phone.page.locator("input[name=name]").count(), 1)
    // the reload started a new session of its own
    assert.deepStrictEqual(await sessionJson(phone.page), { visits: 1, name: null, loggedIn: false })
    await laptop.context.close()
    await phone.context.close()
  })
})
