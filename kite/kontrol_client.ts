/**
 * The kite side of Kontrol: registering, finding other kites, tokens and
 * keys (docs/protocol.md §8.2, §8.3, §8.5, §6.10; Go `kontrolclient.go`).
 *
 * @module
 */
import { TokenRenewer } from "./auth/token_renewer.ts";
import { Backoff } from "./backoff.ts";
import { KontrolWatcher } from "./kontrol_watch.ts";
import type { Client, ClientOptions } from "./client.ts";
import type { Clock } from "./clock.ts";
import type { KiteConfig } from "./config.ts";
import { KiteError } from "./errors.ts";
import {
  explainKontrolError,
  isKiteKeyRefusal,
  unreachableError,
} from "./kontrol_errors.ts";
import { type Logger, rateLimited } from "./log.ts";
import {
  type ContractQuery,
  type ContractRef,
  type KiteEvent,
  type KiteIdentity,
  type KiteWithToken,
  KONTROL_UNAVAILABLE,
  type KontrolQuery,
  makeQuery,
  type RegisterResult,
} from "./protocol.ts";

/** Retry interval for failed registrations (Go `kontrolRetryDuration`). */
const REGISTER_RETRY_MS = 10_000;
/**
 * How often a kite registered with a Kontrol other than the first of its
 * list tries to move back to the first (the preferred one).
 */
export const PREFERRED_RETRY_MS = 60_000;

/** Heartbeats in a row an HTTP-registered kite lets fail before it registers with the next Kontrol of its list. */
const HTTP_MISSED_HEARTBEATS = 3;

/** The part of a kite its Kontrol client uses (a `Kite` is one). */
export interface KontrolHost {
  /** Settings; register replies update `kiteKey` and `kontrolKey`. */
  readonly config: KiteConfig;
  /** The identity registered. */
  readonly identity: KiteIdentity;
  /** The kite's own URL on this machine. */
  readonly url: string;
  /** The URL registered by default (reachable from other hosts). */
  readonly registerURL: string;
  /** Why there is no kite.key, when the kite looked for one (said when Kontrol is needed). */
  readonly kiteKeyProblem?: Error;
  /**
   * A token for calling Kontrol, used when there is no kite.key: what a web
   * page holds (never a kite.key).
   */
  readonly kontrolToken?: KontrolToken;
  /** Time source for retries and heartbeats. */
  readonly clock: Clock;
  /** Where retries are logged. */
  readonly logger: Logger;
  /** Dials another kite (Kontrol, or a kite it found). */
  newClient(url: string, options?: ClientOptions): Client;
  /** Runs `fn` when the kite closes. */
  addCloser(fn: () => void | Promise<void>): () => void;
  /** Called when the trusted Kontrol key or kite key changed. */
  onTrustChange(): void;
  /**
   * Keeps a re-issued kite key for the next start (`$KITE_HOME/kite.key`);
   * resolves with where it went, if anywhere.
   */
  saveKiteKey?(key: string): Promise<string | undefined>;
  /** Contracts sent with each registration (none: the Go wire shape exactly). */
  readonly contracts?: readonly ContractRef[];
}

/** Options of {@linkcode KontrolClient.getKites}. */
export interface GetKitesOptions {
  /**
   * Only kites that registered this contract (name, and a semver range on
   * its version). Kontrols of this package filter; a Go Kontrol ignores it.
   */
  contract?: ContractQuery;
}

/**
 * A token for calling Kontrol (audience `/<kontrol user>/<env>/kontrol`),
 * handed to a page by its server: a kite with a kite.key gets one with
 * `kite.kontrol.getToken({ username: "kontrol", name: "kontrol" })`.
 */
export interface KontrolToken {
  /** The token. */
  key: string;
  /**
   * Fetches a fresh token when Kontrol refuses `expired` (e.g. from an
   * HTTP endpoint of the page's server). Without it an expired token fails
   * the call.
   */
  renew?: (expired: string) => Promise<string>;
}

