import { runContractSuite } from "effect-sessions/testing"
import { describeService } from "./support/services.js"
import { postgres, sqlStoreSuite, storeLayer, uniqueTable } from "./support/sql.js"

await describeService("SqlStore (PostgreSQL)", postgres.server!.host, postgres.server!.port, () => {
  runContractSuite("contract: SqlStore on PostgreSQL", storeLayer(postgres, uniqueTable("contract")), { live: true })
  sqlStoreSuite(postgres)
})
