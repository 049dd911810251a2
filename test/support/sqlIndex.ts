/**
 * SqlStore's per-user index on one dialect (test/SqlStore.<dialect>.test.ts call `sqlIndexSuite`): the upgrade
 * of a table made by the version before the index, from many instances at once; the `user_key` column against a
 * model over random histories of writes; rows `list` must skip; spans without ids.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, FastCheck as fc, Option } from "effect"
import { Session, SessionData, SessionIndex, type SessionRecord } from "effect-sessions"
import type { SessionId } from "effect-sessions"
import * as SqlStore from "effect-sessions/SqlStore"
import * as SqlDialect from "../../src/internal/sqlDialect.js"
import {
  clientWithTable,
  type Dialect,
  freshId,
  insertRow,
  quote,
  recordingSpans,
  type Target,
  uniqueTable,
  withClient
} from "./sql.js"

/** The DDL of the version before the index, verbatim: no `user_key` column, no index on it. */
const previousDdl = (dialect: Dialect, table: string): ReadonlyArray<string> => {
  const t = quote(dialect, table)
  const index = quote(dialect, `${table}_expires_at_idx`)
  switch (dialect) {
    case "pg":
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
        `  id text COLLATE "C" PRIMARY KEY,\n` +
        `  data jsonb NOT NULL,\n` +
        `  expires_at bigint NOT NULL,\n` +
        `  version bigint NOT NULL\n` +
        `)`,
        `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at)`
      ]
    case "mysql":
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
        `  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,\n` +
        `  data JSON NOT NULL,\n` +
        `  expires_at BIGINT NOT NULL,\n` +
        `  version BIGINT NOT NULL,\n` +
        `  INDEX ${index} (expires_at)\n` +
        `) ENGINE=InnoDB`
      ]
    case "sqlite":
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (\n` +
        `  id TEXT NOT NULL PRIMARY KEY,\n` +
        `  data TEXT NOT NULL,\n` +
        `  expires_at INTEGER NOT NULL,\n` +
        `  version INTEGER NOT NULL\n` +
        `) WITHOUT ROWID`,
        `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at)`
      ]
  }
}

/** The table's columns, and the columns of its index on the user key (empty when there is none). */
const catalog = (client: SqlClient.SqlClient, dialect: Dialect, table: string) =>
  Effect.gen(function*() {
    const indexName = `${table}_user_key_idx`
    const q = <A extends object>(text: string, params: ReadonlyArray<unknown>) =>
      client.unsafe<A>(text, params).withoutTransform
    switch (dialect) {
      case "pg": {
        const columns = yield* q<{ name: string }>(
          "SELECT column_name AS name FROM information_schema.columns WHERE table_name = $1",
          [table]
        )
        const index = yield* q<{ def: string }>(
          "SELECT indexdef AS def FROM pg_indexes WHERE tablename = $1 AND indexname = $2",
          [table, indexName]
        )
        return {
          columns: columns.map((r) => r.name).sort(),
          indexed: index.map((r) => r.def.replace(/^.* USING btree \(([^)]*)\).*$/, "$1"))
        }
      }
      case "mysql": {
        const columns = yield* q<{ name: string }>(
          "SELECT column_name AS name FROM information_schema.columns " +
            "WHERE table_schema = DATABASE() AND table_name = ?",
          [table]
        )
        const index = yield* q<{ name: string }>(
          "SELECT column_name AS name FROM information_schema.statistics " +
            "WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
          [table, indexName]
        )
        return { columns: columns.map((r) => r.name).sort(), indexed: index.map((r) => r.name) }
      }
      case "sqlite": {
        const columns = yield* q<{ name: string }>("SELECT name FROM pragma_table_info(?)", [table])
        const index = yield* q<{ name: string }>("SELECT name FROM pragma_index_info(?)", [indexName])
        return { columns: columns.map((r) => r.name).sort(), indexed: index.map((r) => r.name) }
      }
    }
  })

/** The `user_key` column of each row of `table`, by id. */
const userKeys = (client: SqlClient.SqlClient, dialect: Dialect, table: string) =>
  Effect.map(
    client.unsafe<{ id: string; user_key: string | null }>(`SELECT id, user_key FROM ${quote(dialect, table)}`)
      .withoutTransform,
    (rows) => new Map(rows.map((r) => [r.id, r.user_key]))
  )

/** Session data as the middleware writes it: bound to `user` (or no one), a tombstone when `movedAt` is set. */
const bound = (user: string | undefined, extra?: { readonly movedAt?: number; readonly n?: number }) => {
  const meta: Record<string, SessionData.JsonValue> = { createdAt: 1_000, refreshedAt: 3_000 }
  if (user !== undefined) meta.user = { id: user, authenticatedAt: 2_000 + (extra?.n ?? 0) }
  if (extra?.movedAt !== undefined) meta.movedAt = extra.movedAt
  return SessionData.fromEntries([["note", "x"], [Session.META_KEY, meta]])
}

const LIFETIME = 3_600_000

/** Steps of a random history on a few ids and users. */
type Step =
  | { readonly _tag: "write"; readonly id: number; readonly user: number | undefined; readonly moved: boolean }
  | { readonly _tag: "delete"; readonly id: number }

const IDS = 3
const USERS = 3
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("write" as const),
      id: fc.nat(IDS - 1),
      user: fc.option(fc.nat(USERS - 1), { nil: undefined }),
      moved: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("delete" as const), id: fc.nat(IDS - 1) }) }
)

const SEED = 1414

export const sqlIndexSuite = (target: Target): void => {
  const { dialect } = target

  describe(`SqlStore index on ${target.label}`, () => {
    it.live(
      "a table made by the previous version: 8 stores starting at once add the user key and its index; old rows " +
        "load; a session bound before the upgrade is listed after its next write",
      () =>
        Effect.gen(function*() {
          const table = uniqueTable("upgrade")
          const first = yield* clientWithTable(target, table)
          for (const text of previousDdl(dialect, table)) yield* first.unsafe(text).withoutTransform
          const before = yield* catalog(first, dialect, table)
          assert.deepStrictEqual(before, { columns: ["data", "expires_at", "id", "version"], indexed: [] })
          const now = yield* Clock.currentTimeMillis
          const user = `user-${freshId().slice(0, 12)}`
          const old = { id: freshId(), data: bound(user) }
          const plain = { id: freshId(), data: bound(undefined) }
          for (const row of [old, plain]) {
            yield* insertRow(first, dialect, table, {
              id: row.id,
              data: JSON.stringify(row.data),
              expiresAt: now + LIFETIME,
              version: 1
            })
          }
          const clients = [first, ...(yield* Effect.all(Array.from({ length: 7 }, () => target.client)))]
          const exits = yield* Effect.all(
            clients.map((client) => Effect.exit(withClient(client, SqlStore.make({ table })))),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(exits.map(Exit.isSuccess), Array(8).fill(true), String(exits.find(Exit.isFailure)))
          const after = yield* catalog(first, dialect, table)
          assert.deepStrictEqual(after, {
            columns: ["data", "expires_at", "id", "user_key", "version"],
            indexed: ["user_key"]
          })
          // once more, idempotent
          const { index, store } = yield* withClient(first, SqlStore.make({ table }))
          assert.deepStrictEqual(yield* catalog(first, dialect, table), after)
          // the old rows load; the bound one has no user key yet, so it is not listed until it is written
          const loaded = Option.getOrThrow(yield* store.load(old.id))
          assert.isTrue(SessionData.equals(loaded.data, old.data))
          assert.isTrue(Option.isSome(yield* store.load(plain.id)))
          assert.deepStrictEqual(yield* index.list(user), [])
          yield* store.save(loaded)
          assert.deepStrictEqual((yield* index.list(user)).map((e) => e.id), [old.id])
          const keys = yield* userKeys(first, dialect, table)
          assert.strictEqual(keys.get(old.id), SessionIndex.userKey(user))
          assert.isNull(keys.get(plain.id))
        }).pipe(Effect.scoped),
      60_000
    )

    if (dialect !== "pg") {
      it.live("the error of a migration step another instance took first is recognised as done, and no other", () =>
        Effect.gen(function*() {
          const table = uniqueTable("ukdup")
          const client = yield* clientWithTable(target, table)
          yield* withClient(client, SqlStore.migrate({ table }))
          const st = SqlDialect.statements(dialect, { table, schema: undefined })
          const causeOf = (text: string) =>
            Effect.map(Effect.flip(client.unsafe(text).withoutTransform), (error) => error.cause)
          // on SQLite the index statement has IF NOT EXISTS; MySQL's has none
          for (const text of dialect === "mysql" ? [st.addUserKey, st.userKeyIndex] : [st.addUserKey]) {
            assert.isTrue(SqlDialect.isAlreadyMigrated(yield* causeOf(text)), text)
          }
          // a malformed step, and a statement on a missing table, are failures
          assert.isFalse(
            SqlDialect.isAlreadyMigrated(yield* causeOf(`ALTER TABLE ${quote(dialect, table)} ADD COLUMN`))
          )
          assert.isFalse(
            SqlDialect.isAlreadyMigrated(yield* causeOf(`SELECT * FROM ${quote(dialect, `${table}_none`)}`))
          )
        }).pipe(Effect.scoped))
    }

    it.live(
      "over random histories of creates, saves (rebind, unbind, move) and deletes, user_key and list follow the data",
      () =>
        Effect.gen(function*() {
          const table = uniqueTable("ukmodel")
          const client = yield* clientWithTable(target, table)
          const { index, store } = yield* withClient(client, SqlStore.make({ table }))
          const property = fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 12 }), (steps) =>
            Effect.runPromise(Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const ids = Array.from({ length: IDS }, () =>
                freshId())
              const users = Array.from({ length: USERS }, () => `user-${freshId().slice(0, 12)}`)
              // the model: per id, the stored record and the user it is bound to (undefined: no one, or moved)
              const model = new Map<
                SessionId.SessionId,
                { record: SessionRecord.SessionRecord; user: string | undefined }
              >()
              for (const [n, step] of steps.entries()) {
                const id = ids[step.id]
                const current = model.get(id)
                if (step._tag === "delete") {
                  yield* store.delete(id)
                  model.delete(id)
                } else {
                  const user = step.user === undefined ? undefined : users[step.user]
                  const data = bound(user, step.moved ? { movedAt: 4_000, n } : { n })
                  const record = current === undefined
                    ? yield* store.create({ id, data, expiresAt: now + LIFETIME, version: 1 })
                    : yield* store.save({ ...current.record, data })
                  model.set(id, { record, user: step.moved ? undefined : user })
                }
                const keys = yield* userKeys(client, dialect, table)
                for (const i of ids) {
                  const m = model.get(i)
                  assert.strictEqual(keys.has(i), m !== undefined, `step ${n}: row of id ${ids.indexOf(i)}`)
                  if (m !== undefined) {
                    assert.strictEqual(
                      keys.get(i),
                      m.user === undefined ? null : SessionIndex.userKey(m.user),
                      `step ${n}: user_key of id ${ids.indexOf(i)}`
                    )
                  }
                }
                for (const u of users) {
                  const listed = (yield* index.list(u)).map((e) => e.id).sort()
                  const expected = [...model].filter(([, m]) => m.user === u).map(([i]) => i).sort()
                  assert.deepStrictEqual(listed, expected, `step ${n}: list of user ${users.indexOf(u)}`)
                }
              }
              yield* Effect.forEach(ids, (id) => store.delete(id), { discard: true })
            })))
          yield* Effect.promise(() =>
            fc.assert(property, { seed: SEED, numRuns: 15 })
          )
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("inside the app's transaction a revoke commits and rolls back with it", () =>
      Effect.gen(function*() {
        const table = uniqueTable("uktx")
        const client = yield* clientWithTable(target, table)
        const { index, store } = yield* withClient(client, SqlStore.make({ table }))
        const now = yield* Clock.currentTimeMillis
        const user = `user-${freshId().slice(0, 12)}`
        const made = yield* Effect.forEach(
          [1, 2, 3],
          () => store.create({ id: freshId(), data: bound(user), expiresAt: now + LIFETIME, version: 1 })
        )
        const undone = yield* Effect.exit(client.withTransaction(
          Effect.gen(function*() {
            assert.strictEqual(yield* index.revoke(user, { except: made[0].id }), 2)
            assert.deepStrictEqual((yield* index.list(user)).map((e) => e.id), [made[0].id])
            return yield* Effect.fail("app failure" as const)
          })
        ))
        assert.isTrue(Exit.isFailure(undone))
        assert.strictEqual((yield* index.list(user)).length, 3)
        const ids = yield* client.withTransaction(index.revokeIds(user))
        assert.deepStrictEqual([...ids].sort(), made.map((r) => r.id).sort())
        assert.deepStrictEqual(yield* index.list(user), [])
        for (const r of made) assert.isTrue(Option.isNone(yield* store.load(r.id)))
      }).pipe(Effect.scoped))

    it.live(
      "a revoke racing saves that hand the user's sessions to someone else never deletes one it handed over",
      () =>
        Effect.gen(function*() {
          const table = uniqueTable("ukrebind")
          const first = yield* clientWithTable(target, table)
          const { index, store } = yield* withClient(first, SqlStore.make({ table }))
          // the savers on another client (pool, or SQLite connection), so they run beside the revoke
          const other = (yield* withClient(yield* target.client, SqlStore.make({ table, migrate: false }))).store
          const now = yield* Clock.currentTimeMillis
          for (let round = 0; round < 10; round++) {
            const u = `user-${freshId().slice(0, 12)}`
            const v = `user-${freshId().slice(0, 12)}`
            const made = yield* Effect.forEach(
              Array.from({ length: 20 }),
              () => store.create({ id: freshId(), data: bound(u), expiresAt: now + LIFETIME, version: 1 }),
              { concurrency: 8 }
            )
            const [handed, revoked] = yield* Effect.all([
              Effect.forEach(made, (r, i) =>
                Effect.zipRight(
                  Effect.sleep(i % 4),
                  Effect.either(other.save({ ...r, data: bound(v) }))
                ), { concurrency: "unbounded" }),
              Effect.zipRight(Effect.sleep(1), index.revokeIds(u))
            ], { concurrency: "unbounded" })
            const revokedSet = new Set<string>(revoked)
            for (const [i, saved] of handed.entries()) {
              const alive = Option.isSome(yield* store.load(made[i].id))
              if (saved._tag === "Right") {
                assert.isTrue(alive, `round ${round}: a session handed to another user was revoked`)
                assert.isFalse(revokedSet.has(made[i].id), `round ${round}: revokeIds named a handed-over session`)
              } else {
                assert.strictEqual(saved.left.reason, "Gone")
                assert.isFalse(alive)
                assert.isTrue(revokedSet.has(made[i].id), `round ${round}: a revoked session is not named`)
              }
            }
            yield* index.revoke(v)
          }
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("list and revoke find the user's rows through the user key's index", () =>
      Effect.gen(function*() {
        const table = uniqueTable("ukplan")
        const client = yield* clientWithTable(target, table)
        const { store } = yield* withClient(client, SqlStore.make({ table }))
        const now = yield* Clock.currentTimeMillis
        // 200 users with a session each, 100 unbound sessions
        yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => (i < 200 ? `user-${i}` : undefined)),
          (user) => store.create({ id: freshId(), data: bound(user), expiresAt: now + LIFETIME, version: 1 }),
          { concurrency: 8, discard: true }
        )
        const t = quote(dialect, table)
        yield* client.unsafe(dialect === "mysql" ? `ANALYZE TABLE ${t}` : `ANALYZE ${t}`).withoutTransform
        const st = SqlDialect.statements(dialect, { table, schema: undefined })
        const params = [SessionIndex.userKey("user-7"), ""]
        const plans = yield* Effect.forEach(
          dialect === "mysql" ? [st.list, st.lockUser] : [st.list, st.revoke],
          (text) =>
            Effect.map(
              client.unsafe<Record<string, unknown>>(
                `${dialect === "sqlite" ? "EXPLAIN QUERY PLAN" : "EXPLAIN"} ${text}`,
                text === st.list ? [params[0], now] : params
              ).withoutTransform,
              (rows) => JSON.stringify(rows)
            )
        )
        for (const plan of plans) assert.include(plan, st.userKeyIndexName, plan)
      }).pipe(Effect.scoped))

    it.live(
      "revoke of a user with 2,500 sessions deletes and names every one, and no one else's",
      () =>
        Effect.gen(function*() {
          const table = uniqueTable("ukmany")
          const client = yield* clientWithTable(target, table)
          const { index, store } = yield* withClient(client, SqlStore.make({ table }))
          const now = yield* Clock.currentTimeMillis
          const user = `user-${freshId().slice(0, 12)}`
          const ids = Array.from({ length: 2_500 }, () => freshId())
          const json = JSON.stringify(bound(user))
          for (let from = 0; from < ids.length; from += 500) {
            let n = 0
            const p = () => (dialect === "pg" ? `$${++n}` : "?")
            const chunk = ids.slice(from, from + 500)
            yield* client.unsafe(
              `INSERT INTO ${quote(dialect, table)} (id, data, expires_at, version, user_key) VALUES ` +
                chunk.map(() => `(${p()}, ${p()}, ${p()}, ${p()}, ${p()})`).join(", "),
              chunk.flatMap((id) => [id, json, now + LIFETIME, 1, SessionIndex.userKey(user)])
            ).withoutTransform
          }
          const other = yield* store.create({
            id: freshId(),
            data: bound("someone-else"),
            expiresAt: now + LIFETIME,
            version: 1
          })
          assert.strictEqual((yield* index.list(user)).length, ids.length)
          const revoked = yield* index.revokeIds(user, { except: ids[0] })
          assert.deepStrictEqual([...revoked].sort(), ids.slice(1).sort())
          assert.deepStrictEqual((yield* index.list(user)).map((e) => e.id), [ids[0]])
          assert.isTrue(Option.isSome(yield* store.load(other.id)))
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("list skips a corrupt row and a row whose data names someone else, and lists the rest", () =>
      Effect.gen(function*() {
        const table = uniqueTable("ukskip")
        const client = yield* clientWithTable(target, table)
        const { index, store } = yield* withClient(client, SqlStore.make({ table }))
        const now = yield* Clock.currentTimeMillis
        const user = `user-${freshId().slice(0, 12)}`
        const good = yield* store.create({ id: freshId(), data: bound(user), expiresAt: now + LIFETIME, version: 1 })
        const p = dialect === "pg" ? ["$1", "$2", "$3", "$4", "$5"] : ["?", "?", "?", "?", "?"]
        const insert = (data: string, version = 1) =>
          client.unsafe(
            `INSERT INTO ${quote(dialect, table)} (id, data, expires_at, version, user_key) ` +
              `VALUES (${p.join(", ")})`,
            [freshId(), data, now + LIFETIME, version, SessionIndex.userKey(user)]
          ).withoutTransform
        yield* insert("[1, 2, 3]") // JSON, but not an object
        yield* insert(JSON.stringify(bound(user)), 0) // not a valid version
        yield* insert(JSON.stringify(bound("someone-else")))
        yield* insert(JSON.stringify(bound(user, { movedAt: 4_000 })))
        const listed = yield* index.list(user)
        assert.deepStrictEqual(listed.map((e) => e.id), [good.id])
      }).pipe(Effect.scoped))

    it.live("spans of list and revoke name the operation and the database, never a user id, user key or session id", () =>
      Effect.gen(function*() {
        const table = uniqueTable("ukspans")
        const client = yield* clientWithTable(target, table)
        const { index, store } = yield* withClient(client, SqlStore.make({ table }))
        const now = yield* Clock.currentTimeMillis
        const user = `user-secret-${freshId().slice(0, 12)}`
        const created = yield* store.create({ id: freshId(), data: bound(user), expiresAt: now + LIFETIME, version: 1 })
        const [revoked, spans] = yield* recordingSpans(Effect.zipRight(index.list(user), index.revokeIds(user)))
        assert.deepStrictEqual(revoked, [created.id])
        const names = spans.map((s) => s.name)
        assert.include(names, "SqlStore.index.list")
        assert.include(names, "SqlStore.index.revoke")
        assert.include(
          ["postgresql", "mysql", "mariadb", "sqlite"],
          spans.find((s) => s.name === "SqlStore.index.list")?.attributes.get("db.system.name")
        )
        for (const span of spans) {
          for (const [key, value] of span.attributes) {
            for (const secret of [user, SessionIndex.userKey(user), created.id]) {
              assert.notInclude(String(value), secret, `${span.name} ${key}`)
            }
          }
        }
      }).pipe(Effect.scoped))
  })
}
