/**
 * The package as a user gets it: built with `tsconfig.build.json`, packed with `npm pack`, installed from
 * the tarball beside only its plain peers (`effect`, `@effect/platform`; no optional peer) in a temporary
 * directory, and imported with plain node. Nothing is written inside the repository.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import ts from "typescript"

const repo = path.resolve(import.meta.dirname, "..")
const PEERS = ["effect@3.22.4", "@effect/platform@0.97.2"]
const manifest = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as {
  readonly exports: Record<string, { readonly types: string; readonly default: string } | string | null>
  readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
}
/** ioredis, mongodb, @effect/sql, ...: none may be installed along with the package. */
const OPTIONAL_PEERS = Object.entries(manifest.peerDependenciesMeta).filter(([, meta]) => meta.optional === true).map((
  [name]
) => name)
const NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"]

interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end; never rejects. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<Output> =>
  new Promise((resolve) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })

/** Runs a command and fails (with its output) unless it exits 0. */
const ok = async (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const out = await run(command, args, cwd)
  if (out.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${out.code}\n${out.stdout.slice(-4000)}\n${out.stderr.slice(-4000)}`
    )
  }
  return out.stdout
}

/** Runs an ES module script with node inside the app directory. */
const node = (cwd: string, script: string): Promise<Output> =>
  run(process.execPath, ["--input-type=module", "--eval", script], cwd)

const listFiles = (dir: string, suffix: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? listFiles(full, suffix) : entry.name.endsWith(suffix) ? [full] : []
  })

/** The lines of every `any` keyword in a declaration file (comments and strings are not code to the parser). */
const anyKeywords = (file: string): Array<number> => {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  const lines: Array<number> = []
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.AnyKeyword) {
      lines.push(source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return lines
}

/** The namespaces `src/index.ts` re-exports. */
const indexNamespaces = (): Array<string> =>
  Array.from(
    fs.readFileSync(path.join(repo, "src/index.ts"), "utf8").matchAll(/^export \* as (\w+) from/gm),
    (m) => m[1]!
  )

describe("package", () => {
  let tmp = ""
  let app = ""
  let packed: Array<string> = []
  let installed = ""

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-package-"))
    const stage = path.join(tmp, "stage")
    app = path.join(tmp, "app")
    fs.mkdirSync(stage)
    fs.mkdirSync(app)
    // The stage is a copy of what the build reads, so the build lays out `dist/` (and its source maps) as in a checkout.
    for (const file of fs.readdirSync(repo)) {
      if (/^(package\.json|tsconfig(\.build)?\.json)$|^(README|LICENSE)/i.test(file)) {
        fs.copyFileSync(path.join(repo, file), path.join(stage, file))
      }
    }
    for (const dir of ["src", "bin"]) {
      if (fs.existsSync(path.join(repo, dir))) {
        fs.cpSync(path.join(repo, dir), path.join(stage, dir), { recursive: true })
      }
    }
    fs.symlinkSync(path.join(repo, "node_modules"), path.join(stage, "node_modules"), "dir")
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))

    // `npm run build` without type checking (`npm test` type-checks first), beside the peers' install.
    await Promise.all([
      ok(process.execPath, [
        path.join(repo, "node_modules/typescript/bin/tsc"),
        "-p",
        "tsconfig.build.json",
        "--noCheck"
      ], stage),
      ok("npm", ["install", ...PEERS, ...NPM_FLAGS], app)
    ])
    const pack = JSON.parse(await ok("npm", ["pack", "--json", "--pack-destination", tmp], stage)) as ReadonlyArray<{
      readonly filename: string
      readonly files: ReadonlyArray<{ readonly path: string }>
    }>
    packed = pack[0]!.files.map((f) => f.path)
    await ok("npm", ["install", path.join(tmp, pack[0]!.filename), ...NPM_FLAGS], app)
    installed = path.join(app, "node_modules", "effect-sessions")
  }, 300_000)

  afterAll(() => {
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("packs the built modules with their declarations, and no tests, benchmarks or demo", () => {
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      if (target === null || typeof target === "string") continue
      const module = subpath === "." ? "index" : subpath.slice(2)
      if (!fs.existsSync(path.join(repo, "src", `${module}.ts`))) continue // not written yet
      assert.include(packed, target.default.slice(2), `${subpath} has its module`)
      assert.include(packed, target.types.slice(2), `${subpath} has its declarations`)
    }
    assert.include(packed, "package.json")
    assert.deepStrictEqual(packed.filter((p) => /^(test|bench|demo|node_modules)\//.test(p)), [])
  })

  it("ships the library's source maps with their sources", () => {
    const maps = listFiles(path.join(installed, "dist/src"), ".map")
    assert.isAbove(maps.length, 10)
    const missing: Array<string> = []
    for (const map of maps) {
      const { sources } = JSON.parse(fs.readFileSync(map, "utf8")) as { readonly sources: ReadonlyArray<string> }
      for (const source of sources) {
        const resolved = path.resolve(path.dirname(map), source)
        if (!resolved.startsWith(installed + path.sep) || !fs.existsSync(resolved)) {
          missing.push(path.relative(installed, map))
        }
      }
    }
    assert.deepStrictEqual(missing, [])
  })

  it("installs beside effect and @effect/platform only: no optional peer comes along", () => {
    assert.isTrue(fs.existsSync(path.join(installed, "package.json")))
    assert.isTrue(fs.existsSync(path.join(app, "node_modules", "lru-cache")))
    assert.includeMembers(OPTIONAL_PEERS, ["ioredis", "mongodb", "@effect/sql"])
    for (const peer of OPTIONAL_PEERS) {
      assert.isFalse(fs.existsSync(path.join(app, "node_modules", peer)), `${peer} is not installed`)
    }
  })

  it("imports with node, exposes its namespaces and runs a store on the app's effect", async () => {
    const expected = indexNamespaces()
    assert.includeMembers(expected, [
      "SessionStore",
      "SessionToken",
      "SessionId",
      "StoreError",
      "LruStore",
      "CachingStore"
    ])
    const out = await node(
      app,
      `
      import * as Sessions from "effect-sessions"
      import { Clock, Effect, Option } from "effect"
      const { CachingStore, LruStore, MemoryStore, SessionData, SessionId, SessionStore, SessionToken } = Sessions
      const program = Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const id = SessionId.fromToken(yield* SessionToken.generate)
        const now = yield* Clock.currentTimeMillis
        yield* store.create({ id, data: SessionData.fromEntries([["n", 1]]), expiresAt: now + 60000, version: 1 })
        const saved = yield* store.save({ id, data: SessionData.fromEntries([["n", 2]]), expiresAt: now + 60000, version: 1 })
        const found = yield* store.load(id)
        return { saved: saved.version, found: Option.getOrNull(Option.map(found, (r) => r.data.n)) }
      })
      const layer = CachingStore.layer({ cache: LruStore.layer(), store: MemoryStore.layer() })
      const result = await Effect.runPromise(Effect.provide(program, layer))
      const namespaces = Object.fromEntries(Object.entries(Sessions).map(([k, v]) => [k, typeof v === "object" && v !== null ? Object.keys(v).length : -1]))
      console.log(JSON.stringify({ namespaces, result }))
      `
    )
    assert.strictEqual(out.code, 0, out.stderr)
    const report = JSON.parse(out.stdout) as { namespaces: Record<string, number>; result: unknown }
    for (const name of expected) {
      assert.isAbove(report.namespaces[name] ?? -1, 0, `namespace ${name} is exposed with members`)
    }
    assert.deepStrictEqual(report.result, { saved: 2, found: 2 })
  })

  it("closes ./internal/*: a module that is in the package cannot be imported", async () => {
    const internal = fs.readdirSync(path.join(installed, "dist/src/internal")).find((f) => f.endsWith(".js"))
    assert.isDefined(internal)
    const out = await node(
      app,
      `import("effect-sessions/internal/${internal}").then(() => console.log("imported"), (e) => console.log(e.code))`
    )
    assert.strictEqual(out.stdout.trim(), "ERR_PACKAGE_PATH_NOT_EXPORTED")
  })

  it("declares no any", () => {
    const files = listFiles(path.join(installed, "dist"), ".d.ts")
    assert.isAbove(files.length, 10)
    const loose: Array<string> = []
    for (const file of files) {
      for (const line of anyKeywords(file)) loose.push(`${path.relative(installed, file)}:${line}`)
    }
    assert.deepStrictEqual(loose, [])
  })

  it("runs its command from the tarball", async (ctx) => {
    if (!packed.includes("dist/bin/effect-sessions.js")) {
      ctx.skip()
      return
    }
    const out = await run(path.join(app, "node_modules/.bin/effect-sessions"), ["keygen"], app)
    assert.strictEqual(out.code, 0, out.stderr)
    assert.strictEqual(Buffer.from(out.stdout.trim(), "base64").length, 32)
  })
})

describe("anyKeywords", () => {
  it("finds any in type positions only, constraints included", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "effect-sessions-any-")), "probe.d.ts")
    fs.writeFileSync(
      file,
      [
        "/** any comment */ // any",
        "export declare const a: string",
        "export declare const b: \"any\"",
        "export declare const c: any",
        "export declare const d: <A extends Record<string, any>>(a: A) => A",
        "export declare const e: Array<any>"
      ].join("\n")
    )
    try {
      assert.deepStrictEqual(anyKeywords(file), [4, 5, 6])
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true })
    }
  })
})
