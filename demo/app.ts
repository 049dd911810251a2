/**
 * The demo's routes: a page with a visit counter, a login form and a logout button (both POST,
 * CSRF-protected), the logged-in user's sessions ("your sessions", with "log out other sessions"), and the
 * session as JSON at `GET /api/session`. The demo has no passwords: the name typed at login is the user id.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Schema } from "effect"
import { Csrf, Session, SessionIndex, SessionMiddleware } from "effect-sessions"

const Visits = Session.key("visits", Schema.Number)
const User = Session.key("user", Schema.String)

const LoginForm = Schema.Struct({
  name: Schema.Trim.pipe(Schema.nonEmptyString(), Schema.maxLength(40))
})

const noStore = { headers: { "cache-control": "no-store" } } as const

const home = Effect.gen(function*() {
  const visits = (yield* Visits.getOrElse(() => 0)) + 1
  yield* Visits.set(visits)
  const user = yield* User
  const csrf = yield* Csrf.token
  const sessions = yield* SessionIndex.mine
  return HttpServerResponse.html(page({ visits, user, csrf, sessions })).pipe(
    HttpServerResponse.setHeaders(noStore.headers)
  )
})

const login = Effect.gen(function*() {
  const form = yield* HttpServerRequest.schemaBodyUrlParams(LoginForm)
  yield* User.set(form.name)
  yield* Session.cycleId // a new token on login: a token planted before login is worth nothing after it
  yield* Session.bindUser(form.name) // listed under the user, with the time and the browser's User-Agent
  return HttpServerResponse.redirect("/", { status: 303 })
}).pipe(
  Effect.catchTag(
    "ParseError",
    () => Effect.succeed(HttpServerResponse.text("Please enter a name (1 to 40 characters).", { status: 400 }))
  )
)

const logout = Effect.as(Session.flush, HttpServerResponse.redirect("/logged-out", { status: 303 }))

/** Ends every other session of the user: their next request finds no session. */
const logoutOthers = Effect.as(SessionIndex.revokeOthers, HttpServerResponse.redirect("/", { status: 303 }))

/** Touches no session, so it sets no cookie: after a logout the browser holds none. */
const loggedOut = Effect.succeed(
  HttpServerResponse.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Logged out</title></head>
<body><h1>Logged out</h1><p>Your session has ended. <a href="/">Start a new one</a>.</p></body></html>`)
)

const sessionJson = Effect.gen(function*() {
  const visits = yield* Visits.getOrElse(() => 0)
  const name = Option.getOrNull(yield* User)
  return HttpServerResponse.unsafeJson({ visits, name, loggedIn: name !== null }, noStore)
})

/** The app: every route sees the session; unsafe methods pass the CSRF check first. */
export const app = HttpRouter.empty.pipe(
  HttpRouter.get("/", home),
  HttpRouter.post("/login", login),
  HttpRouter.post("/logout", logout),
  HttpRouter.post("/sessions/logout-others", logoutOthers),
  HttpRouter.get("/logged-out", loggedOut),
  HttpRouter.get("/api/session", sessionJson),
  HttpRouter.use(Csrf.middleware()),
  HttpRouter.use(SessionMiddleware.middleware)
)

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const time = (ms: number): string => new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC"

/** The user's sessions: device and times; everything shown is escaped (the User-Agent is the browser's). */
const sessionsTable = (sessions: ReadonlyArray<SessionIndex.MineEntry>, csrf: string): string => {
  const rows = sessions.map((s) =>
    `<tr class="session${s.current ? " current" : ""}">
        <td>${escapeHtml(s.device.userAgent ?? "unknown browser")}${
      s.current ? " <strong>(this browser)</strong>" : ""
    }</td>
        <td>${time(s.authenticatedAt)}</td><td>${time(s.refreshedAt)}</td><td>${time(s.expiresAt)}</td>
      </tr>`
  ).join("\n      ")
  const others = sessions.some((s) => !s.current)
    ? `<form method="post" action="/sessions/logout-others">${csrf}<button type="submit">Log out other sessions</button></form>`
    : ""
  return `<h2>Your sessions</h2>
    <table id="sessions">
      <tr><th>Browser</th><th>Signed in</th><th>Last active</th><th>Expires</th></tr>
      ${rows}
    </table>
    ${others}`
}

const page = (props: {
  readonly visits: number
  readonly user: Option.Option<string>
  readonly csrf: string
  readonly sessions: ReadonlyArray<SessionIndex.MineEntry>
}) => {
  const csrf = `<input type="hidden" name="${Csrf.DEFAULT_FIELD}" value="${escapeHtml(props.csrf)}">`
  const account = Option.match(props.user, {
    onNone: () =>
      `<form method="post" action="/login">${csrf}
        <label>Name <input name="name" required maxlength="40" autocomplete="username"></label>
        <button type="submit">Log in</button>
      </form>`,
    onSome: (name) =>
      `<p>Logged in as <strong id="user">${escapeHtml(name)}</strong>.</p>
      <form method="post" action="/logout">${csrf}<button type="submit">Log out</button></form>
      ${sessionsTable(props.sessions, csrf)}`
  })
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>effect-sessions demo</title></head>
<body>
  <h1>effect-sessions demo</h1>
  <p>You have visited this page <strong id="visits">${props.visits}</strong> time${
    props.visits === 1 ? "" : "s"
  } in this session.</p>
  ${account}
  <p><a href="/api/session">/api/session</a></p>
</body>
</html>`
}