/** A retry loop says what it waits for at most this often. */
const RETRY_WARNING_MS = 30_000;

/** A kite found through Kontrol: a ready-to-dial client plus what Kontrol said. */
export interface FoundKite extends KiteWithToken {
  /** A client carrying the token; call `dial()` on it. */
  client: Client;
  /**
   * Keeps `client.auth` fresh: armed while the client is connected, it
   * renews 30 s before `exp` and at once when a call is refused with
   * `token is expired` (docs/protocol.md §6.10). `stop()` it to turn proactive renewal off.
   */
  renewer: TokenRenewer;
}

/** Options for {@linkcode KontrolClient.getToken}. */
export interface GetTokenOptions {
  /** Sign a new token even if Kontrol has one cached (Go `GetTokenForce`). @default {false} */
  force?: boolean;
}

/**
 * Cancels a watch started with {@linkcode KontrolClient.watchKites}. Never
 * rejects (it may be called without `await`): when the connection is gone
 * the watch went with it; a refusal is logged.
 */
export type CancelWatch = () => Promise<void>;

/** Options for {@linkcode KontrolClient.watchKites}. */
export interface WatchKitesOptions {
  /**
   * Pass the kites registered when the watch starts on as REGISTER events
   * too, so one listener sees the whole set (a dashboard). @default {false}
   */
  initial?: boolean;
}

/** Options for HTTP registration. */
export interface RegisterHTTPOptions {
  /** Keep re-registering when Kontrol forgets the kite. @default {true} */
  forever?: boolean;
}

/**
 * Talks to Kontrol on behalf of a kite. Get it from `kite.kontrol`.
 *
 * `kontrolURL` (kite.key claim, `KITE_KONTROL_URL` or config) may list
 * several Kontrols sharing one storage, separated by commas:
 * `http://k1:4000/kite,http://k2:4000/kite`. The client talks to one at a
 * time; when that connection drops it dials the same URL again, then the
 * others in turn (with backoff after each full round), and re-registers
 * with whichever answers first. A Kontrol that answers but fails (a
 * refused or failing `register`, or one that cannot use its storage) is
 * left for the next URL at once; a kite registered elsewhere than with the
 * first URL tries to move back to it every {@linkcode PREFERRED_RETRY_MS}.
 *
 * A call waits at most `config.timeoutMs` (`KITE_TIMEOUT`) for a connection
 * and as long again for the answer, then fails with an error naming the
 * URLs. Registration loops keep retrying and log at WARNING, at most every
 * 30 s, what they wait for.
 */
export class KontrolClient {
  readonly #kite: KontrolHost;
  /** One client per Kontrol URL, created on first use. */
  readonly #clients = new Map<string, Client>();
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #current = 0;
  /** Bumped by close(), so loops started before it stop. */
  #generation = 0;
  #closerAdded = false;
  /** Pending waits (backoff), cut short by close(). */
  readonly #sleeps = new Map<number, () => void>();
  /** The dial loop's waits, also cut short when nobody waits for it. */
  readonly #dialSleeps = new Map<number, () => void>();
  #registeredURL: string | undefined;
  #registeredOn: Client | undefined;
  #registered = false;
  #registering = false;
  /** Saves of re-issued kite keys, one after the other. */
  #saving: Promise<void> = Promise.resolve();
  #stopHeartbeats: (() => void) | undefined;
  /** Callers in {@linkcode KontrolClient.connection}; the dial loop stops at 0. */
  #waiting = 0;
  #lastDialError: string | undefined;
  readonly #warn: (message: string) => void;
  #preferredTimer: number | undefined;

