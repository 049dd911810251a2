/**
 * The effect-sessions demo: `npm start`, then open http://127.0.0.1:3000.
 *
 * Environment:
 * - `PORT` (default 3000), `HOST` (default 127.0.0.1);
 * - `SESSION_STORE`: `sqlite` (default, `.data/demo-sessions.db`), `memory`, `postgres`, `mysql`, `redis`
 *   (see demo/store.ts for their settings);
 * - `SESSION_KEYS`: cookie signing keys, comma-separated, newest first (`npx effect-sessions keygen`).
 *   Unset, the demo signs with a random key per process, so sessions do not survive a restart.
 *
 * The cookie keeps the secure defaults (`__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax`): browsers
 * accept `Secure` cookies on http://127.0.0.1 and http://localhost.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpServer from "@effect/platform/HttpServer"
import { Config, Effect, Layer, Option } from "effect"
import { CookieSigner, Expiry, SessionMiddleware } from "effect-sessions"
import { createServer } from "node:http"
import { app } from "./app.js"
import * as DemoStore from "./store.js"

/** Signed cookies: keys from `SESSION_KEYS`, or a fresh random key for this process only. */
const SignerLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const keys = yield* Config.option(CookieSigner.keysConfig("SESSION_KEYS"))
    if (Option.isSome(keys)) return CookieSigner.layer({ keys: keys.value })
    yield* Effect.logWarning(
      "SESSION_KEYS is not set: cookies are signed with a random key, so sessions will not survive a restart " +
        "(generate a key with `npx effect-sessions keygen`)"
    )
    return CookieSigner.layer({ keys: [yield* CookieSigner.generateKey] })
  })
)

const ServerLive = NodeHttpServer.layerConfig(createServer, {
  port: Config.integer("PORT").pipe(
    Config.validate({
      message: "PORT must be a port number (0 picks a free one)",
      validation: (n) => n >= 0 && n <= 65535
    }),
    Config.withDefault(3000)
  ),
  host: Config.withDefault(Config.string("HOST"), "127.0.0.1")
})

const Main = Layer.unwrapEffect(
  Effect.gen(function*() {
    const store = yield* DemoStore.fromEnv
    const announce = Layer.effectDiscard(
      HttpServer.addressFormattedWith((url) => Effect.log(`Listening on ${url} (session store: ${store.description})`))
    )
    return HttpServer.serve(app).pipe(
      Layer.merge(announce),
      Layer.provide(SessionMiddleware.layer({ expiry: Expiry.OnInactivity("1 hour") })),
      Layer.provide(Layer.merge(store.layer, SignerLive)),
      Layer.provide(ServerLive)
    )
  })
)

NodeRuntime.runMain(Layer.launch(Main))
