/**
 * The kite's side of a proxy kite (docs/proxy.md): dial the proxy (at
 * `KITE_PROXY_URL`, or one found through Kontrol), call its `register`,
 * register the public URL it answers with Kontrol, and do it all again
 * whenever the connection to the proxy drops. Go's `RegisterToProxy` and
 * `RegisterToTunnel` share this loop (`kontrolclient.go`); so do the
 * reverse and the tunnel proxy here, through {@linkcode ProxyRegistration}.
 *
 * @module
 */
import type { Client, ClientOptions } from "./client.ts";
import { Backoff } from "./backoff.ts";
import type { Clock } from "./clock.ts";
import type { KiteConfig } from "./config.ts";
import { KiteError } from "./errors.ts";
import type { FoundKite } from "./kontrol_client.ts";
import type { Logger } from "./log.ts";
import type { KontrolQuery, RegisterResult } from "./protocol.ts";

/** What a registration needs of its kite (a `Kite` is one). */
export interface ProxyHost {
  /** Settings: `proxyURL`, `kiteKey`, `timeoutMs`, the identity's fields. */
  readonly config: KiteConfig;
  /** Timers for retries. */
  readonly clock: Clock;
  /** Where retries and the public URL are logged. */
  readonly logger: Logger;
  /** Runs `fn` when the kite closes. */
  addCloser(fn: () => void | Promise<void>): () => void;
  /** A client for the proxy kite. */
  newClient(url: string, options?: ClientOptions): Client;
  /** Finds proxy kites through Kontrol. */
  getKites(query: Partial<KontrolQuery>): Promise<FoundKite[]>;
  /** Registers the public URL with Kontrol and keeps it registered. */
  registerForever(url?: string): Promise<RegisterResult>;
}

/** How long to wait before dialing a proxy again (Go `proxyRetryDuration`). */
export const PROXY_RETRY_MS = 10_000;

/** Options for {@linkcode ProxyRegistration}. */
export interface ProxyRegistrationOptions {
  /**
   * The proxy kite's URL. @default {config.proxyURL (`KITE_PROXY_URL`);
   * when empty, a proxy kite found through Kontrol with `query`}
   */
  url?: string;
  /**
   * Which kites are proxies, asked of Kontrol when there is no URL.
   * @default {{ username: config.kontrolUser, environment: config.environment, name }}
   */
  query?: Partial<KontrolQuery>;
  /** The proxy kite's name, for the default query (`proxy`, `tunnelproxy`). */
  name: string;
  /**
   * The one argument of the proxy's `register`: the kite's own URL for the
   * reverse proxy, `""` for the tunnel proxy.
   */
  argument: () => string;
  /**
   * Given the URL the proxy answered. @default {registers it with Kontrol
   * (`registerForever`), so callers find the kite under it; with no
   * Kontrol URL configured, only logs it}
   */
  onURL?: (url: string) => Promise<unknown>;
  /**
   * Called with each new connection to the proxy, before `register`: the
   * tunnel proxy calls methods back over it.
   */
  onConnection?: (client: Client) => void;
  /** Longest wait between attempts, ms. @default {PROXY_RETRY_MS} */
  retryMs?: number;
}

/**
 * One kite's registration with a proxy kite, kept up until
 * {@linkcode ProxyRegistration.close}.
 */
export class ProxyRegistration {
  readonly #kite: ProxyHost;
  readonly #options: ProxyRegistrationOptions;
  readonly #backoff: Backoff;
  #client: Client | undefined;
  #url: string | undefined;
  #closed = false;
  #timer: number | undefined;
  #wake: (() => void) | undefined;
  #removeCloser: () => void;

