import { describe } from "@effect/vitest"
import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { sqlite, sqlStoreSuite, storeLayer, tempSqliteFile, uniqueTable } from "./support/sql.js"
import { sqlIndexSuite } from "./support/sqlIndex.js"

describe("SqlStore (SQLite)", () => {
  const file = sqlite(tempSqliteFile())
  runContractSuite("contract: SqlStore on SQLite (file)", storeLayer(file, uniqueTable("contract")), { live: true })
  runContractSuite("contract: SqlStore on SQLite (:memory:)", storeLayer(sqlite(":memory:"), uniqueTable("contract")), {
    live: true
  })
  runIndexContractSuite("index contract: SqlStore on SQLite (file)", storeLayer(file, uniqueTable("index")), {
    live: true
  })
  // Concurrency across two connections to one WAL file (one connection would serialise everything).
  sqlStoreSuite(file)
  sqlIndexSuite(file)
})
