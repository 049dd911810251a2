/**
 * Test support: a sequential model of one browser's session and a checker that decides whether a concurrent
 * history of requests could have come from it.
 *
 * Each request is atomic at two points: its load `L` (what it reads: the record its token reaches) and its
 * commit `C` (where its change set lands on whatever record is current then: the merge). A request's `L`
 * follows its issue, its `C` follows its `L` and precedes its answer; when one request was answered before
 * another was issued, the first one's `C` precedes the second one's `L`. Those are the only orders the checker
 * assumes: it searches every interleaving of the points that respects them (depth first, memoised on the
 * points done and the model's state) for one under which the model gives every answer observed — the data
 * each request saw, whether it got a new token, a removal cookie or neither — and ends with the store
 * observed. Nothing else is assumed, so correct behaviour is never flagged; a history no order explains is a
 * violation (a flushed session or a removed key seen again, a write lost, an old token reaching moved data,
 * two live records of one session all make the final store or an answer unexplainable).
 *
 * With `lag: true` (a `CachingStore` per instance, `maxStaleness` longer than any history) a load may also see
 * any earlier state of the record its token reaches, and nothing else.
 */

export type Op =
  | { readonly op: "read" }
  | { readonly op: "set"; readonly key: string; readonly value: string }
  | { readonly op: "remove"; readonly key: string }
  | { readonly op: "clear" }
  | { readonly op: "flush" }
  | { readonly op: "cycle" }
  | { readonly op: "expiry"; readonly value: string }

export type CookieSeen = { readonly kind: "none" } | { readonly kind: "remove" } | {
  readonly kind: "new"
  readonly token: string
}

/** One request as observed. */
export interface Observed {
  readonly op: Op
  /** The token the request carried. */
  readonly token: string | undefined
  /** Milliseconds since the history began. */
  readonly issuedAt: number
  readonly answeredAt: number
  readonly status: number
  /** The session data the handler saw after its own change. */
  readonly view: Readonly<Record<string, string>>
  readonly cookie: CookieSeen
}

/** A record as the model (and the final store) holds it: user data and the expiry, or a move's tombstone. */
export type Rec =
  | { readonly kind: "live"; readonly data: Readonly<Record<string, string>>; readonly expiry: string | undefined }
  | { readonly kind: "moved" }

type Store = ReadonlyMap<string, Rec>

interface Loaded {
  readonly base: Rec | undefined
}

const same = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || a[k] !== b[k]) return false
  return true
}

/** What the request's own change makes of the data it loaded. */
const applyOwn = (data: Readonly<Record<string, string>>, op: Op): Record<string, string> => {
  switch (op.op) {
    case "set":
      return { ...data, [op.key]: op.value }
    case "remove": {
      const { [op.key]: _, ...rest } = data
      return rest
    }
    case "clear":
    case "flush":
      return {}
    default:
      return { ...data }
  }
}

/** Whether the change set changes the loaded record (the plan decides against what was loaded). */
const changes = (base: Rec & { kind: "live" }, op: Op): boolean => {
  switch (op.op) {
    case "set":
      return base.data[op.key] !== op.value
    case "remove":
      return Object.prototype.hasOwnProperty.call(base.data, op.key)
    case "clear":
      return Object.keys(base.data).length > 0
    case "expiry":
      return base.expiry !== op.value
    case "cycle":
    case "flush":
      return true
    case "read":
      return false
  }
}

type Commit =
  | { readonly store: Store; readonly cookie: "none" | "remove" }
  | { readonly store: Store; readonly cookie: "new"; readonly token: string }

