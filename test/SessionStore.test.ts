import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Layer, Logger, Option, TestClock, Tracer } from "effect"
import { SessionData, SessionId, type SessionRecord, SessionStore, SessionToken, StoreError } from "effect-sessions"

const SECRET = "MARK-row-detail-4Xk"

/** A backend that records what reaches it and keeps records as JSON in a Map. */
const recordingBackend = () => {
  const calls: Array<{ readonly method: string; readonly now: number; readonly json?: string }> = []
  const rows = new Map<string, { json: string; expiresAt: number; version: number }>()
  const backend: SessionStore.Backend = {
    name: "Recording",
    create: (record, json, now) =>
      Effect.sync(() => {
        calls.push({ method: "create", now, json })
        rows.set(record.id, { json, expiresAt: record.expiresAt, version: record.version })
        return record
      }),
    save: (record, json, now) =>
      Effect.sync(() => {
        calls.push({ method: "save", now, json })
        rows.set(record.id, { json, expiresAt: record.expiresAt, version: record.version + 1 })
        return { ...record, version: record.version + 1 }
      }),
    // returns what it holds, expired or not: `make` must filter
    load: (id, now) =>
      Effect.sync(() => {
        calls.push({ method: "load", now })
        const row = rows.get(id)
        if (row === undefined) return Option.none()
        const data = SessionData.decode(row.json)
        return data._tag === "Right"
          ? Option.some({ id, data: data.right, expiresAt: row.expiresAt, version: row.version })
          : Option.none()
      }),
    delete: (id, now) =>
      Effect.sync(() => {
        calls.push({ method: "delete", now })
        rows.delete(id)
      })
  }
  return { backend, calls }
}

const recordAt = (
  now: number,
  data: unknown = SessionData.fromEntries([["note", SECRET]])
): SessionRecord.SessionRecord => ({
  id: SessionId.fromToken(SessionToken.unsafeGenerate()),
  data: data as SessionData.SessionData,
  expiresAt: now + 1_000,
  version: 1
})

/** Every way a user could see an error: none may hold `secrets`. */
const assertNoSecrets = (exit: Exit.Exit<unknown, unknown>, secrets: ReadonlyArray<string>) => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isSuccess(exit)) return
  const error = Cause.squash(exit.cause) as Error
  const renderings = [
    error.message,
    String(error),
    JSON.stringify(error),
    Cause.pretty(exit.cause),
    Cause.pretty(exit.cause, { renderErrorCause: true })
  ]
  for (const text of renderings) {
    for (const secret of secrets) assert.notInclude(text, secret)
  }
}

describe("SessionStore.make", () => {
  it.effect("refuses data that breaks the rules with Encode before the backend is called", () =>
    Effect.gen(function*() {
      const { backend, calls } = recordingBackend()
      const store = SessionStore.make(backend)
      const now = yield* Clock.currentTimeMillis
      const bad: ReadonlyArray<unknown> = [
        { s: `${SECRET}\u0000` },
        { s: `${SECRET}\ud800` },
        { n: Number.NaN, s: SECRET },
        { s: SECRET + "x".repeat(65_536) }
      ]
      for (const data of bad) {
        const record = recordAt(now, data)
        for (const method of ["create", "save"] as const) {
          const exit = yield* Effect.exit(store[method](record))
          assert.deepStrictEqual(
            Exit.mapBoth(exit, { onFailure: (e) => [e.reason, e.method], onSuccess: () => "success" }),
            Exit.fail(["Encode", method])
          )
          assertNoSecrets(exit, [SECRET, record.id])
        }
      }
      for (
        const [field, value] of [["expiresAt", 1.5], ["expiresAt", Number.NaN], ["version", 0], [
          "version",
          2.5
        ]] as const
      ) {
        const exit = yield* Effect.exit(store.create({ ...recordAt(now), [field]: value }))
        assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) instanceof StoreError.StoreError)
      }
      assert.deepStrictEqual(calls, [])
    }))

  it.effect("follows a custom maxDataBytes", () =>
    Effect.gen(function*() {
      const { backend, calls } = recordingBackend()
      const store = SessionStore.make(backend, { maxDataBytes: 100 })
      const now = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(store.create(recordAt(now, { s: "x".repeat(100) })))
      assert.isTrue(Exit.isFailure(exit))
      yield* store.create(recordAt(now, { s: "x".repeat(50) }))
      assert.strictEqual(calls.length, 1)
    }))

  it.effect("hands the backend the JSON text and the Clock's now", () =>
    Effect.gen(function*() {
      const { backend, calls } = recordingBackend()
      const store = SessionStore.make(backend)
      yield* TestClock.setTime(1_234_567)
      const record = recordAt(1_234_567, SessionData.fromEntries([["a", [1, "\u{1F600}"]]]))
      yield* store.create(record)
      yield* store.delete(record.id)
      assert.deepStrictEqual(calls, [
        { method: "create", now: 1_234_567, json: `{"a":[1,"\u{1F600}"]}` },
        { method: "delete", now: 1_234_567 }
      ])
    }))

  it.effect("load never returns a record expired by the Clock, even when the backend still holds it", () =>
    Effect.gen(function*() {
      const { backend } = recordingBackend()
      const store = SessionStore.make(backend)
      const now = yield* Clock.currentTimeMillis
      const record = recordAt(now)
      yield* store.create(record)
      yield* TestClock.adjust(999)
      assert.isTrue(Option.isSome(yield* store.load(record.id)))
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* store.load(record.id)))
    }))
})

