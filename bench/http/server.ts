/**
 * One benchmark HTTP server, in its own process: `node --import tsx bench/http/server.ts <variant id>`.
 * Over IPC it sends `{ type: "ready", port }`, answers `{ type: "counts" }` with the store call counts
 * and the CPU time (user + system, µs) of the process so far, and on `{ type: "stop" }` closes the server, removes its table or keys and exits.
 */
import { onParent, toParent } from "../lib/child.js"
import { type Server, variants } from "./variants.js"

const id = process.argv[2]
const variant = variants.find((v) => v.id === id)
if (variant === undefined) {
  console.error(`unknown variant ${id}; one of ${variants.map((v) => v.id).join(", ")}`)
  process.exit(2)
}

const server: Server = variant.framework === "express"
  ? await (await import("./express.js")).start(variant)
  : await (await import("./effect.js")).start(variant)

onParent("counts", () => {
  const cpu = process.cpuUsage()
  toParent({ type: "counts", ...server.counts(), cpuMicros: cpu.user + cpu.system })
})
onParent("stop", async () => {
  try {
    await server.close()
  } catch (error) {
    console.error(`${variant.id}: cleanup failed:`, error)
  }
  toParent({ type: "stopped" })
  process.exit(0)
})
toParent({ type: "ready", port: server.port })