  /** @internal Use `kite.kontrol`. */
  constructor(kite: KontrolHost) {
    this.#kite = kite;
    this.#warn = rateLimited(
      (m) => kite.logger.warning(m),
      RETRY_WARNING_MS,
      () => kite.clock.now(),
    );
  }

  /**
   * Kontrol URLs from the config (kite.key `kontrolURL` or
   * `KITE_KONTROL_URL`), split on commas.
   * @throws {KiteError} `sendError` when none is configured.
   */
  get urls(): string[] {
    const urls = (this.#kite.config.kontrolURL ?? "").split(",")
      .map((u) => u.trim()).filter((u) => u !== "");
    if (urls.length === 0) {
      // The kite.key names Kontrol: why it could not be read is the news.
      const problem = this.#kite.kiteKeyProblem;
      throw new KiteError(
        "sendError",
        problem
          ? `no Kontrol URL, because no kite.key: ${problem.message}`
          : "no Kontrol URL: set KITE_KONTROL_URL or get a kite.key with `deno task kontrol --initial --username <name>`",
        problem ? { cause: problem } : {},
      );
    }
    return urls;
  }

  /** The Kontrol URL in use (or tried next): one of {@linkcode KontrolClient.urls}. */
  get url(): string {
    const urls = this.urls;
    return urls[this.#current % urls.length];
  }

  /**
   * The connection to Kontrol (kiteKey auth), once connected. Dials the
   * configured URLs in turn until one answers.
   * @throws {KiteError} `timeout` naming the URLs when none answers within
   * `config.timeoutMs`.
   */
  async connection(): Promise<Client> {
    if (this.#client?.connected) return this.#client;
    if (!this.#connecting) {
      const connecting = this.#connect(this.#generation);
      this.#connecting = connecting;
      // Cleared when done, so a later call after a drop starts a new round.
      connecting.then(
        () => {
          if (this.#connecting === connecting) this.#connecting = undefined;
        },
        () => {
          if (this.#connecting === connecting) this.#connecting = undefined;
        },
      );
    }
    const urls = this.urls;
    const timeoutMs = this.#kite.config.timeoutMs;
    const clock = this.#kite.clock;
    let timer: number | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(
        () => reject(unreachableError(urls, timeoutMs, this.#lastDialError)),
        timeoutMs,
      );
    });
    this.#waiting++;
    try {
      return await Promise.race([this.#connecting, deadline]);
    } finally {
      clock.clearTimeout(timer!);
      // Nobody waits any more: end the dial loop's pause so it stops.
      if (--this.#waiting === 0) this.#wakeSleeps();
    }
  }

  /** Dials the URLs, starting with the one last used, until one answers. */
  async #connect(generation: number): Promise<Client> {
    const credentials = this.#credentials();
    const urls = this.urls;
    if (!this.#closerAdded) {
      this.#closerAdded = true;
      this.#kite.addCloser(() => this.close());
    }
    const backoff = new Backoff({ initialMs: 200, maxMs: 5_000 });
    for (;;) {
      for (let i = 0; i < urls.length; i++) {
        const index = (this.#current + i) % urls.length;
        if (generation !== this.#generation) throw closedError();
        const client = this.#clientFor(urls[index], credentials);
        try {
          await client.dial();
          this.#lastDialError = undefined;
        } catch (err) {
          this.#lastDialError = (err as Error).message;
          this.#kite.logger.debug(
            `dial Kontrol ${urls[index]} failed: ${this.#lastDialError}`,
          );
          continue;
        }
        if (generation !== this.#generation) {
          client.close();
          throw closedError();
        }
        this.#current = index;
        this.#client = client;
        return client;
      }
      if (this.#waiting === 0) throw closedError("nobody waits for it");
      await this.#sleep(backoff.next(), this.#dialSleeps);
      if (this.#waiting === 0) throw closedError("nobody waits for it");
    }
  }

  #wakeSleeps(sleeps = this.#dialSleeps): void {
    for (const wake of sleeps.values()) wake();
    sleeps.clear();
  }

  /** Waits `ms` on the kite's clock; close() ends the wait early. */
  #sleep(ms: number, sleeps = this.#sleeps): Promise<void> {
    const clock = this.#kite.clock;
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => {
        sleeps.delete(timer);
        resolve();
      }, ms);
      sleeps.set(timer, () => {
        clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * How this kite proves itself to Kontrol: its kite.key, else the token a
   * page was handed.
   * @throws {KiteError} `authenticationError` when it has neither.
   */
  #credentials(): ClientOptions {
    const kiteKey = this.#kite.config.kiteKey;
    if (kiteKey) return { auth: { type: "kiteKey", key: kiteKey } };
    const token = this.#kite.kontrolToken;
    if (token) {
      const renew = token.renew;
      return {
        auth: { type: "token", key: token.key },
        renewToken: renew &&
          (async (expired) => token.key = await renew(expired)),
      };
    }
    const problem = this.#kite.kiteKeyProblem;
    throw new KiteError(
      "authenticationError",
      problem
        ? `no kite.key: ${problem.message}`
        : "no kite.key: Kontrol needs kiteKey authentication; write one with `deno task kontrol --initial --username <name>` or set config.kiteKey",
      problem ? { cause: problem } : {},
    );
  }

  #clientFor(url: string, credentials: ClientOptions): Client {
    let client = this.#clients.get(url);
    if (client) return client;
    client = this.#kite.newClient(url, credentials);
    const self = client;
    // Re-register on every (re)connection, e.g. after Kontrol restarts or
    // when another Kontrol takes over (docs/protocol.md §8.5 step 6).
    client.onConnect(() => {
      if (this.#registered && !this.#registering && this.#registeredURL) {
        void this.#registerLoop(this.#registeredURL).catch(() => {});
      }
    });
    client.onDisconnect(() => {
      if (this.#client !== self) return;
      this.#client = undefined;
      // Reconnect at once (to this URL first, then the others), as Go's
      // DialForever; a registered kite keeps trying until it is back.
      if (this.#registered && !this.#registering && this.#registeredURL) {
        void this.#registerLoop(this.#registeredURL).catch(() => {});
      } else {
        this.connection().catch(() => {});
      }
    });
    this.#clients.set(url, client);
    return client;
  }

  async #tell(method: string, ...args: unknown[]): Promise<unknown> {
    const client = await this.connection();
    try {
      return await client.tellWithTimeout(
        method,
        this.#kite.config.timeoutMs,
        ...args,
      );
    } catch (err) {
      // A Kontrol that cannot use its storage says so: ask the next one.
      if (!isUnavailable(err) || !this.#failOver(client)) {
        throw explainKontrolError(err, client.url);
      }
      const next = await this.connection();
      try {
        return await next.tellWithTimeout(
          method,
          this.#kite.config.timeoutMs,
          ...args,
        );
      } catch (err) {
        throw explainKontrolError(err, next.url);
      }
    }
  }

  /**
   * Leaves `client`'s Kontrol for the next URL of the list (the next call
   * dials it); false when there is no other URL.
   */
  #failOver(client: Client): boolean {
    const urls = this.urls;
    if (urls.length < 2) return false;
    if (this.#client !== client) return true; // moved on already
    this.#kite.logger.info(
      `leaving Kontrol ${client.url} for ${
        urls[(this.#current + 1) % urls.length]
      }`,
    );
    this.#current = (this.#current + 1) % urls.length;
    this.#client = undefined;
    client.close();
    return true;
  }

  /**
   * The Kontrol URL that took the last registration over the current
   * connection; `undefined` before registering and while disconnected.
   */
  get registeredWith(): string | undefined {
    return this.#registeredOn?.connected ? this.#registeredOn.url : undefined;
  }

  /**
   * Registers `url` (default: {@linkcode Kite.registerURL}, reachable from
   * other hosts) once, and logs at INFO which URL was registered where.
   */
  async register(
    url: string = this.#kite.registerURL,
  ): Promise<RegisterResult> {
    const client = await this.connection();
    let result: RegisterResult;
    try {
      result = await client.tellWithTimeout(
        "register",
        this.#kite.config.timeoutMs,
        this.#registerArgs(url),
      ) as RegisterResult;
    } catch (err) {
      throw explainKontrolError(err, client.url);
    }
    const again = this.#registered && this.#registeredURL === url;
    this.#registeredURL = url;
    this.#registered = true;
    this.#registeredOn = client;
    this.#applyRegisterResult(result);
    this.#kite.logger.info(
      `${
        again ? "registered again" : "registered"
      } ${url} with Kontrol ${client.url}`,
    );
    return result;
  }

  /**
   * Registers and keeps the registration alive: retries until it succeeds
   * and registers again after every reconnect. Resolves on the first success.
   * While Kontrol cannot be reached it logs a WARNING (at most every 30 s)
   * and keeps trying.
   * @throws {KiteError} `authenticationError` at once when Kontrol refuses
   * the kite.key itself: retrying with the same key cannot succeed.
   */
  async registerForever(
    url: string = this.#kite.registerURL,
  ): Promise<RegisterResult> {
    this.#registeredURL = url;
    return await this.#registerLoop(url, true);
  }

  async #registerLoop(url: string, first = false): Promise<RegisterResult> {
    const backoff = new Backoff({ initialMs: 500, maxMs: REGISTER_RETRY_MS });
    const generation = this.#generation;
    this.#registering = true;
    for (let failures = 1;; failures++) {
      try {
        const result = await this.register(url);
        this.#registering = false;
        this.#armPreferred(url);
        return result;
      } catch (err) {
        this.#registering = false;
        if (generation !== this.#generation) throw err; // closed
        // A first registration whose key every Kontrol of the list refused
        // fails at once; one that worked before keeps trying (Kontrol may
        // get its old keys back).
        if (
          first && isKiteKeyRefusal((err as Error).cause) &&
          failures >= this.urls.length
        ) throw err;
        const wait = backoff.next();
        this.#warn(
          `registering ${url}: waiting for Kontrol (${
            (err as Error).message
          }); retrying every ${Math.ceil(wait / 1000)} s or so`,
        );
        // Any failure of a Kontrol that answered sends the kite to the
        // next one at once; backoff only after a whole round of the list.
        const client = this.#client;
        const moved = client !== undefined && this.#failOver(client);
        if (!moved || failures % this.urls.length === 0) {
          await this.#sleep(wait);
        }
        if (generation !== this.#generation) throw err;
        this.#registering = true;
      }
    }
  }

  /**
   * Registered with another Kontrol than the first of the list: try the
   * first again later, and move back when it takes the registration.
   */
  #armPreferred(url: string): void {
    const clock = this.#kite.clock;
    if (this.#preferredTimer !== undefined) {
      clock.clearTimeout(this.#preferredTimer);
      this.#preferredTimer = undefined;
    }
    const urls = this.urls;
    if (this.#current % urls.length === 0) return;
    const generation = this.#generation;
    this.#preferredTimer = clock.setTimeout(async () => {
      this.#preferredTimer = undefined;
      if (generation !== this.#generation || this.#registering) return;
      const current = this.#client;
      if (!current?.connected) return this.#armPreferred(url);
      this.#registering = true;
      const preferred = this.#clientFor(urls[0], this.#credentials());
      try {
        await preferred.dial();
        const result = await preferred.tellWithTimeout(
          "register",
          this.#kite.config.timeoutMs,
          this.#registerArgs(url),
        ) as RegisterResult;
        if (generation !== this.#generation) return preferred.close();
        this.#kite.logger.info(`moved back to Kontrol ${urls[0]}`);
        this.#current = 0;
        this.#client = preferred;
        this.#registeredOn = preferred;
        this.#applyRegisterResult(result);
        current.close();
      } catch (err) {
        this.#kite.logger.debug(
          `Kontrol ${urls[0]} still refuses: ${(err as Error).message}`,
        );
        if (this.#client !== preferred) preferred.close();
      } finally {
        this.#registering = false;
      }
      if (generation === this.#generation) this.#armPreferred(url);
    }, PREFERRED_RETRY_MS);
  }

  /**
   * Registers over HTTP (`POST /register`) and sends `GET /heartbeat` every
   * `heartbeatInterval` seconds; registers again when Kontrol answers
   * `registeragain` (docs/protocol.md §8.3).
   */
  async registerHTTP(
    url: string = this.#kite.registerURL,
    options: RegisterHTTPOptions = {},
  ): Promise<RegisterResult> {
    // Each Kontrol of the list once: one that is away or cannot do its job
    // (docs/protocol.md §10) hands the kite to the next, as over a connection.
    for (let left = this.urls.length;; left--) {
      try {
        return await this.#registerHTTPOnce(url, options);
      } catch (err) {
        if (left <= 1 || !this.#httpFailOver(err)) throw err;
      }
    }
  }

  /**
   * Moves HTTP registration to the next Kontrol URL after `err` (true), or
   * false when `err` is one another Kontrol would give too, or there is none.
   */
  #httpFailOver(err: unknown): boolean {
    const urls = this.urls;
    if (urls.length < 2) return false;
    if (err instanceof KiteError && err.type === "authenticationError") {
      return false;
    }
    const next = (this.#current + 1) % urls.length;
    this.#kite.logger.info(
      `leaving Kontrol ${this.url} for ${urls[next]} (HTTP registration: ${
        messageOf(err)
      })`,
    );
    this.#current = next;
    return true;
  }

  async #registerHTTPOnce(
    url: string,
    options: RegisterHTTPOptions,
  ): Promise<RegisterResult> {
    const base = this.url.replace(/\/kite\/?$/, "");
    const kiteKey = this.#kite.config.kiteKey;
    const timeoutMs = this.#kite.config.timeoutMs;
    let body: RegisterResult & { err?: string };
    try {
      const res = await fetch(`${base}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          ...this.#registerArgs(url),
          kite: this.#kite.identity,
          auth: { type: "kiteKey", key: kiteKey },
        }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      body = await res.json();
    } catch (err) {
      throw unreachableError(
        [`${base}/register`],
        timeoutMs,
        (err as Error).message,
      );
    }
    if (body.err) {
      throw body.err.startsWith("kiteKey: ")
        ? explainKontrolError(
          new KiteError("authenticationError", body.err),
          base,
        )
        : new KiteError("genericError", body.err);
    }
    this.#applyRegisterResult(body);
    this.#stopHeartbeats?.();
    const clock = this.#kite.clock;
    let timer = 0;
    let stopped = false;
    /** Set by kite.close() or a later registerHTTP: nothing more to do. */
    let closed = false;
    const everyMs = Math.max(1, body.heartbeatInterval) * 1000;
    let missed = 0;
    // Kontrol forgot the kite: register again until it answers.
    const registerAgain = () => {
      if (closed) return;
      this.registerHTTP(url, options).catch((err) => {
        this.#warn(
          `registering ${url} over HTTP: waiting for Kontrol at ${base} (${err.message}); ` +
            `retrying every ${everyMs / 1000} s`,
        );
        if (!closed) timer = clock.setTimeout(registerAgain, everyMs);
      });
    };
    const beat = async () => {
      if (stopped) return;
      try {
        const r = await fetch(
          `${base}/heartbeat?id=${encodeURIComponent(this.#kite.identity.id)}`,
          {
            signal: AbortSignal.timeout(this.#kite.config.timeoutMs),
          },
        );
        const text = (await r.text()).trim();
        if (text === "pong") missed = 0;
        if (text === "registeragain" && options.forever !== false && !stopped) {
          stopped = true;
          registerAgain();
          return;
        }
        if (text !== "pong") {
          this.#kite.logger.warning(
            `heartbeat to ${base}: unexpected answer ${JSON.stringify(text)}`,
          );
        }
      } catch (err) {
        this.#warn(
          `heartbeat to ${base}/heartbeat failed (${
            (err as Error).message
          }): ` +
            `Kontrol is not answering; still trying every ${everyMs / 1000} s`,
        );
        // Kontrol has been away for a while: register with the next one.
        if (
          ++missed >= HTTP_MISSED_HEARTBEATS && options.forever !== false &&
          !stopped && this.#httpFailOver(err)
        ) {
          stopped = true;
          registerAgain();
          return;
        }
      }
      if (!stopped) {
        timer = clock.setTimeout(beat, everyMs);
      }
    };
    timer = clock.setTimeout(beat, everyMs);
    const stop = () => {
      stopped = true;
      closed = true;
      clock.clearTimeout(timer);
    };
    this.#stopHeartbeats = stop;
    this.#kite.addCloser(stop);
    return body;
  }

  /** `register`'s argument: the URL, plus the contracts when there are any. */
  #registerArgs(url: string): { url: string; contracts?: ContractRef[] } {
    const contracts = this.#kite.contracts;
    return contracts?.length ? { url, contracts: [...contracts] } : { url };
  }

  /**
   * Finds kites matching `query` and returns ready-to-dial clients that
   * carry their tokens and renew them before they expire.
   * @throws {KiteError} `invalidResponse` when a token is not a JWT.
   */
  async getKites(
    query: Partial<KontrolQuery>,
    options: GetKitesOptions = {},
  ): Promise<FoundKite[]> {
    const result = await this.#tell("getKites", {
      query: makeQuery(query),
      watchCallback: null,
      who: null,
      // Only when asked: the Go shape otherwise.
      ...(options.contract ? { contract: options.contract } : {}),
    }) as { kites: KiteWithToken[] };
    return (result.kites ?? []).map((k) => this.#found(k));
  }

  /** @internal A ready-to-dial client for a kite Kontrol named (used by pools). */
  found(found: KiteWithToken): FoundKite {
    return this.#found(found);
  }

  /**
   * A client for `found` with a token renewer that runs while the client is
   * connected (Go starts it on connect and stops it on disconnect).
   */
  #found(found: KiteWithToken): FoundKite {
    const kite = this.#kite;
    const what = `${found.kite.name} (${found.kite.id})`;
    let lastError: unknown;
    let renewer: TokenRenewer;
    try {
      renewer = new TokenRenewer({
        token: found.token,
        clock: kite.clock,
        // The full identity keeps the audience of the first token; Go's id-only
        // query would widen it to "/" (docs/protocol.md §12 #18).
        getToken: () => this.getToken(found.kite),
        onRenew: (token) => {
          kite.logger.debug(`renewed the token for ${what}`);
          if (client.auth?.type === "token") {
            client.auth = { type: "token", key: token };
          }
        },
        onError: (error) => {
          lastError = error;
          kite.logger.warning(
            `renewing the token for ${what} failed: ${messageOf(error)}`,
          );
        },
      });
    } catch (cause) {
      throw new KiteError(
        "invalidResponse",
        `Kontrol sent an unusable token for ${what}: ${messageOf(cause)}`,
        { cause },
      );
    }
    let oneOff: Promise<string> | undefined;
    // A call refused with "token is expired" lands here (Client retries it once).
    const renewToken = async (expired: string): Promise<string> => {
      const current = client.auth?.type === "token" ? client.auth.key : "";
      // Another call or the timer has replaced the refused token already.
      if (current !== "" && current !== expired) return current;
      if (renewer.state === "stopped") {
        oneOff ??= this.getToken(found.kite).finally(() => oneOff = undefined);
        return await oneOff;
      }
      // Shares a renewal already in flight, so concurrent refusals cost one getToken.
      if (await renewer.renewNow()) return renewer.token;
      throw new KiteError(
        "authenticationError",
        `token is expired and renewing it failed: ${messageOf(lastError)}`,
        { cause: lastError },
      );
    };
    const client: Client = kite.newClient(found.url, {
      auth: { type: "token", key: found.token },
      remote: found.kite,
      renewToken,
    });
    client.onConnect(() => renewer.start());
    client.onDisconnect(() => renewer.pause());
    return { ...found, client, renewer };
  }

  /** A token for calling `kite` (Kontrol caches it, docs/protocol.md §6.4). */
  async getToken(
    kite: KiteIdentity | Partial<KontrolQuery>,
    options: GetTokenOptions = {},
  ): Promise<string> {
    const args = options.force ? { ...kite, force: true } : kite;
    return await this.#tell("getToken", args) as string;
  }

  /** Kontrol's current public key for this kite's key pair. */
  async getKey(): Promise<string> {
    const key = await this.#tell("getKey") as string;
    this.#kite.config.kontrolKey = key;
    return key;
  }

  /**
   * Calls `fn` for every kite matching `query` that registers or goes away,
   * until the returned function is called. When the connection to Kontrol
   * drops, the watch is set up again on the next one (this Kontrol or
   * another of the list) and `fn` gets the differences: DEREGISTER for
   * kites gone meanwhile, REGISTER for new ones. Duplicate events are not
   * passed on.
   */
  async watchKites(
    query: Partial<KontrolQuery>,
    fn: (event: KiteEvent) => void,
    options: WatchKitesOptions = {},
  ): Promise<CancelWatch> {
    const watcher = new KontrolWatcher(
      {
        connection: () => this.connection(),
        timeoutMs: this.#kite.config.timeoutMs,
        logger: this.#kite.logger,
        sleep: async (ms) => {
          const generation = this.#generation;
          await this.#sleep(ms);
          return generation === this.#generation;
        },
      },
      makeQuery(query),
      fn,
      options.initial ?? false,
    );
    await watcher.start();
    // Never rejects: callers drop it unawaited.
    return () => watcher.cancel();
  }

  /** Closes the connection to Kontrol and stops heartbeats. */
  close(): void {
    this.#generation++;
    this.#closerAdded = false;
    if (this.#preferredTimer !== undefined) {
      this.#kite.clock.clearTimeout(this.#preferredTimer);
      this.#preferredTimer = undefined;
    }
    this.#wakeSleeps(this.#sleeps);
    this.#wakeSleeps(this.#dialSleeps);
    this.#stopHeartbeats?.();
    this.#client = undefined;
    this.#connecting = undefined;
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const client of clients) client.close();
  }

  /** Writes a re-issued key after any earlier write, logging the outcome. */
  #save(key: string): void {
    const kite = this.#kite;
    if (!kite.saveKiteKey) return;
    this.#saving = this.#saving.then(() => kite.saveKiteKey!(key)).then(
      (path) => {
        if (path) kite.logger.info(`saved the re-issued kite.key to ${path}`);
      },
      (err) =>
        kite.logger.warning(
          `Kontrol re-issued this kite's kite.key; it is in use but not saved (${
            (err as Error).message
          }), so after a restart the kite registers with the old key and gets a new one again`,
        ),
    );
  }

  /** After a key rotation Kontrol sends a new kite key / public key (docs/protocol.md §6.8). */
  #applyRegisterResult(result: RegisterResult): void {
    const cfg = this.#kite.config;
    if (result.kiteKey) {
      cfg.kiteKey = result.kiteKey;
      this.#save(result.kiteKey);
      for (const client of this.#clients.values()) {
        if (client.auth?.type === "kiteKey") {
          client.auth = { type: "kiteKey", key: result.kiteKey };
        }
      }
    }
    if (result.publicKey) cfg.kontrolKey = result.publicKey;
    if (result.kiteKey || result.publicKey) this.#kite.onTrustChange();
  }
}

/** Kontrol refused because it cannot use its storage. */
function isUnavailable(err: unknown): boolean {
  return err instanceof KiteError && err.type === "genericError" &&
    err.message.startsWith(KONTROL_UNAVAILABLE);
}

function closedError(why = "it is closed"): KiteError {
  return new KiteError("sendError", `Kontrol client stopped: ${why}`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