/** The model's commit of request `r` at `C`, given what it loaded; `undefined` when the answer cannot match. */
const commit = (store: Store, r: Observed, loaded: Loaded): Commit | undefined => {
  const t = r.token
  const base = loaded.base
  const op = r.op
  const next = new Map(store)
  if (base?.kind === "moved") return { store, cookie: "none" }
  if (base === undefined) {
    if (op.op === "set") {
      if (r.cookie.kind !== "new") return undefined
      next.set(r.cookie.token, { kind: "live", data: { [op.key]: op.value }, expiry: undefined })
      return { store: next, cookie: "new", token: r.cookie.token }
    }
    return { store, cookie: op.op === "flush" && t !== undefined ? "remove" : "none" }
  }
  // a live session was loaded
  if (op.op === "flush") {
    next.delete(t!)
    return { store: next, cookie: "remove" }
  }
  if (!changes(base, op)) return { store, cookie: "none" }
  const cur = store.get(t!)
  if (cur === undefined) return { store, cookie: "remove" } // Gone
  if (cur.kind === "moved") return { store, cookie: "none" } // moved meanwhile: dropped
  if (op.op === "cycle") {
    if (r.cookie.kind !== "new") return undefined
    next.set(r.cookie.token, cur)
    next.set(t!, { kind: "moved" })
    return { store: next, cookie: "new", token: r.cookie.token }
  }
  const data = op.op === "clear" ? {} : applyOwn(cur.data, op)
  next.set(t!, { kind: "live", data, expiry: op.op === "expiry" ? op.value : cur.expiry })
  return { store: next, cookie: "none" }
}

const storeKey = (store: Store): string => JSON.stringify(Array.from(store).sort(([a], [b]) => (a < b ? -1 : 1)))

/**
 * `explain(history, final, options)` is an order of load and commit points under which the model gives every
 * observed answer and the final store, or `undefined` when there is none.
 */
export const explain = (
  history: ReadonlyArray<Observed>,
  final: ReadonlyMap<string, Rec>,
  options: { readonly lag: boolean }
): ReadonlyArray<string> | undefined => {
  const n = history.length
  // before[j]: requests answered before j was issued, whose commits precede j's load
  const before = history.map((rj) => history.flatMap((ri, i) => (ri.answeredAt < rj.issuedAt ? [i] : [])))
  const finalKey = storeKey(final)
  const seen = new Set<string>()
  const loads: Array<Loaded | undefined> = new Array(n).fill(undefined)
  const committed: Array<boolean> = new Array(n).fill(false)
  const order: Array<string> = []
  // every state each token's record has had, for lagging loads
  const pastOf = (past: ReadonlyArray<Store>, token: string | undefined): ReadonlyArray<Rec | undefined> => {
    if (token === undefined) return [undefined]
    // a cache serves only records it holds: an earlier live or moved state, never an absence the store denies
    const current = past[past.length - 1].get(token)
    const out: Array<Rec | undefined> = [current]
    for (const s of past) {
      const rec = s.get(token)
      if (rec !== undefined && !out.some((o) => JSON.stringify(o) === JSON.stringify(rec))) out.push(rec)
    }
    return out
  }
  const search = (store: Store, past: ReadonlyArray<Store>): boolean => {
    if (committed.every(Boolean)) return storeKey(store) === finalKey
    const key = loads.map((l, i) => (committed[i] ? "C" : l === undefined ? "-" : JSON.stringify(l.base))).join("|") +
      "#" + storeKey(store) + (options.lag ? "#" + past.map(storeKey).join(",") : "")
    if (seen.has(key)) return false
    seen.add(key)
    for (let j = 0; j < n; j++) {
      if (committed[j]) continue
      const r = history[j]
      if (loads[j] === undefined) {
        if (!before[j].every((i) => committed[i])) continue
        const candidates = options.lag
          ? pastOf(past, r.token)
          : [r.token === undefined ? undefined : store.get(r.token)]
        for (const base of candidates) {
          const data = base?.kind === "live" ? base.data : {}
          if (!same(applyOwn(data, r.op), r.view)) continue
          loads[j] = { base }
          order.push(`L${j}`)
          if (search(store, past)) return true
          order.pop()
          loads[j] = undefined
        }
      } else {
        const outcome = commit(store, r, loads[j]!)
        if (outcome === undefined || outcome.cookie !== r.cookie.kind) continue
        committed[j] = true
        order.push(`C${j}`)
        if (search(outcome.store, outcome.store === store ? past : [...past, outcome.store])) return true
        order.pop()
        committed[j] = false
      }
    }
    return false
  }
  return search(new Map(), [new Map()]) ? order.slice() : undefined
}