describe("SessionStore.make spans", () => {
  const recording = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.flatMap(Effect.tracer, (builtIn) => {
      const names: Array<string> = []
      const attributes: Array<ReadonlyMap<string, unknown>> = []
      const tracer = Tracer.make({
        span: (...args) => {
          const span = builtIn.span(...args)
          names.push(span.name)
          attributes.push(span.attributes)
          return span
        },
        context: (f, fiber) => builtIn.context(f, fiber)
      })
      return Effect.map(Effect.withTracer(self, tracer), () => ({ names, attributes }))
    })

  const roundTrip = (store: SessionStore.Service) =>
    Effect.gen(function*() {
      const id = SessionId.fromToken(SessionToken.unsafeGenerate())
      const created = yield* store.create({
        id,
        data: SessionData.fromEntries([["k", SECRET]]),
        expiresAt: 60_000,
        version: 1
      })
      yield* store.save(created)
      yield* store.load(id)
      yield* store.delete(id)
    })

  it.effect("opens one span per operation, named after the backend, when the app installs a tracer", () =>
    Effect.gen(function*() {
      const { backend } = recordingBackend()
      const { attributes, names } = yield* recording(roundTrip(SessionStore.make({ ...backend, system: "testdb" })))
      assert.deepStrictEqual(names, ["Recording.create", "Recording.save", "Recording.load", "Recording.delete"])
      for (const a of attributes) {
        assert.strictEqual(a.get("db.system.name"), "testdb")
        for (const value of a.values()) assert.notInclude(String(value), SECRET)
      }
    }))

  it.effect("opens none with spans: false", () =>
    Effect.gen(function*() {
      const { backend } = recordingBackend()
      const { names } = yield* recording(roundTrip(SessionStore.make(backend, { spans: false })))
      assert.deepStrictEqual(names, [])
    }))

  it.effect("opens none under Effect's built-in tracer, which exports nothing", () =>
    Effect.gen(function*() {
      const { backend } = recordingBackend()
      const inside: Array<boolean> = []
      const store = SessionStore.make({
        ...backend,
        load: (id, now) =>
          Effect.zipRight(
            Effect.map(Effect.option(Effect.currentSpan), (span) => inside.push(Option.isSome(span))),
            backend.load(id, now)
          )
      })
      yield* store.load(SessionId.fromToken(SessionToken.unsafeGenerate()))
      assert.deepStrictEqual(inside, [false])
      // the same store under an installed tracer runs its backend inside the span
      yield* recording(store.load(SessionId.fromToken(SessionToken.unsafeGenerate())))
      assert.deepStrictEqual(inside, [false, true])
    }))
})

