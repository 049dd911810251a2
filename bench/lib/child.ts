/**
 * Child processes for the benchmarks: each HTTP server (and the memory benchmark) runs in its own
 * Node process, loaded through tsx, and talks to the runner over the IPC channel with small
 * `{ type, ... }` messages.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"

export interface Message {
  readonly type: string
  readonly [key: string]: unknown
}

export interface Child {
  readonly process: ChildProcess
  /** Sends a message to the child. */
  readonly send: (message: Message) => void
  /** Waits for the next message of that type (rejects when the child exits first or after `timeoutMs`). */
  readonly next: <A extends Message = Message>(type: string, timeoutMs?: number) => Promise<A>
  /** Waits for the child to exit, killing it after `graceMs`. */
  readonly stop: (graceMs?: number) => Promise<number | null>
}

/** The absolute path of a file next to `import.meta.url`. */
export const here = (metaUrl: string, relative: string): string => fileURLToPath(new URL(relative, metaUrl))

/** Starts `script` (a .ts file) in a Node child process with tsx and an IPC channel. */
export const spawnChild = (
  script: string,
  options?: {
    readonly args?: ReadonlyArray<string>
    readonly env?: Record<string, string>
    readonly nodeArgs?: ReadonlyArray<string>
  }
): Child => {
  const child = fork(script, [...(options?.args ?? [])], {
    execArgv: [...(options?.nodeArgs ?? []), "--import", "tsx"],
    env: { ...process.env, ...options?.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const inbox: Array<Message> = []
  const waiters: Array<{ type: string; resolve: (m: Message) => void; reject: (e: Error) => void }> = []
  let exited: number | null | undefined = undefined
  child.on("message", (raw) => {
    const message = raw as Message
    const i = waiters.findIndex((w) => w.type === message.type)
    if (i >= 0) waiters.splice(i, 1)[0].resolve(message)
    else inbox.push(message)
  })
  const exit = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      exited = code
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`${script} exited (code ${code}) before sending "${w.type}"`))
      }
      resolve(code)
    })
  })
  return {
    process: child,
    send: (message) => {
      if (exited === undefined && child.connected) child.send(message)
    },
    next: <A extends Message>(type: string, timeoutMs = 60_000) =>
      new Promise<A>((resolve, reject) => {
        const i = inbox.findIndex((m) => m.type === type)
        if (i >= 0) return resolve(inbox.splice(i, 1)[0] as A)
        if (exited !== undefined) return reject(new Error(`${script} exited (code ${exited}) before sending "${type}"`))
        const timer = setTimeout(() => {
          const w = waiters.findIndex((x) => x.resolve === done)
          if (w >= 0) waiters.splice(w, 1)
          reject(new Error(`${script}: no "${type}" message within ${timeoutMs} ms`))
        }, timeoutMs)
        const done = (m: Message) => {
          clearTimeout(timer)
          resolve(m as A)
        }
        waiters.push({
          type,
          resolve: done,
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          }
        })
      }),
    stop: async (graceMs = 10_000) => {
      if (exited !== undefined) return exited
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const code = await exit
      clearTimeout(timer)
      return code
    }
  }
}

/** In a child: sends a message to the parent (no-op without an IPC channel). */
export const toParent = (message: Message): void => {
  if (process.send !== undefined) process.send(message)
}

/** In a child: calls `handler` for each message of that type from the parent. */
export const onParent = (type: string, handler: (message: Message) => void | Promise<void>): void => {
  process.on("message", (raw) => {
    const message = raw as Message
    if (message.type === type) void handler(message)
  })
}
