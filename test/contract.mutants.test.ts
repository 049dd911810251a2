import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { MemoryStore } from "effect-sessions"
import { checks, indexChecks, runCheck } from "effect-sessions/testing"
import { flawless, indexMutants, mutants } from "./mutants/index.js"

const rules = new Set(checks.map((c) => c.rule))

/** The failure a check reports, for the assertion message (checks' messages carry no id or data). */
const failureOf = (exit: Exit.Exit<void, unknown>): string =>
  Exit.isSuccess(exit) ? "passed" : Option.match(Cause.failureOption(exit.cause), {
    onNone: () => Cause.pretty(exit.cause),
    onSome: (e) => String((e as { message?: unknown }).message ?? e)
  })

describe("the contract suite", () => {
  it("has unique check names, and every rule is covered by a mutant", () => {
    assert.strictEqual(new Set(checks.map((c) => c.name)).size, checks.length)
    const covered = new Set(mutants.flatMap((m) => m.rules))
    for (const rule of rules) assert.isTrue(covered.has(rule), `no mutant breaks ${rule}`)
  })

  for (const [name, layer] of [["MemoryStore", MemoryStore.layer()], ["the flawless Map store", flawless]] as const) {
    it.effect(`passes every check on ${name}`, () =>
      Effect.gen(function*() {
        for (const check of checks) {
          const exit = yield* Effect.exit(runCheck(check))
          assert.isTrue(Exit.isSuccess(exit), `${check.name}: ${failureOf(exit)}`)
        }
      }).pipe(Effect.provide(layer)))
  }

  for (const mutant of mutants) {
    it.effect(`catches ${mutant.name}`, () =>
      Effect.gen(function*() {
        for (const rule of mutant.rules) {
          const own = checks.filter((c) => c.rule === rule)
          assert.isNotEmpty(own, `the suite has no rule ${rule}`)
          const exits = yield* Effect.forEach(own, (check) => Effect.exit(runCheck(check)))
          assert.isTrue(exits.some(Exit.isFailure), `every check of ${rule} passed on ${mutant.name}`)
        }
      }).pipe(Effect.provide(mutant.layer)))
  }
})

describe("the index contract suite", () => {
  const indexRules = new Set(indexChecks.map((c) => c.rule))

  it("has unique check names, and every rule is covered by a mutant", () => {
    assert.strictEqual(new Set(indexChecks.map((c) => c.name)).size, indexChecks.length)
    const covered = new Set(indexMutants.flatMap((m) => m.rules))
    for (const rule of indexRules) assert.isTrue(covered.has(rule), `no mutant breaks ${rule}`)
  })

  for (const [name, layer] of [["MemoryStore", MemoryStore.layer()], ["the flawless Map store", flawless]] as const) {
    it.effect(`passes every index check on ${name}`, () =>
      Effect.gen(function*() {
        for (const check of indexChecks) {
          const exit = yield* Effect.exit(check.run)
          assert.isTrue(Exit.isSuccess(exit), `${check.name}: ${failureOf(exit)}`)
        }
      }).pipe(Effect.provide(layer)))
  }

  for (const mutant of indexMutants) {
    it.effect(`catches ${mutant.name}`, () =>
      Effect.gen(function*() {
        // a broken index must not break the store contract: the index checks alone catch it
        for (const check of checks) {
          const exit = yield* Effect.exit(runCheck(check))
          assert.isTrue(Exit.isSuccess(exit), `${mutant.name} breaks the store check ${check.name}`)
        }
        for (const rule of mutant.rules) {
          const own = indexChecks.filter((c) => c.rule === rule)
          assert.isNotEmpty(own, `the index suite has no rule ${rule}`)
          const exits = yield* Effect.forEach(own, (check) => Effect.exit(check.run))
          assert.isTrue(exits.some(Exit.isFailure), `every check of ${rule} passed on ${mutant.name}`)
        }
      }).pipe(Effect.provide(mutant.layer)))
  }
})
