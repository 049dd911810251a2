/**
 * One deliberately broken store per contract rule: the contract suite must catch each of them.
 */
import type { Layer } from "effect"
import type { SessionIndex, SessionStore } from "effect-sessions"
import * as FlawedStore from "./FlawedStore.js"

export interface Mutant {
  readonly name: string
  /** The rules it breaks: on this store, at least one check of each must fail. */
  readonly rules: ReadonlyArray<string>
  readonly layer: Layer.Layer<SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex>
}

const mutant = (name: string, rules: ReadonlyArray<string>, flaws: FlawedStore.Flaws): Mutant => ({
  name,
  rules,
  layer: FlawedStore.layer(flaws)
})

export const mutants: ReadonlyArray<Mutant> = [
  mutant("a create that overwrites a live record", ["create-never-overwrites"], { createOverwrites: true }),
  mutant("a create that never replaces an expired record", ["create-replaces-expired"], {
    createNeverReplacesExpired: true
  }),
  mutant("a create that checks, yields, then writes", ["create-is-atomic"], { createRacy: true }),
  mutant("a create that returns something else", ["create-returns-record"], { createReturnsOther: true }),
  mutant("a save that ignores the version", ["save-is-cas"], { saveIgnoresVersion: true }),
  mutant("a save that checks, yields, then writes", ["save-is-atomic"], { saveRacy: true }),
  mutant("a save that inserts when the record is gone", ["save-never-inserts"], { saveInserts: true }),
  mutant("a save that keeps the version", ["save-bumps-version"], { saveKeepsVersion: true }),
  mutant("a load that returns expired records", ["load-hides-expired"], { loadReturnsExpired: true }),
  mutant("a load that fails for a missing id", ["load-missing-is-none"], { loadMissingFails: true }),
  mutant("a load that rebuilds data by assignment", ["proto-keys-are-data"], { loadAssigns: true }),
  mutant("a store that keeps JSON as latin1", ["round-trip"], { latin1: true }),
  mutant("a store that keeps expiresAt in seconds", ["expires-at-exact"], { expiresAtInSeconds: true }),
  mutant("a delete that does nothing", ["delete-removes"], { deleteDoesNothing: true }),
  mutant("a delete that fails the second time", ["delete-is-idempotent"], { deleteFailsWhenMissing: true }),
  mutant("a store without the data rules", ["encode-refused", "size-cap"], { encodeNotEnforced: true }),
  mutant("error messages that name the id", ["errors-carry-no-secrets"], { errorsCarryId: true }),
  mutant("a deleteExpired that removes live records", ["delete-expired-removes-only-expired"], {
    deleteExpiredRemovesLive: true
  }),
  mutant("a deleteExpired that returns 0", ["delete-expired-removes-only-expired"], { deleteExpiredMiscounts: true })
]

/** The same store without flaws: every check must pass on it, so each mutant fails for its flaw alone. */
export const flawless: Layer.Layer<
  SessionStore.SessionStore | SessionStore.ExpiredDeletion | SessionIndex.SessionIndex
> = FlawedStore.layer()

/** One broken index per rule of the index contract: its checks must catch each of them. */
export const indexMutants: ReadonlyArray<Mutant> = [
  mutant("an index whose list returns every user's sessions", ["list-after-create"], { listIgnoresUser: true }),
  mutant("an index that drops the device details", ["list-after-create"], { listDropsDevice: true }),
  mutant("an index filed at create only", ["list-after-save"], { indexNotRefiledOnSave: true }),
  mutant("an index that lists expired sessions", ["list-only-live"], { listIncludesExpired: true }),
  mutant("an index that files a moved session's tombstone", ["list-only-live"], { indexFilesTombstones: true }),
  mutant("a revoke that counts expired sessions", ["revoke-all"], { revokeCountsExpired: true }),
  mutant("a revoke that ignores except", ["revoke-except"], { revokeIgnoresExcept: true }),
  mutant("a revoke that skips sessions saved since it listed them", ["revoke-beats-saves"], { revokeByVersion: true }),
  mutant("a create that files the index before writing, and a revoke that clears the user's set", [
    "create-vs-revoke"
  ], { indexFiledFirstAndRevokeClearsSet: true })
]
