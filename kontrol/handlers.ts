/**
 * Kontrol's kite methods: `register`, `getKites`, `getToken`, `getKey`,
 * `registerMachine`, `cancelWatcher` (docs/protocol.md §8.2).
 *
 * @module
 */
import type { Client } from "../kite/client.ts";
import { KiteError } from "../kite/errors.ts";
import {
  identityProblem,
  type KiteIdentity,
  type KiteWithToken,
  type KontrolQuery,
  makeIdentity,
  makeQuery,
  QUERY_FIELDS,
} from "../kite/protocol.ts";
import type { Request } from "../kite/request.ts";
import type { StoredKeyPair, StoredKite } from "../storage/storage.ts";
import type { KontrolServices } from "./services.ts";
import { audienceFor } from "./tokens.ts";
import { checkFieldLengths, checkLength } from "./limits.ts";
import {
  contractQueryFromArgs,
  contractsFromArgs,
  servesContract,
} from "./contracts.ts";
import { KontrolWatch } from "./watch.ts";

/** How long Kontrol waits for `kite.heartbeat` to be accepted (docs/protocol.md §8.5 step 3). */
const HEARTBEAT_CALL_TIMEOUT_MS = 4_000;

/** Reads the seven query fields from untrusted input; other keys are ignored. */
export function queryFromArgs(value: unknown): KontrolQuery {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new KiteError(
      "argumentError",
      "query must be an object with the 7 kite fields",
    );
  }
  const v = value as Record<string, unknown>;
  const fields: Partial<KontrolQuery> = {};
  for (const f of QUERY_FIELDS) {
    const x = v[f];
    if (x === undefined || x === null) continue;
    if (typeof x !== "string") {
      throw new KiteError("argumentError", `query field ${f} must be a string`);
    }
    fields[f] = x;
  }
  return makeQuery(fields);
}

/** The pair a kite's tokens are signed with; deleted pairs fall back to Kontrol's current one. */
export async function signingPair(
  kontrol: KontrolServices,
  keyId: string,
): Promise<StoredKeyPair> {
  const pair = await kontrol.keyPair(keyId);
  if (!pair) {
    throw new KiteError("genericError", "no valid authentication key found");
  }
  return pair.deleted ? await kontrol.currentPair() : pair;
}

/** A (cached) token for calling kites of `audience`, for user `subject`. */
export async function tokenFor(
  kontrol: KontrolServices,
  audience: string,
  subject: string,
  keyId: string,
  force = false,
): Promise<string> {
  const pair = await signingPair(kontrol, keyId);
  return kontrol.tokens.get({
    audience,
    subject,
    issuer: kontrol.username,
    keyId: pair.id,
    privateKeyPem: pair.private,
    force,
  });
}

/**
 * Resolves the key pair behind a caller's kite key (docs/protocol.md §8.2 `register`):
 * a live pair is used as is; a deleted one means the caller gets a new kite
 * key signed with the current pair.
 */
export async function pairForKontrolKey(
  kontrol: KontrolServices,
  kontrolKey: unknown,
): Promise<{ pair: StoredKeyPair; rotated: boolean }> {
  if (typeof kontrolKey !== "string" || kontrolKey === "") {
    throw new KiteError("genericError", "public key is not passed");
  }
  const stored = await kontrol.keyPairFromPublic(kontrolKey);
  if (!stored) {
    throw new KiteError("genericError", "no valid authentication key found");
  }
  if (stored.deleted) {
    return { pair: await kontrol.currentPair(), rotated: true };
  }
  return { pair: stored, rotated: false };
}

/**
 * The username the caller's credential proved. Every Kontrol method but
 * `registerMachine` requires authentication, so this only fails if that
 * was turned off — and then nothing is signed for a claimed name.
 */
function authenticatedUser(r: Request): string {
  if (r.username === undefined) {
    throw new KiteError(
      "authenticationError",
      "No authentication information is provided",
    );
  }
  return r.username;
}

function requireKiteKey(r: Request): void {
  if (r.auth?.type !== "kiteKey") {
    throw new KiteError(
      "genericError",
      `Unexpected authentication type: ${r.auth?.type ?? "none"}`,
    );
  }
}

/** The identity a registering kite claims on its connection, with the authenticated username. */
function registeringIdentity(r: Request, maxField: number): KiteIdentity {
  const claimed = r.client.remote ?? r.remoteKite;
  const kite = makeIdentity({ ...claimed, username: authenticatedUser(r) });
  checkFieldLengths(kite, maxField);
  const problem = identityProblem(kite);
  if (problem) throw new KiteError("argumentError", problem);
  return kite;
}

interface Watcher {
  client: Client;
  cancel(): void;
  watch: KontrolWatch;
}

/** What the handlers offer Kontrol back. */
export interface KontrolHandlers {
  /** Resynchronises every watcher (events may have been missed). */
  resyncWatchers(): void;
  /** Watchers open now. */
  watcherCount(): number;
}

