import * as path from "node:path"
import { defineConfig } from "vitest/config"

const src = path.resolve(import.meta.dirname, "src")

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-sessions$/, replacement: path.join(src, "index.ts") },
      { find: /^effect-sessions\/(.*)$/, replacement: path.join(src, "$1.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
    minWorkers: 1
  }
})
