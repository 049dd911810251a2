import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { describeService } from "./support/services.js"
import { postgres, sqlStoreSuite, storeLayer, uniqueTable } from "./support/sql.js"
import { sqlIndexSuite } from "./support/sqlIndex.js"

await describeService("SqlStore (PostgreSQL)", postgres.server!.host, postgres.server!.port, () => {
  runContractSuite("contract: SqlStore on PostgreSQL", storeLayer(postgres, uniqueTable("contract")), { live: true })
  // the client's statement path, which the store otherwise takes only inside the app's transactions
  runContractSuite(
    "contract: SqlStore on PostgreSQL, reservedConnections: 0",
    storeLayer(postgres, uniqueTable("contract0"), { reservedConnections: 0 }),
    { live: true }
  )
  // unnamed statements on the reserved connections
  runContractSuite(
    "contract: SqlStore on PostgreSQL, preparedStatements: false",
    storeLayer(postgres, uniqueTable("contractu"), { preparedStatements: false }),
    { live: true }
  )
  runIndexContractSuite("index contract: SqlStore on PostgreSQL", storeLayer(postgres, uniqueTable("index")), {
    live: true
  })
  sqlStoreSuite(postgres)
  sqlIndexSuite(postgres)
})
