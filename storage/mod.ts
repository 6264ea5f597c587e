/**
 * Kontrol's storage: the {@linkcode Storage} interface, the query semantics
 * every adapter shares, and the adapters without external drivers — memory
 * and Deno KV. The etcd and PostgreSQL adapters have their own sub-path
 * exports so that importing this module pulls in no database driver.
 *
 * @example
 * ```ts
 * import { KvStorage, MemoryStorage } from "./mod.ts";
 *
 * const forTests = new MemoryStorage();
 * const persistent = await KvStorage.open("./kontrol.db");
 * await persistent.close();
 * await forTests.close();
 * ```
 *
 * @module
 */
export { compileQuery, QueryError } from "./query.ts";
export { MemoryStorage } from "./memory.ts";
export { DEFAULT_POLL_INTERVAL, KvStorage } from "./kv.ts";
export type { CompiledQuery } from "./query.ts";
// Types the storage API mentions, so this module documents on its own.
export { QUERY_FIELDS } from "../kite/protocol.ts";
export type { QueryField } from "../kite/protocol.ts";
export type { KiteIdentity, KontrolQuery } from "../kite/protocol.ts";
export type { Clock } from "../kite/clock.ts";
export type { KvStorageOptions } from "./kv.ts";
export type * from "./storage.ts";
