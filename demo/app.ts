/**
 * The demo's routes: a page with a visit counter, a login form and a logout button (both POST,
 * CSRF-protected), and the session as JSON at `GET /api/session`.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Schema } from "effect"
import { Csrf, Session, SessionMiddleware } from "effect-sessions"

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
  return HttpServerResponse.html(page({ visits, user, csrf })).pipe(HttpServerResponse.setHeaders(noStore.headers))
})

const login = Effect.gen(function*() {
  const form = yield* HttpServerRequest.schemaBodyUrlParams(LoginForm)
  yield* User.set(form.name)
  yield* Session.cycleId // a new token on login: a token planted before login is worth nothing after it
  return HttpServerResponse.redirect("/", { status: 303 })
}).pipe(
  Effect.catchTag(
    "ParseError",
    () => Effect.succeed(HttpServerResponse.text("Please enter a name (1 to 40 characters).", { status: 400 }))
  )
)

const logout = Effect.as(Session.flush, HttpServerResponse.redirect("/logged-out", { status: 303 }))

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
  HttpRouter.get("/logged-out", loggedOut),
  HttpRouter.get("/api/session", sessionJson),
  HttpRouter.use(Csrf.middleware()),
  HttpRouter.use(SessionMiddleware.middleware)
)

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const page = (props: { readonly visits: number; readonly user: Option.Option<string>; readonly csrf: string }) => {
  const csrf = `<input type="hidden" name="${Csrf.DEFAULT_FIELD}" value="${escapeHtml(props.csrf)}">`
  const account = Option.match(props.user, {
    onNone: () =>
      `<form method="post" action="/login">${csrf}
        <label>Name <input name="name" required maxlength="40" autocomplete="username"></label>
        <button type="submit">Log in</button>
      </form>`,
    onSome: (name) =>
      `<p>Logged in as <strong id="user">${escapeHtml(name)}</strong>.</p>
      <form method="post" action="/logout">${csrf}<button type="submit">Log out</button></form>`
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
