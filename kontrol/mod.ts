/**
 * Kontrol, the registry and auth kite, as a library: embed it in your own
 * program or run it with `deno task kontrol`.
 *
 * @example
 * ```ts ignore
 * import { Kontrol } from "jsr:@kite/core/kontrol";
 * import { MemoryStorage } from "jsr:@kite/core/storage";
 * const kontrol = new Kontrol({ storage: new MemoryStorage() });
 * await kontrol.init();
 * await kontrol.kite.serve({ port: 4000 });
 * ```
 *
 * @module
 */
export { Kontrol, KONTROL_VERSION } from "./kontrol.ts";
export { DEFAULT_TIMING, Registry } from "./registry.ts";
export { DEFAULT_KONTROL_LIMITS } from "./limits.ts";
export { DEFAULT_HEALTH_TIMING, StorageHealth } from "./health.ts";
export { audienceFor, signKiteKey, signToken, TokenCache } from "./tokens.ts";
export { loadKeyPair, loadKeyPairFiles, loadOrCreateKeyPair } from "./keys.ts";
export type {
  DashboardOptions,
  KontrolOptions,
  MachineAuthenticate,
} from "./kontrol.ts";
export type { KontrolServices } from "./services.ts";
export type { KontrolLimits } from "./limits.ts";
export type {
  HttpRegistration,
  RegistryLimits,
  RegistryTiming,
  WriteReport,
} from "./registry.ts";
export type { HealthTiming } from "./health.ts";
// The core types Kontrol's API mentions, so this entry point documents itself.
export type * from "../mod.ts";
export type { KeyCache, PemKeyPair, RsaAlg } from "../kite/auth/keys.ts";
export type {
  SignKiteKeyOptions,
  SignTokenOptions,
  TokenCacheKey,
  TokenCacheOptions,
  TokenRequest,
} from "./tokens.ts";
export type {
  LoadedKeyPair,
  LoadKeyPairFilesOptions,
  LoadKeyPairOptions,
} from "./keys.ts";
export type * from "../storage/storage.ts";