/** Counts per key, forgetting keys that drop to zero. */
class Counts<K> {
  #counts = new Map<K, number>();
  get(key: K): number {
    return this.#counts.get(key) ?? 0;
  }
  add(key: K, delta: number): void {
    const n = this.get(key) + delta;
    if (n > 0) this.#counts.set(key, n);
    else this.#counts.delete(key);
  }
}

/** Registers Kontrol's methods on its kite. */
export function addKontrolHandlers(kontrol: KontrolServices): KontrolHandlers {
  const kite = kontrol.kite;
  const watchers = new Map<string, Watcher>();
  const watchersOf = new Counts<Client>();
  const watchersBy = new Counts<string>();
  const limits = kontrol.limits;

  /**
   * Counts a watcher of `client` for `username`, or refuses it past the
   * per-connection or per-user quota; returns the release.
   */
  const reserveWatcher = (client: Client, username: string): () => void => {
    const quotas: [number, number, string][] = [
      [
        watchersOf.get(client),
        limits.maxWatchersPerConnection,
        "this connection has %n watchers, the most Kontrol allows (maxWatchersPerConnection, KONTROL_MAXWATCHERSPERCONNECTION)",
      ],
      [
        watchersBy.get(username),
        limits.maxWatchersPerUser,
        `user ${username} has %n watchers, the most Kontrol allows (maxWatchersPerUser, KONTROL_MAXWATCHERSPERUSER); cancel some with cancelWatcher`,
      ],
    ];
    for (const [n, max, text] of quotas) {
      if (n >= max) {
        throw new KiteError("requestLimitError", text.replace("%n", `${n}`));
      }
    }
    watchersOf.add(client, 1);
    watchersBy.add(username, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      watchersOf.add(client, -1);
      watchersBy.add(username, -1);
    };
  };
  const resyncWatchers = () => {
    for (const w of watchers.values()) void w.watch.resync();
  };
  // Watchers learn what passed while the storage's watch was down.
  kontrol.storage.onWatchGap?.(resyncWatchers);

  kite.handle("register", async (r) => {
    // A page has no kite.key: it registers with the token its app handed
    // it, under that token's user only, and gets no kite.key back.
    const byToken = r.auth?.type === "token" && !!kontrol.options.tokenRegister;
    if (!byToken) requireKiteKey(r);
    kontrol.requireHealthy();
    const arg = r.args.one().object<{ url?: unknown; contracts?: unknown }>();
    const url = typeof arg.url === "string" ? arg.url : "";
    if (!url) throw new KiteError("genericError", "empty url");
    checkLength("url", url, limits.maxUrlLength);
    if (!URL.canParse(url)) {
      throw new KiteError("argumentError", `invalid url: ${url}`);
    }
    const identity = registeringIdentity(r, limits.maxFieldLength);
    const claimed = r.claimedUsername;
    if (byToken && claimed && claimed !== identity.username) {
      throw new KiteError(
        "authenticationError",
        `a token for ${identity.username} registers kites of ${identity.username} only, not of ${claimed}`,
      );
    }
    const contracts = contractsFromArgs(arg.contracts, limits.maxFieldLength);
    const { pair, rotated } = byToken
      ? { pair: await kontrol.currentPair(), rotated: false }
      : await pairForKontrolKey(kontrol, r.claims?.kontrolKey);
    await kontrol.registry.register(
      { kite: identity, url, keyId: pair.id, ...(contracts && { contracts }) },
      r.client,
    );
    // Go sends kite.heartbeat before the register reply (docs/protocol.md §8.2, §8.5).
    const seconds = kontrol.registry.timing.heartbeatIntervalMs / 1000;
    r.client.tellWithTimeout(
      "kite.heartbeat",
      HEARTBEAT_CALL_TIMEOUT_MS,
      seconds,
      () => kontrol.registry.ping(identity.id),
    ).catch((err) =>
      kite.logger.warning(
        `kite.heartbeat on ${identity.id} failed: ${err.message}`,
      )
    );
    const result: Record<string, unknown> = { url, heartbeatInterval: 0 };
    if (rotated) {
      result.publicKey = pair.public;
      result.kiteKey = await kontrol.signKiteKey(identity.username);
    }
    return result;
  });

  kite.handle("getKites", async (r) => {
    const arg = r.args.one().object<
      { query?: unknown; watchCallback?: unknown; contract?: unknown }
    >();
    if (arg.query === undefined || arg.query === null) {
      throw new KiteError("argumentError", "query is missing");
    }
    const query = queryFromArgs(arg.query);
    checkFieldLengths(query, limits.maxFieldLength);
    const contract = contractQueryFromArgs(
      arg.contract,
      limits.maxFieldLength,
    );
    const caller = authenticatedUser(r);
    const watching = typeof arg.watchCallback === "function";
    kontrol.requireHealthy();
    const client = r.client;
    // A watcher counts from here, so concurrent calls cannot overshoot.
    const release = watching ? reserveWatcher(client, caller) : () => {};
    let found: StoredKite[];
    let kites: KiteWithToken[];
    try {
      // Shuffled, as Go's Kontrol does: callers that take the first match
      // spread over the instances instead of all hitting the same one.
      found = shuffle([...await kontrol.storage.get(query)]);
      if (contract) found = found.filter((k) => servesContract(k, contract));
      // Each token names the kite it was found for, never more: Go builds
      // `aud` from the query, so an id-only query got `/`, which every kite
      // accepts (docs/protocol.md §6.7); Go kites accept the narrower `/user/env/name`.
      kites = await Promise.all(found.map(async (k) => ({
        kite: k.kite,
        url: k.url,
        keyId: k.keyId,
        token: await tokenFor(kontrol, audienceFor(k.kite), caller, k.keyId),
        ...(k.contracts && { contracts: k.contracts }),
      })));
    } catch (err) {
      release();
      throw err;
    }
    if (!watching) return { kites };
    if (!client.connected) {
      release(); // gone meanwhile: nothing would ever cancel the watcher
      return { kites };
    }
    const watcherID = crypto.randomUUID();
    const watch = new KontrolWatch(kontrol, {
      client,
      callback: arg.watchCallback as (reply: unknown) => void,
      query,
      token: (kite, keyId) =>
        tokenFor(kontrol, audienceFor(kite), caller, keyId),
    }, found.map((k) => k.kite));
    // The watch started after the read: what changed in between is sent now.
    void watch.resync();
    const off = client.onDisconnect(() => cancel());
    const cancel = () => {
      if (!watchers.delete(watcherID)) return;
      watch.cancel();
      off();
      release();
    };
    watchers.set(watcherID, { client, cancel, watch });
    return { kites, watcherID };
  });

  kite.handle("cancelWatcher", (r) => {
    const id = r.args.one().string();
    checkLength("watcher id", id, limits.maxFieldLength); // echoed below
    const watcher = watchers.get(id);
    if (!watcher || watcher.client !== r.client) {
      throw new KiteError("genericError", `no watcher ${id}`);
    }
    watcher.cancel();
    return null;
  });

  kite.handle("getToken", async (r) => {
    const arg = r.args.one().object<Record<string, unknown>>();
    const query = queryFromArgs(arg);
    checkFieldLengths(query, limits.maxFieldLength);
    kontrol.requireHealthy();
    if (namesKontrol(query, kite.identity)) {
      // A token for calling Kontrol itself, for a web page that must never
      // hold a kite.key: only a kite.key may get one, so a token cannot
      // extend itself (docs/protocol.md §6.10).
      requireKiteKey(r);
      const pair = await kontrol.currentPair();
      return tokenFor(
        kontrol,
        audienceFor(kite.identity),
        authenticatedUser(r),
        pair.id,
        arg.force === true,
      );
    }
    const found = await kontrol.storage.get(query);
    if (found.length > 1) {
      throw new KiteError("genericError", "query matches more than one kite");
    }
    if (found.length === 0) {
      throw new KiteError("genericError", "no kites found");
    }
    return tokenFor(
      kontrol,
      audienceFor(found[0].kite),
      authenticatedUser(r),
      found[0].keyId,
      arg.force === true,
    );
  });

  kite.handle("getKey", async (r) => {
    // A page (token, no kite.key) needs the key to check the callers a
    // tunnel brings it: it gets the current one. Go takes kite keys only.
    if (r.auth?.type === "token" && kontrol.options.tokenRegister) {
      return (await kontrol.currentPair()).public;
    }
    requireKiteKey(r);
    const { pair } = await pairForKontrolKey(kontrol, r.claims?.kontrolKey);
    return pair.public;
  });

  kite.handle("registerMachine", async (r) => {
    const hook = kontrol.options.machineAuthenticate;
    if (!hook) {
      throw new KiteError("genericError", "no valid authentication key found");
    }
    const authType = r.args.one().get("authType");
    let username: unknown;
    try {
      username = await hook(authType.isNull() ? "" : authType.string(), r);
    } catch (err) {
      throw new KiteError(
        "authenticationError",
        `cannot authenticate user: ${(err as Error).message}`,
      );
    }
    // Auth is off for this method, so the caller's kite.username is only a
    // claim: the key is signed for the name the hook vouches for, or none.
    if (typeof username !== "string" || username === "") {
      throw new KiteError(
        "authenticationError",
        "cannot authenticate user: machineAuthenticate named no user",
      );
    }
    return await kontrol.signKiteKey(username);
  }).disableAuthentication();

  return { resyncWatchers, watcherCount: () => watchers.size };
}

/**
 * Whether a `getToken` query asks for Kontrol itself: its username and the
 * name `kontrol`, every other field empty or Kontrol's own.
 */
function namesKontrol(query: KontrolQuery, self: KiteIdentity): boolean {
  if (query.name !== self.name || query.username !== self.username) {
    return false;
  }
  return QUERY_FIELDS.every((f) => query[f] === "" || query[f] === self[f]);
}

/** Shuffles `items` in place (Fisher–Yates) and returns it. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
