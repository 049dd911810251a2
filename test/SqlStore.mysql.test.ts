import { runContractSuite, runIndexContractSuite } from "effect-sessions/testing"
import { describeService } from "./support/services.js"
import { mariadb, sqlStoreSuite, storeLayer, uniqueTable } from "./support/sql.js"
import { sqlIndexSuite } from "./support/sqlIndex.js"

await describeService("SqlStore (MySQL/MariaDB)", mariadb.server!.host, mariadb.server!.port, () => {
  runContractSuite("contract: SqlStore on MySQL/MariaDB", storeLayer(mariadb, uniqueTable("contract")), { live: true })
  // the client's statement path, which the store otherwise takes only inside the app's transactions
  runContractSuite(
    "contract: SqlStore on MySQL/MariaDB, reservedConnections: 0",
    storeLayer(mariadb, uniqueTable("contract0"), { reservedConnections: 0 }),
    { live: true }
  )
  runIndexContractSuite("index contract: SqlStore on MySQL/MariaDB", storeLayer(mariadb, uniqueTable("index")), {
    live: true
  })
  sqlStoreSuite(mariadb)
  sqlIndexSuite(mariadb)
})
