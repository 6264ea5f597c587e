/**
 * What Kontrol's kite methods (`handlers.ts`) and HTTP routes (`http.ts`)
 * use of the Kontrol that serves them. `Kontrol` implements it; the handlers
 * depend on it alone, so imports point one way: `kontrol.ts` → `handlers.ts`
 * / `http.ts` → `services.ts`.
 *
 * @module
 */
import type { Kite } from "../kite/kite.ts";
import type { Request } from "../kite/request.ts";
import type { Storage, StoredKeyPair } from "../storage/storage.ts";
import type { KontrolLimits } from "./limits.ts";
import type { Registry } from "./registry.ts";
import type { TokenCache } from "./tokens.ts";

/**
 * Checks a `registerMachine` caller and resolves with the username it
 * proved; the new kite.key is signed for that name. Throw to refuse.
 * `registerMachine` runs without kite authentication, so
 * `request.claimedUsername` is only what the caller says; a hook that
 * resolves with nothing gets the call refused.
 */
export type MachineAuthenticate = (
  authType: string,
  request: Request,
) => Promise<string>;

/** The parts of a Kontrol its handlers and routes use. */
export interface KontrolServices {
  /** Kontrol's own kite, which serves the methods and routes. */
  readonly kite: Kite;
  /** Where kites and key pairs live. */
  readonly storage: Storage;
  /** Live registrations of this process. */
  readonly registry: Registry;
  /** Issued tokens, reused while valid. */
  readonly tokens: TokenCache;
  /** Kontrol's username, the issuer of tokens and kite keys. */
  readonly username: string;
  /** Quotas and sizes in force. */
  readonly limits: Readonly<KontrolLimits>;
  /** The `registerMachine` hook, when one was given. */
  readonly options: {
    readonly machineAuthenticate?: MachineAuthenticate;
    /** `register` takes token auth (pages); see `KontrolOptions.tokenRegister`. */
    readonly tokenRegister?: boolean;
  };
  /** A key pair by id (deleted ones too). */
  keyPair(id: string): Promise<StoredKeyPair | undefined>;
  /** A key pair by its public key. */
  keyPairFromPublic(publicKey: string): Promise<StoredKeyPair | undefined>;
  /** The pair new tokens and kite keys are signed with. */
  currentPair(): Promise<StoredKeyPair>;
  /** Signs a kite.key for `username`. */
  signKiteKey(username: string): Promise<string>;
  /**
   * Refuses while the storage fails, so a kite moves to another Kontrol.
   * @throws {KiteError} `genericError` while unhealthy.
   */
  requireHealthy(): void;
  /** False while the storage fails (see {@linkcode KontrolServices.requireHealthy}). */
  readonly healthy: boolean;
}