describe("StoreError", () => {
  it("names the method and reason only, and redacts a driver error to its name and code", () => {
    const driverError = Object.assign(new Error(`duplicate key: ${SECRET}`), {
      name: "DatabaseError",
      code: "23505",
      detail: `Key (id)=(${SECRET}) already exists.`
    })
    const error = StoreError.make("Unavailable", "save", driverError)
    assert.strictEqual(error.message, "session store save failed: Unavailable")
    assert.strictEqual(String(error.cause), "DatabaseError (23505)")
    assertNoSecrets(Exit.fail(error), [SECRET])
    assert.include(
      Cause.pretty(Cause.fail(error), { renderErrorCause: true }),
      "session store save failed: Unavailable"
    )
  })

  it("drops a code that could carry data", () => {
    const error = StoreError.make("Unavailable", "load", {
      code: `${SECRET} with spaces and more than forty characters`
    })
    assert.isUndefined(error.cause?.code)
    assertNoSecrets(Exit.fail(error), [SECRET])
  })

  it("rule errors name the rule", () => {
    const error = StoreError.rule("Decode", "load", "stored data is not valid JSON")
    assert.strictEqual(error.reason, "Decode")
    assert.include(String(error.cause), "stored data is not valid JSON")
    assert.isTrue(StoreError.isStoreError(error))
    assert.isFalse(StoreError.isStoreError(new Error("x")))
  })
})

describe("deleteInBatches", () => {
  it.effect("runs batches until one comes back short, sums them, and reads now once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(5_000)
      const seen: Array<[number, number]> = []
      const counts = [10, 10, 10, 3]
      const total = yield* SessionStore.deleteInBatches(
        (limit, now) =>
          Effect.gen(function*() {
            seen.push([limit, now])
            yield* TestClock.adjust(1_000)
            return counts[seen.length - 1]
          }),
        10
      )
      assert.strictEqual(total, 33)
      assert.deepStrictEqual(seen, [[10, 5_000], [10, 5_000], [10, 5_000], [10, 5_000]])
    }))

  it.effect("uses the default batch size and at least 1", () =>
    Effect.gen(function*() {
      const limits: Array<number> = []
      yield* SessionStore.deleteInBatches((limit) => Effect.sync(() => (limits.push(limit), 0)), undefined)
      yield* SessionStore.deleteInBatches((limit) => Effect.sync(() => (limits.push(limit), 0)), 0)
      assert.deepStrictEqual(limits, [SessionStore.DEFAULT_BATCH_SIZE, 1])
    }))
})

describe("layerExpiredDeletion", () => {
  it.effect("logs a failed run by reason and method, and keeps running on schedule", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly level: string; readonly text: string }> = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        logs.push({ level: logLevel.label, text: `${JSON.stringify(message)} ${JSON.stringify([...annotations])}` })
      })
      let runs = 0
      const outcomes: ReadonlyArray<Effect.Effect<number, StoreError.StoreError>> = [
        Effect.fail(StoreError.make("Unavailable", "deleteExpired", new Error(SECRET))),
        Effect.die(new Error(SECRET)),
        Effect.succeed(3)
      ]
      const failing = Layer.succeed(
        SessionStore.ExpiredDeletion,
        SessionStore.ExpiredDeletion.of({
          deleteExpired: () => Effect.suspend(() => outcomes[Math.min(runs++, outcomes.length - 1)])
        })
      )
      const settle = Effect.gen(function*() {
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      })

      yield* Effect.gen(function*() {
        yield* Layer.build(SessionStore.layerExpiredDeletion({ interval: "1 minute" }).pipe(Layer.provide(failing)))
        yield* settle
        assert.strictEqual(runs, 1)
        assert.strictEqual(logs.length, 1)
        assert.strictEqual(logs[0].level, "WARN")
        assert.include(logs[0].text, "Unavailable")
        assert.include(logs[0].text, "deleteExpired")

        yield* TestClock.adjust("59 seconds")
        yield* settle
        assert.strictEqual(runs, 1, "the next run waits for the interval")
        yield* TestClock.adjust("1 second")
        yield* settle
        assert.strictEqual(runs, 2, "a failed run does not stop the schedule")
        assert.strictEqual(logs[1]?.level, "ERROR")

        yield* TestClock.adjust("1 minute")
        yield* settle
        assert.strictEqual(runs, 3, "a run that died does not stop the schedule")
        yield* TestClock.adjust("1 minute")
        yield* settle
        assert.strictEqual(runs, 4)
        for (const log of logs) assert.notInclude(log.text, SECRET)
      }).pipe(Effect.scoped, Effect.provide(Logger.add(logger)))

      // the scope is closed: no more runs
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.strictEqual(runs, 4)
    }))
})
