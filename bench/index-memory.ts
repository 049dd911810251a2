/**
 * The session index benchmark on the in-process stores (`npx tsx bench/index-memory.ts`): MemoryStore, and
 * CachingStore (LruStore over MemoryStore). Prints a table and, with `--json`, one JSON line of rows.
 */
import * as CachingStore from "../src/CachingStore.js"
import * as LruStore from "../src/LruStore.js"
import * as MemoryStore from "../src/MemoryStore.js"
import { type IndexRow, printRows, runIndexBench } from "./lib/indexBench.js"

/** Runs the benchmark on both stores and returns the rows. */
export const runIndexMemory = async (): Promise<ReadonlyArray<IndexRow>> => [
  ...await runIndexBench("MemoryStore", MemoryStore.layer({ spans: false })),
  ...await runIndexBench(
    "CachingStore(Lru over Memory)",
    CachingStore.layer({
      cache: LruStore.layer({ maxEntries: 200_000, spans: false }),
      store: MemoryStore.layer({ spans: false }),
      spans: false
    })
  )
]
if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runIndexMemory()
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows))
  else printRows(rows)
}
