/**
 * Test support for the demo and the browser tests: start the demo as a child process (as
 * `npm start` does) and launch the machine's Chromium through playwright-core.
 *
 * A missing Chromium skips the browser suite loudly, except when `CI` is set: then it fails.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Browser, chromium } from "playwright-core"
import { describeRequirement } from "./services.js"

const root = path.resolve(import.meta.dirname, "../..")

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

const launchArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync"
]

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: chromiumPath, args: launchArgs })

/**
 * `describeBrowser(name, body)` runs `body` inside a `describe` when Chromium is installed;
 * otherwise it skips loudly, or, with `CI` set, registers a failing test.
 */
export const describeBrowser = (name: string, body: () => void): void =>
  describeRequirement(name, fs.existsSync(chromiumPath), `no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`, body)

export interface Demo {
  /** The URL the demo logged at start. */
  readonly url: string
  /** The demo's log line at start. */
  readonly startLine: string
  /** Everything the demo wrote so far, stdout and stderr. */
  readonly output: () => string
  /** Stops the demo (SIGTERM) and waits for it to exit; resolves with its exit code. */
  readonly stop: () => Promise<number | null>
}

/**
 * `startDemo(env)` runs `tsx demo/main.ts` on a free port (PORT=0) with the given environment and
 * resolves once it has logged its URL. It rejects with the demo's output if it exits first.
 */
export const startDemo = (env: Record<string, string | undefined> = {}): Promise<Demo> =>
  new Promise((resolve, reject) => {
    let out = ""
    const child: ChildProcess = spawn(
      process.execPath,
      [path.join(root, "node_modules/tsx/dist/cli.mjs"), path.join(root, "demo/main.ts")],
      {
        cwd: root,
        env: { ...process.env, PORT: "0", HOST: "127.0.0.1", NO_COLOR: "1", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      return exited
    }
    let started = false
    const onData = (chunk: Buffer) => {
      out += chunk.toString("utf8")
      if (started) return
      const line = out.split("\n").find((l) => /Listening on http:\/\/\S+/.test(l))
      if (line === undefined) return
      started = true
      clearTimeout(timer)
      const url = /Listening on (http:\/\/[^\s"]+)/.exec(line)![1].replace(/\/$/, "")
      resolve({ url, startLine: line, output: () => out, stop })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    const timer = setTimeout(() => {
      void stop().then(() => reject(new Error(`demo did not start in time; output:\n${out}`)))
    }, 45_000)
    void exited.then((code) => {
      if (!started) {
        clearTimeout(timer)
        reject(new Error(`demo exited with ${code} before it started; output:\n${out}`))
      }
    })
  })

/** `demo(env)` is `startDemo(env)` for the life of the scope. */
export const demo = (env: Record<string, string | undefined> = {}): Effect.Effect<Demo, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => startDemo(env)), (d) => Effect.promise(() => d.stop()))
