import { runContractSuite } from "effect-sessions/testing"
import { describeService } from "./support/services.js"
import { mariadb, sqlStoreSuite, storeLayer, uniqueTable } from "./support/sql.js"

await describeService("SqlStore (MySQL/MariaDB)", mariadb.server!.host, mariadb.server!.port, () => {
  runContractSuite("contract: SqlStore on MySQL/MariaDB", storeLayer(mariadb, uniqueTable("contract")), { live: true })
  sqlStoreSuite(mariadb)
})
