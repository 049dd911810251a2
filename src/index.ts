/**
 * effect-sessions: server-side sessions for Effect HTTP apps.
 *
 * Core modules are re-exported here as namespaces. Stores that need an optional
 * dependency live on their own subpaths: `effect-sessions/SqlStore`,
 * `effect-sessions/RedisStore`, `effect-sessions/MongoStore`; the store contract
 * suite is `effect-sessions/testing`.
 *
 * @since 0.1.0
 */
export * as CachingStore from "./CachingStore.js"
export * as CookieSigner from "./CookieSigner.js"
export * as Csrf from "./Csrf.js"
export * as Expiry from "./Expiry.js"
export * as Invalidation from "./Invalidation.js"
export * as LruStore from "./LruStore.js"
export * as MemoryStore from "./MemoryStore.js"
export * as Session from "./Session.js"
export * as SessionData from "./SessionData.js"
export * as SessionId from "./SessionId.js"
export * as SessionIndex from "./SessionIndex.js"
export * as SessionMiddleware from "./SessionMiddleware.js"
export * as SessionRecord from "./SessionRecord.js"
export * as SessionStore from "./SessionStore.js"
export * as SessionToken from "./SessionToken.js"
export * as StoreError from "./StoreError.js"
