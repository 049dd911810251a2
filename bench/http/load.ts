/**
 * The HTTP load generator: autocannon with one session per connection.
 *
 * autocannon is not a browser: it replays the headers we give it and resets its per-client context
 * whenever the request list loops. So each connection gets its own state object (its cookies and
 * the last counter it saw), the request is rebuilt before each send with that connection's `Cookie`
 * header, and every response is checked:
 * - `count` route: the body is the session's counter; per connection it must go 1, 2, 3…
 * - `read` route: the connection's first request goes to `/count` (creating the session, body 1),
 *   every later one to `/read`, whose body must stay 1 and whose cookie must stay set.
 * Any other status, body or a lost cookie makes the run void (for the no-session baseline there is
 * no session to check: only the status is).
 */
import autocannon from "autocannon"

export interface LoadOptions {
  readonly port: number
  readonly route: "count" | "read"
  readonly connections: number
  readonly seconds: number
  /** Check counters per connection (false for the no-session baseline). */
  readonly sessions: boolean
}

export interface LoadResult {
  readonly requests: number
  readonly seconds: number
  readonly requestsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
  /** Connections that got a session cookie. */
  readonly sessions: number
  readonly valid: boolean
  readonly voidReason?: string | undefined
}

interface ConnectionState {
  readonly cookies: Map<string, string>
  cookieHeader: string
  last: number
  responses: number
  problem: string | undefined
}

const setCookies = (state: ConnectionState, header: string | Array<string> | undefined): void => {
  if (header === undefined) return
  for (const line of Array.isArray(header) ? header : [header]) {
    const pair = line.split(";", 1)[0]
    const eq = pair.indexOf("=")
    if (eq <= 0) continue
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    const removed = value === "" || /;\s*max-age=0\s*(;|$)/i.test(line)
    if (removed) state.cookies.delete(name)
    else state.cookies.set(name, value)
  }
  state.cookieHeader = Array.from(state.cookies, ([n, v]) => `${n}=${v}`).join("; ")
}

const headerOf = (headers: Record<string, unknown> | undefined, name: string): string | Array<string> | undefined => {
  if (headers === undefined) return undefined
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key] as string | Array<string>
  }
  return undefined
}

/** Runs autocannon against `127.0.0.1:port` for `seconds`, each connection with a fresh session. */
export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const states: Array<ConnectionState> = []
    const check = (state: ConnectionState, status: number, body: string, headers: Record<string, unknown>) => {
      state.responses++
      if (state.problem !== undefined) return
      if (status !== 200) {
        state.problem = `HTTP ${status} after ${state.responses - 1} responses`
        return
      }
      if (!options.sessions) return
      setCookies(state, headerOf(headers, "set-cookie"))
      const n = Number(body)
      const expected = options.route === "count" ? state.last + 1 : 1
      if (n !== expected) {
        state.problem = `counter ${body.slice(0, 40)} where ${expected} was expected (response ${state.responses})`
        return
      }
      if (state.cookies.size === 0) {
        state.problem = `no session cookie after response ${state.responses}`
        return
      }
      state.last = n
    }
    const instance = autocannon({
      url: `http://127.0.0.1:${options.port}`,
      connections: options.connections,
      duration: options.seconds,
      pipelining: 1,
      timeout: 10,
      setupClient: (client) => {
        const state: ConnectionState = {
          cookies: new Map(),
          cookieHeader: "",
          last: 0,
          responses: 0,
          problem: undefined
        }
        states.push(state)
        client.setRequests([{
          method: "GET",
          setupRequest: (request) => {
            const path = options.route === "read" && state.last > 0 ? "/read" : "/count"
            return state.cookieHeader === ""
              ? { ...request, path, headers: {} }
              : { ...request, path, headers: { cookie: state.cookieHeader } }
          },
          onResponse: (status, body, _context, headers) =>
            check(state, status, body, headers as Record<string, unknown>)
        }])
      }
    }, (error, result) => {
      if (error !== null && error !== undefined) return reject(error)
      const problems = states.filter((s) => s.problem !== undefined)
      const silent = states.filter((s) => s.responses === 0).length
      const sessions = states.filter((s) => s.cookies.size > 0).length
      const voidReason = problems.length > 0
        ? `${problems.length} of ${states.length} connections broke the sequence; first: ${problems[0].problem}`
        : result.errors > 0
        ? `${result.errors} connection errors (${result.timeouts} timeouts)`
        : silent > 0
        ? `${silent} connections got no response`
        : undefined
      resolve({
        requests: result.requests.total,
        seconds: result.duration,
        requestsPerSec: result.requests.total / result.duration,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        errors: result.errors,
        non2xx: result.non2xx,
        sessions,
        valid: voidReason === undefined,
        voidReason
      })
    })
    instance.on("error", reject)
  })
