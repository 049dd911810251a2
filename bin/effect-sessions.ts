#!/usr/bin/env node
/**
 * The `effect-sessions` command.
 *
 * - `effect-sessions keygen` prints a fresh cookie signing key: 32 random bytes, base64.
 *   Put it first in `SESSION_KEYS` (comma-separated, newest first) to rotate.
 *
 * Run it with `npx effect-sessions keygen` from an installed package, or
 * `npx tsx bin/effect-sessions.ts keygen` from a checkout.
 */
import { generateKey } from "../src/internal/signerKeys.js"

const usage = `Usage: effect-sessions <command>

Commands:
  keygen    print a fresh cookie signing key (32 random bytes, base64)

Signed cookies read their keys from SESSION_KEYS: comma-separated, newest first.
The first key signs, all keys verify; drop a key to revoke every session signed with it.
`

const [command, ...rest] = process.argv.slice(2)

if (command === "keygen" && rest.length === 0) {
  process.stdout.write(`${generateKey()}\n`)
} else if ((command === "help" || command === "--help" || command === "-h") && rest.length === 0) {
  process.stdout.write(usage)
} else {
  process.stderr.write(usage)
  process.exitCode = 2
}
