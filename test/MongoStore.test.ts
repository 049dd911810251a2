/**
 * MongoStore. No MongoDB server runs on this project's machines: everything that can be checked without
 * one is checked here (documents, the filter and update of each operation, error mapping, behaviour against
 * an unreachable server through the real driver). The contract suite and the server-side checks run only
 * where MONGODB_URL is set; otherwise they are skipped with a message naming the variable, in CI too.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { Session, SessionData, SessionId, SessionIndex, SessionStore, SessionToken } from "effect-sessions"
import * as MongoStore from "effect-sessions/MongoStore"
import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { MongoClient, MongoServerError } from "mongodb"
import { randomBytes } from "node:crypto"
import * as Internal from "../src/internal/mongo.js"
import { boundData, freshRecord, shiftedClock, sparePort, unreachable } from "./support/redis.js"

const id = SessionId.fromToken(SessionToken.unsafeGenerate())
const record = { id, data: SessionData.fromEntries([["user", "ada"]]), expiresAt: 1_800_000_000_000, version: 3 }
const json = `{"user":"ada"}`
const document = Either.getOrThrow(Internal.toDocument(record, json))

describe("MongoStore documents and operations (no server needed)", () => {
  it("a record becomes { _id, data, expiresAt, version } and reads back", () => {
    assert.deepStrictEqual(document, { _id: id, data: json, expiresAt: new Date(record.expiresAt), version: 3 })
    const back = Either.getOrThrow(Internal.fromDocument(document))
    assert.deepStrictEqual(back, record)
    assert.isTrue(SessionData.equals(back.data, record.data))
  })

  it("an expiresAt outside the range of a date is refused, not stored as an invalid date", () => {
    assert.isTrue(Either.isLeft(Internal.toDocument({ ...record, expiresAt: Number.MAX_SAFE_INTEGER }, json)))
    assert.isTrue(Either.isRight(Internal.toDocument({ ...record, expiresAt: Internal.MAX_DATE_MS }, json)))
  })

  it("a malformed document is a Decode rule that never repeats a value", () => {
    const bad: ReadonlyArray<unknown> = [
      null,
      { ...document, data: { user: "ada" } },
      { ...document, expiresAt: record.expiresAt },
      { ...document, expiresAt: new Date(Number.NaN) },
      { ...document, version: 0 },
      { ...document, _id: "not-an-id" },
      { ...document, data: "{secret" }
    ]
    for (const b of bad) {
      const result = Internal.fromDocument(b)
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.notInclude(result.left, "secret")
        assert.notInclude(result.left, "not-an-id")
      }
    }
  })

  it("create is one upsert that matches only a document expired by the app clock", () => {
    const now = 1_700_000_000_000
    const op = Internal.createOperation(document, now)
    assert.deepStrictEqual(op.filter, { _id: id, expiresAt: { $lte: new Date(now) } })
    assert.deepStrictEqual(op.update, {
      $set: { data: json, expiresAt: new Date(record.expiresAt), version: 3 },
      $unset: { userKey: "" }
    })
    assert.deepStrictEqual(op.options, { upsert: true })
  })

  it("save matches the live document with the expected version and sets version + 1", () => {
    const now = 1_700_000_000_000
    const op = Internal.saveOperation(document, 3, now)
    assert.deepStrictEqual(op.filter, { _id: id, version: 3, expiresAt: { $gt: new Date(now) } })
    assert.deepStrictEqual(op.update, {
      $set: { data: json, expiresAt: new Date(record.expiresAt), version: 4 },
      $unset: { userKey: "" }
    })
  })

  it("a bound session's document carries its user key (a digest), set by create and save; the index covers it", () => {
    const bound = { ...record, data: boundData("ada@example.com") }
    const doc = Either.getOrThrow(Internal.toDocument(bound, json))
    const userKey = SessionIndex.userKey("ada@example.com")
    assert.strictEqual(doc.userKey, userKey)
    assert.notInclude(JSON.stringify(doc.userKey), "ada")
    const now = 1_700_000_000_000
    assert.deepStrictEqual(Internal.createOperation(doc, now).update, {
      $set: { data: json, expiresAt: new Date(record.expiresAt), version: 3, userKey }
    })
    assert.deepStrictEqual(Internal.saveOperation(doc, 3, now).update, {
      $set: { data: json, expiresAt: new Date(record.expiresAt), version: 4, userKey }
    })
    // a moved session's tombstone belongs to nobody: its save removes the key
    const moved = {
      ...record,
      data: SessionData.fromEntries([[Session.META_KEY, { createdAt: 1, user: { id: "ada" }, movedAt: 5 }]])
    }
    assert.isUndefined(Either.getOrThrow(Internal.toDocument(moved, json)).userKey)
    assert.deepStrictEqual(Internal.userIndex, {
      key: { userKey: 1, expiresAt: 1 },
      options: { name: "userKey_expiresAt", partialFilterExpression: { userKey: { $exists: true } } }
    })
    assert.deepStrictEqual(Internal.liveOfUser(userKey, now, id), {
      userKey,
      expiresAt: { $gt: new Date(now) },
      _id: { $ne: id }
    })
  })

  it("a save that matched nothing is Gone without a live document, Conflict with one", () => {
    const now = 1_700_000_000_000
    assert.strictEqual(Internal.classifyMissedSave(null, now), "Gone")
    assert.strictEqual(Internal.classifyMissedSave({ version: 9, expiresAt: new Date(now) }, now), "Gone")
    assert.strictEqual(Internal.classifyMissedSave({ version: 9, expiresAt: new Date(now - 1) }, now), "Gone")
    assert.strictEqual(Internal.classifyMissedSave({ version: 9, expiresAt: new Date(now + 1) }, now), "Conflict")
    assert.deepStrictEqual(Internal.missedSaveProjection, { _id: 0, version: 1, expiresAt: 1 })
  })

  it("load and delete address one id; cleanup filters by the app clock", () => {
    assert.deepStrictEqual(Internal.idFilter(id), { _id: id })
    assert.deepStrictEqual(Internal.expiredFilter(5), { expiresAt: { $lte: new Date(5) } })
  })

  it("the TTL index leaves a grace period; collMod changes it on an existing index", () => {
    assert.deepStrictEqual(Internal.ttlIndex(600), {
      key: { expiresAt: 1 },
      options: { name: "expiresAt_ttl", expireAfterSeconds: 600 }
    })
    assert.deepStrictEqual(Internal.ttlIndex(-5).options.expireAfterSeconds, 0)
    assert.deepStrictEqual(Internal.ttlCollMod("sessions", 90.7), {
      collMod: "sessions",
      index: { keyPattern: { expiresAt: 1 }, expireAfterSeconds: 90 }
    })
  })

  it("driver errors map by code: duplicate key on create is Collision, the rest Unavailable, causes redacted", () => {
    const duplicate = new MongoServerError({
      code: 11000,
      codeName: "DuplicateKey",
      errmsg: `E11000 duplicate key error collection: test.sessions index: _id_ dup key: { _id: "${id}" }`
    })
    const collision = Internal.toStoreError("create", duplicate)
    assert.strictEqual(collision.reason, "Collision")
    const onSave = Internal.toStoreError("save", duplicate)
    assert.strictEqual(onSave.reason, "Unavailable")
    assert.strictEqual(String(onSave.cause), "MongoServerError (11000)")
    const other = Internal.toStoreError("load", new MongoServerError({ code: 13, errmsg: "not authorized" }))
    assert.strictEqual(other.reason, "Unavailable")
    for (const e of [collision, onSave, other]) {
      assert.notInclude(`${e.message} ${String(e.cause)} ${JSON.stringify(e.cause)}`, id)
    }
    assert.isTrue(Internal.isIndexConflict(new MongoServerError({ code: 85, errmsg: "IndexOptionsConflict" })))
    assert.isTrue(Internal.isIndexConflict(new MongoServerError({ code: 86, errmsg: "IndexKeySpecsConflict" })))
    assert.isFalse(Internal.isIndexConflict(duplicate))
  })
})

describe("MongoStore against an unreachable server (the real driver)", () => {
  it.live("the layer fails with Unavailable (connect) within the server selection timeout", () =>
    Effect.gen(function*() {
      const error = yield* unreachable((port) =>
        MongoStore.layer({
          url: Redacted.make(`mongodb://user:hunter2@127.0.0.1:${port}/test`),
          serverSelectionTimeout: "500 millis"
        })
      )
      assert.strictEqual(String(error.cause), "MongoServerSelectionError")
      assert.notInclude(`${error.message} ${String(error.cause)}`, "hunter2")
    }))

  it.live("every operation is Unavailable, naming neither id nor data; Encode comes before any call", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => sparePort())
      const client = new MongoClient(`mongodb://127.0.0.1:${port}`, { serverSelectionTimeoutMS: 300 })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const stores = MongoStore.layerDb(client.db("test"), { migrate: false })
      const r = freshRecord({ secret: "s3cr3t" })
      const errors = yield* Effect.flatMap(SessionStore.SessionStore, (store) =>
        Effect.all([
          Effect.flip(store.create(r)),
          Effect.flip(store.save(r)),
          Effect.flip(store.load(r.id)),
          Effect.flip(store.delete(r.id))
        ])).pipe(Effect.provide(stores))
      assert.deepStrictEqual(errors.map((e) => [e.method, e.reason]), [
        ["create", "Unavailable"],
        ["save", "Unavailable"],
        ["load", "Unavailable"],
        ["delete", "Unavailable"]
      ])
      for (const e of errors) assert.notInclude(`${e.message} ${String(e.cause)}`, r.id)
      const deleted = yield* Effect.flip(
        Effect.flatMap(SessionStore.ExpiredDeletion, (d) => d.deleteExpired()).pipe(Effect.provide(stores))
      )
      assert.strictEqual(deleted.reason, "Unavailable")
      const encode = yield* Effect.flip(
        Effect.flatMap(
          SessionStore.SessionStore,
          (store) => store.create({ ...r, data: SessionData.fromEntries([["bad", "\u0000"]]) })
        ).pipe(Effect.provide(stores))
      )
      assert.strictEqual(encode.reason, "Encode")
    }).pipe(Effect.scoped))
})

const mongoUrl = process.env.MONGODB_URL
if (mongoUrl !== undefined && mongoUrl !== "") {
  const collection = `sessions_test_${randomBytes(6).toString("hex")}`
  const options = { url: Redacted.make(mongoUrl), collection, ttlGrace: "90 seconds" } as const
  const dropCollection = async () => {
    const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000 })
    try {
      await client.db().collection(collection).drop().catch(() => undefined)
    } finally {
      await client.close()
    }
  }
  afterAll(dropCollection)

  runContractSuite("MongoStore contract (MONGODB_URL)", MongoStore.layer(options), { live: true })
  runIndexContractSuite("MongoStore index contract (MONGODB_URL)", MongoStore.layer(options), { live: true })

  describe("MongoStore on the server at MONGODB_URL", () => {
    const Live = MongoStore.layer(options)
    it.live("migrate makes a TTL index on expiresAt with the grace, idempotently, and adjusts it", () =>
      Effect.gen(function*() {
        const client = yield* MongoStore.connect({ url: Redacted.make(mongoUrl) })
        const db = client.db()
        yield* MongoStore.migrate(db, { collection })
        yield* MongoStore.migrate(db, { collection, ttlGrace: "2 minutes" })
        const indexes = yield* Effect.promise(() => db.collection(collection).indexes())
        const ttl = indexes.find((i) => i.name === "expiresAt_ttl")
        assert.deepStrictEqual(ttl?.key, { expiresAt: 1 })
        assert.strictEqual(ttl?.expireAfterSeconds, 120)
        const byUser = indexes.find((i) => i.name === "userKey_expiresAt")
        assert.deepStrictEqual(byUser?.key, { userKey: 1, expiresAt: 1 })
      }).pipe(Effect.scoped))

    it.live("with the Clock past expiry, load is none while the document is still stored", () =>
      Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const r = yield* store.create(freshRecord({ user: "ada" }, 60_000))
        const later = shiftedClock(61_000)
        assert.isTrue(Option.isNone(yield* store.load(r.id).pipe(Effect.withClock(later))))
        const client = yield* MongoStore.connect({ url: Redacted.make(mongoUrl) })
        const stored = yield* Effect.promise(() =>
          client.db().collection<Internal.SessionDocument>(collection).findOne({ _id: r.id })
        )
        assert.strictEqual(stored?.version, 1)
      }).pipe(Effect.provide(Live), Effect.scoped))
  })
} else {
  const message = "MongoStore: MONGODB_URL is not set: SKIPPING the contract suite and the server checks " +
    "(no MongoDB server runs on this project's machines; set MONGODB_URL=mongodb://... to run them)"
  console.warn(`\n!!! ${message} !!!\n`)
  describe.skip(`MongoStore on a server (SKIPPED: set MONGODB_URL to run it)`, () => {
    it("contract suite and server checks", () => undefined)
  })
}