  /** Prepares the registration; {@linkcode ProxyRegistration.start} runs it. */
  constructor(kite: ProxyHost, options: ProxyRegistrationOptions) {
    this.#kite = kite;
    this.#options = options;
    const retryMs = options.retryMs ?? PROXY_RETRY_MS;
    this.#backoff = new Backoff({
      initialMs: Math.min(500, retryMs),
      maxMs: retryMs,
    });
    this.#removeCloser = kite.addCloser(() => this.close());
  }

  /** The public URL the proxy gave, while registered. */
  get url(): string | undefined {
    return this.#url;
  }

  /** The connection to the proxy, while there is one. */
  get client(): Client | undefined {
    return this.#client;
  }

  /**
   * Registers; resolves with the public URL once the proxy gave one and
   * `onURL` took it. Failures before that are retried (logged at WARNING),
   * except a refused kite.key, which rejects: the same key will not do.
   */
  async start(): Promise<string> {
    for (;;) {
      try {
        return await this.#attempt();
      } catch (err) {
        if (this.#closed || isRefusal(err)) throw err;
        await this.#sleep(this.#retry(err));
        if (this.#closed) throw new Error("proxy registration closed");
      }
    }
  }

  /** Stops: closes the connection to the proxy and retries no more. */
  close(): void {
    this.#closed = true;
    this.#removeCloser();
    if (this.#timer !== undefined) this.#kite.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake?.();
    this.#client?.close();
    this.#client = undefined;
    this.#url = undefined;
  }

  async #attempt(): Promise<string> {
    const client = await this.#dialProxy();
    this.#client = client;
    client.onDisconnect(() => this.#lost(client));
    try {
      this.#options.onConnection?.(client);
      await client.dial();
      const answer = await client.tellWithTimeout(
        "register",
        this.#kite.config.timeoutMs,
        this.#options.argument(),
      );
      const url = publicURL(answer, client.url);
      await (this.#options.onURL ?? ((u) => this.#registerWithKontrol(u)))(
        url,
      );
      if (this.#closed) throw new Error("proxy registration closed");
      this.#url = url;
      this.#backoff.reset();
      this.#kite.logger.info(`reachable through proxy ${client.url} at ${url}`);
      return url;
    } catch (err) {
      if (this.#client === client) this.#client = undefined;
      client.close();
      throw err;
    }
  }

  /** The default `onURL`: Kontrol learns the public URL, when there is a Kontrol. */
  async #registerWithKontrol(url: string): Promise<void> {
    if (!this.#kite.config.kontrolURL) {
      this.#kite.logger.warning(
        `no Kontrol URL (KITE_KONTROL_URL): ${url} is not registered anywhere`,
      );
      return;
    }
    await this.#kite.registerForever(url);
  }

  /** A client for the proxy kite: the configured URL, else one from Kontrol. */
  async #dialProxy(): Promise<Client> {
    const url = this.#options.url ?? this.#kite.config.proxyURL;
    if (url) {
      // kiteKey auth, as Go does for KITE_PROXY_URL: the proxy checks it.
      const key = this.#kite.config.kiteKey;
      return this.#kite.newClient(url, {
        auth: key ? { type: "kiteKey", key } : null,
      });
    }
    const c = this.#kite.config;
    const query = this.#options.query ?? {
      username: c.kontrolUser || c.username,
      environment: c.environment,
      name: this.#options.name,
    };
    const found = await this.#kite.getKites(query);
    if (found.length === 0) {
      throw new Error(
        `Kontrol knows no ${this.#options.name} kite for ${
          JSON.stringify(query)
        }: start one, or set KITE_PROXY_URL`,
      );
    }
    const pick = found[Math.floor(Math.random() * found.length)];
    for (const other of found) if (other !== pick) other.client.close();
    return pick.client;
  }

  /** The proxy connection dropped: register again (a new URL, maybe). */
  #lost(client: Client): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = undefined;
    this.#url = undefined;
    const wait = this.#backoff.next();
    this.#kite.logger.warning(
      `lost proxy ${client.url}; registering with a proxy again in ${
        Math.ceil(wait / 1000)
      } s`,
    );
    this.#timer = this.#kite.clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.start().catch((err) =>
        this.#kite.logger.error(
          `registering with a proxy failed for good: ${(err as Error).message}`,
        )
      );
    }, wait);
  }

  #retry(err: unknown): number {
    const wait = this.#backoff.next();
    this.#kite.logger.warning(
      `registering with a ${this.#options.name} kite: ${
        (err as Error).message
      }; retrying in ${Math.ceil(wait / 1000)} s`,
    );
    return wait;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = this.#kite.clock.setTimeout(() => {
        this.#timer = undefined;
        this.#wake = undefined;
        resolve();
      }, ms);
    });
  }
}

/** The proxy's answer to `register`, checked: an http(s)/ws(s) URL. */
function publicURL(answer: unknown, proxy: string): string {
  if (typeof answer === "string") {
    try {
      const url = new URL(answer);
      if (/^(https?|wss?):$/.test(url.protocol)) return answer;
    } catch { /* below */ }
  }
  throw new KiteError(
    "invalidResponse",
    `proxy ${proxy} answered register with ${
      JSON.stringify(answer)?.slice(0, 100)
    }, not a URL`,
  );
}

/** The proxy refused the kite.key: retrying with the same one cannot help. */
function isRefusal(err: unknown): boolean {
  return err instanceof KiteError && err.type === "authenticationError";
}
