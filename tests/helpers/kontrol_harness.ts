/**
 * Helpers for the Kontrol integration tests: a Kontrol on 127.0.0.1 over
 * memory or Deno KV storage (with the fixture key pair, so no RSA key is
 * generated per test), kites that carry a kite.key it signed, bounded
 * polling, and JWT inspection.
 *
 * @module
 */
import { compactVerify } from "jose";
import type { Kite } from "../../mod.ts";
import type { Clock } from "../../kite/clock.ts";
import type { KiteConfig } from "../../kite/config.ts";
import { importPublicKey, trimPem } from "../../kite/auth/keys.ts";
import { Kontrol, type KontrolOptions } from "../../kontrol/kontrol.ts";
import type { RegistryTiming } from "../../kontrol/registry.ts";
import { MemoryStorage } from "../../storage/memory.ts";
import { KvStorage } from "../../storage/kv.ts";
import type { Storage } from "../../storage/storage.ts";
import { fixtureKey } from "../fixtures/jwt.ts";
import { testKite } from "./kite_harness.ts";

export { eventually, freePort } from "./wait.ts";

/** Storage engines the flows run against. */
export type Engine = "memory" | "kv";

/** Both engines, for `for (const engine of ENGINES)` test tables. */
export const ENGINES: readonly Engine[] = ["memory", "kv"];

/** The fixture key pair every test Kontrol signs with. */
export const KONTROL_PUBLIC: string = trimPem(
  fixtureKey("kontrol_public.pem"),
);
const KONTROL_PRIVATE = fixtureKey("kontrol_pkcs8.pem");

/** Options for {@linkcode startTestKontrol}. */
export interface TestKontrolOptions {
  /** @default {"memory"} */
  engine?: Engine;
  /** Kontrol's time source (timers of the registry and tokens). */
  clock?: Clock;
  /** Kontrol's username, the token issuer. @default {"kontrol"} */
  username?: string;
  /** @default {0} */
  port?: number;
  /** KV database file; a temp dir is made (and removed on close) when unset. */
  kvPath?: string;
  /** Registry timing overrides. */
  timing?: Partial<RegistryTiming>;
  /** Passed through to {@linkcode Kontrol}. */
  machineAuthenticate?: KontrolOptions["machineAuthenticate"];
  /** Quotas, passed through to {@linkcode Kontrol}. */
  limits?: KontrolOptions["limits"];
  /** Storage probe timing, passed through to {@linkcode Kontrol}. */
  health?: KontrolOptions["health"];
  /** Kite config of Kontrol's kite, over the quiet 127.0.0.1 defaults. */
  kiteConfig?: Partial<KiteConfig>;
  /** Serve the dashboard, passed through to {@linkcode Kontrol}. */
  dashboard?: KontrolOptions["dashboard"];
  /** Let `register` take token auth (pages), passed through to {@linkcode Kontrol}. */
  tokenRegister?: boolean;
  /** Runs after `init()`, before serving (e.g. to wrap `kontrol.kite.fetch`). */
  beforeServe?: (kontrol: Kontrol) => void;
}

/** A serving Kontrol and what a test needs around it. */
export interface TestKontrol {
  /** The Kontrol. */
  kontrol: Kontrol;
  /** Its storage. */
  storage: Storage;
  /** `http://127.0.0.1:<port>/kite`. */
  url: string;
  /** `http://127.0.0.1:<port>` (for the HTTP routes). */
  base: string;
  /** The bound port. */
  port: number;
  /** A kite.key for `username` signed by this Kontrol. */
  kiteKey(username: string): Promise<string>;
  /** Closes Kontrol's kite, then its storage, then removes a temp dir made for it. */
  close(): Promise<void>;
}

/** Starts a Kontrol on 127.0.0.1 with the fixture key pair. */
export async function startTestKontrol(
  options: TestKontrolOptions = {},
): Promise<TestKontrol> {
  let dir: string | undefined;
  let storage: Storage;
  if (options.engine === "kv") {
    let path = options.kvPath;
    if (!path) {
      dir = await Deno.makeTempDir({ prefix: "kontrol_test_" });
      path = `${dir}/kontrol.kv`;
    }
    storage = await KvStorage.open(path, { clock: options.clock });
  } else {
    storage = new MemoryStorage({ clock: options.clock });
  }
  const kontrol = new Kontrol({
    storage,
    clock: options.clock,
    username: options.username,
    timing: options.timing,
    machineAuthenticate: options.machineAuthenticate,
    limits: options.limits,
    health: options.health,
    dashboard: options.dashboard,
    tokenRegister: options.tokenRegister,
    kiteConfig: { ip: "127.0.0.1", logLevel: "FATAL", ...options.kiteConfig },
  });
  try {
    await kontrol.init({
      id: "",
      public: KONTROL_PUBLIC,
      private: KONTROL_PRIVATE,
    });
    options.beforeServe?.(kontrol);
    const { port, url } = await kontrol.kite.serve({
      port: options.port ?? 0,
      hostname: "127.0.0.1",
    });
    return {
      kontrol,
      storage,
      url,
      port,
      base: `http://127.0.0.1:${port}`,
      kiteKey: (username) => kontrol.signKiteKey(username),
      close: async () => {
        await kontrol.kite.close();
        await storage.close();
        if (dir) await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (err) {
    await kontrol.kite.close();
    await storage.close();
    if (dir) await Deno.remove(dir, { recursive: true });
    throw err;
  }
}

/** Runs `fn` with a Kontrol and closes every kite it owned (in reverse), then Kontrol. */
export async function withKontrol(
  engine: Engine,
  fn: (tk: TestKontrol, own: (k: Kite) => Kite) => Promise<void>,
): Promise<void> {
  const tk = await startTestKontrol({ engine });
  const kites: Kite[] = [];
  try {
    await fn(tk, (k) => (kites.push(k), k));
  } finally {
    for (const k of kites.reverse()) await k.close();
    await tk.close();
  }
}

/**
 * A quiet test kite (environment `test`) holding a kite.key for `username`
 * signed by `tk`'s Kontrol: its Kontrol URL, key and username come from it.
 */
export async function kontrolKite(
  tk: TestKontrol,
  name: string,
  username: string,
  config: Partial<KiteConfig> = {},
  clock?: Clock,
): Promise<Kite> {
  return testKite(name, { environment: "test", ...config }, {
    kiteKey: await tk.kiteKey(username),
    clock,
  });
}

/** The exact header text and the claims (in wire order) of a JWT. */
export function jwtParts(
  token: string,
): { header: string; claims: Record<string, unknown> } {
  const [h, c] = token.split(".");
  const text = (part: string) => {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    return new TextDecoder().decode(
      Uint8Array.from(bin, (ch) => ch.charCodeAt(0)),
    );
  };
  return { header: text(h), claims: JSON.parse(text(c)) };
}

/** True when `token` is an RS256 signature under `publicPem`. */
export async function verifiesWith(
  token: string,
  publicPem: string,
): Promise<boolean> {
  const key = await importPublicKey(publicPem, { alg: "RS256" });
  try {
    await compactVerify(token, key, { algorithms: ["RS256"] });
    return true;
  } catch {
    return false;
  }
}
