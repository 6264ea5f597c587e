/**
 * A kite that lives in a web page: it dials other kites over the browser's
 * sockets and serves its own methods to them over the same connections
 * (a page accepts no connections). It is built from the same `Client`,
 * dnode, `Request`, `Method`, errors and dispatch path (`serve/dispatch.ts`:
 * hooks, limits, deadlines, `kite.cancel`) as the Deno `Kite`; only the
 * sockets and what needs a process (a kite.key, a listener, the
 * environment, `kite.systemInfo`, metrics and spans) are left out.
 *
 * @module
 */

import { Client, type ClientOptions } from "../client.ts";
import { type Clock, systemClock } from "../clock.ts";
import { DEFAULT_CONFIG, type KiteConfig } from "../config.ts";
import { guard, guardedClock } from "../guard.ts";
import {
  type CancelWatch,
  type FoundKite,
  KontrolClient,
  type KontrolHost,
  type KontrolToken,
  type WatchKitesOptions,
} from "../kontrol_client.ts";
import { addHeartbeatHandler } from "../heartbeat.ts";
import { checkLimits } from "../limits.ts";
import { createLogger, type Logger } from "../log.ts";
import { type FinalFunc, type Handler, Method } from "../method.ts";
import {
  type Auth,
  checkNameAndVersion,
  type KiteEvent,
  type KiteIdentity,
  type KontrolQuery,
  makeIdentity,
} from "../protocol.ts";
import { Dispatcher, type RequestAuthenticator } from "../serve/dispatch.ts";
import type { ServingKite } from "../serve/serving_kite.ts";
import type { ConnectTextSocket } from "../transport/client/client_session.ts";
import { type Dial, makeDial } from "../transport/client/dialer.ts";
import type { Session, SessionHandler } from "../transport/session.ts";
import { browserWebSocket } from "../transport/sockets/browser_websocket.ts";
import {
  type KiteTunnel,
  type RegisterToTunnelOptions,
  TunnelClient,
} from "../tunnel_client.ts";
import { pageAuthenticator, PageKeys } from "./page_auth.ts";

/** Options for a {@linkcode BrowserKite}. */
export interface BrowserKiteOptions {
  /**
   * Credentials dialed connections send, e.g. `{ type: "token", key }`
   * with a token the page's server handed it. Never put a kite.key in a
   * page. @default {null}
   */
  auth?: Auth | null;
  /** Settings over {@linkcode DEFAULT_CONFIG} (username, environment, limits, transport). */
  config?: Partial<KiteConfig>;
  /** Time source. @default {the system clock} */
  clock?: Clock;
  /** Where the kite logs. @default {the browser console, INFO and up} */
  logger?: Logger;
  /**
   * Kontrol, for `getKites` and `watchKites`: its URL (`config.kontrolURL`
   * when omitted) and a token for calling it, handed to the page by its
   * server or fetched from an endpoint the app provides. @default {undefined}
   */
  kontrol?: BrowserKontrolOptions;
}

/** How a page reaches Kontrol: never with a kite.key, always with a token. */
export interface BrowserKontrolOptions extends KontrolToken {
  /** Kontrol's URL, e.g. `http://127.0.0.1:4000/kite`. @default {config.kontrolURL} */
  url?: string;
}

/**
 * A kite in a web page.
 *
 * @example
 * ```ts ignore
 * const kite = new Kite("page", "1.0.0", { auth: { type: "token", key } });
 * kite.handle("alert", (r) => alert(r.args.one().string()));
 * const math = kite.newClient("http://127.0.0.1:3636/kite");
 * await math.dial();
 * console.log(await math.tell("square", 4)); // 16
 * ```
 */
export class BrowserKite implements ServingKite<Client>, KontrolHost {
  /** The effective configuration. */
  readonly config: KiteConfig;
  /** This kite's identity, sent with every call. */
  readonly identity: KiteIdentity;
  /** Time source. */
  readonly clock: Clock;
  /** Logger. */
  readonly logger: Logger;
  /** @internal How clients dial: the browser's sockets. */
  readonly dialer: Dial;
  /** @internal How a tunnel dials its proxy: the browser's `WebSocket`. */
  readonly connectTunnel: ConnectTextSocket;
  /** @internal A page keeps no metrics. */
  readonly metrics: undefined = undefined;
  /** @internal A page starts no spans. */
  readonly tracer: undefined = undefined;
  /** Credentials dialed connections send; replace it when the token is renewed. */
  auth: Auth | null;
  /** @internal The token this page calls Kontrol with. */
  readonly kontrolToken: KontrolToken | undefined;
  /** @internal A page listens nowhere. */
  readonly url: string = "";
  /** @internal A page listens nowhere. */
  readonly registerURL: string = "";

  /** @internal Methods, hooks and limits: where calls on this kite's connections go (serve/dispatch.ts). */
  readonly calls: Dispatcher;
  /**
   * @internal Checks the credentials of calls a tunnel brings
   * (serve/dispatch.ts): Kontrol's `kiteKey` and `token`, as a server kite
   * checks them.
   */
  readonly authenticator: RequestAuthenticator;
  readonly #keys: PageKeys;
  readonly #dialed = new Set<Client>();
  readonly #connect = new Set<(c: Client) => void>();
  readonly #disconnect = new Set<(c: Client) => void>();
  readonly #closers = new Set<() => void | Promise<void>>();
  #kontrol: KontrolClient | undefined;

  /**
   * Creates a page kite.
   * @throws {TypeError} for an empty name or a version that is not `x.y.z`.
   */
  constructor(name: string, version: string, options: BrowserKiteOptions = {}) {
    checkNameAndVersion(name, version);
    this.config = { ...DEFAULT_CONFIG, ...options.config };
    if (options.kontrol?.url) this.config.kontrolURL = options.kontrol.url;
    this.kontrolToken = options.kontrol;
    checkLimits(this.config);
    this.logger = options.logger ?? createLogger(name, this.config.logLevel);
    this.clock = guardedClock(
      options.clock ?? systemClock,
      (err) => this.logger.error(`timer failed: ${err}`),
    );
    this.auth = options.auth ?? null;
    const socket = browserWebSocket();
    this.dialer = makeDial(socket);
    this.connectTunnel = socket;
    this.identity = makeIdentity({
      name,
      username: this.config.username,
      id: this.config.id || crypto.randomUUID(),
      environment: this.config.environment,
      region: this.config.region,
      version,
      hostname: this.config.hostname || globalThis.location?.host || "browser",
    });
    this.#keys = new PageKeys(this);
    this.authenticator = pageAuthenticator(this, this.#keys);
    this.calls = new Dispatcher(this);
    this.handle("kite.ping", () => "pong").disableAuthentication();
    // Kontrol keeps a page registered through it alive with heartbeats.
    addHeartbeatHandler(this);
  }

  /**
   * Registers a method. The kites this page dialed call it without
   * credentials (dialed connections do not authenticate, docs/protocol.md
   * §6.9); callers a tunnel brings ({@linkcode registerToTunnel}) must
   * authenticate as they would to a server kite, unless
   * `.disableAuthentication()` opens the method to everyone.
   * `r.username` is who called.
   */
  handle(name: string, handler: Handler): Method {
    if (typeof handler !== "function") {
      throw new TypeError(`handler for ${name} must be a function`);
    }
    const m = new Method(name, handler, true, this.clock);
    this.calls.methods.set(name, m);
    return m;
  }

  /** The method registered under `name`. */
  method(name: string): Method | undefined {
    return this.calls.methods.get(name);
  }

  /** Adds a handler run before every method (after the method's own). */
  preHandle(handler: Handler): this {
    this.calls.pre.push(handler);
    return this;
  }

  /** Adds a handler run after every method (after the method's own). */
  postHandle(handler: Handler): this {
    this.calls.post.push(handler);
    return this;
  }

  /** Adds a function run after every call. */
  finalFunc(fn: FinalFunc): this {
    this.calls.final.push(fn);
    return this;
  }

  /** A client for the kite at `url` (e.g. `http://127.0.0.1:3636/kite`). Call `dial()` next. */
  newClient(url: string, options: ClientOptions = {}): Client {
    const client = new Client(this, url, options);
    this.#dialed.add(client);
    return client;
  }

  /** Runs `fn` when a connection opens; returns a function that removes it. */
  onConnect(fn: (client: Client) => void): () => void {
    this.#connect.add(fn);
    return () => this.#connect.delete(fn);
  }

  /** Runs `fn` when a connection ends; returns a function that removes it. */
  onDisconnect(fn: (client: Client) => void): () => void {
    this.#disconnect.add(fn);
    return () => this.#disconnect.delete(fn);
  }

  /**
   * The page's Kontrol client (the same as a server kite's): `getKites`,
   * `watchKites` and `getToken`, authenticated with the
   * {@linkcode BrowserKiteOptions.kontrol} token.
   */
  get kontrol(): KontrolClient {
    return this.#kontrol ??= new KontrolClient(this);
  }

  /** Finds kites through Kontrol; see {@linkcode KontrolClient.getKites}. */
  getKites(query: Partial<KontrolQuery>): Promise<FoundKite[]> {
    return this.kontrol.getKites(query);
  }

  /** Watches kites coming and going; see {@linkcode KontrolClient.watchKites}. */
  watchKites(
    query: Partial<KontrolQuery>,
    fn: (event: KiteEvent) => void,
    options?: WatchKitesOptions,
  ): Promise<CancelWatch> {
    return this.kontrol.watchKites(query, fn, options);
  }

  /**
   * Makes the page reachable by other kites: opens a tunnel to a tunnel
   * proxy found through Kontrol (`name: "tunnelproxy"`), proving the
   * page's user with the token Kontrol gave for the proxy, and registers
   * the proxy's public URL for this page with Kontrol using the page's
   * Kontrol token (Kontrol must allow it: `tokenRegister`). Callers reach
   * the proxy, which carries their sessions to the page. Their calls are
   * authenticated like calls to a server kite (a kite.key or token from this
   * Kontrol; the page gets Kontrol's key with `getKey`, so Kontrol must
   * allow token callers that too: `tokenRegister`), except on methods
   * registered with `.disableAuthentication()`.
   * `config.username` must be the token's user. Redials (with backoff)
   * whenever the tunnel drops; resolves once the first tunnel is up and
   * registered.
   * @throws when the proxy refuses the token or the username.
   */
  registerToTunnel(options?: RegisterToTunnelOptions): Promise<KiteTunnel> {
    return TunnelClient.open(this, options);
  }

  /**
   * @internal Registers `url` with Kontrol and keeps it registered, once
   * the page holds Kontrol's key to check the callers it will bring.
   */
  async registerForever(url: string): Promise<unknown> {
    // Kontrol down: the register loop waits for it, then the key is asked again.
    await this.#keys.refresh().catch(() => {});
    const result = await this.kontrol.registerForever(url);
    if (this.#keys.trusted.size === 0) {
      await this.#keys.refresh().catch((err) =>
        this.logger.warning(
          `registered, but cannot get Kontrol's key with getKey (${
            (err as Error).message
          }), so callers through the tunnel are refused until a kite.key call asks again`,
        )
      );
    }
    return result;
  }

  /** @internal Kontrol's current public key, for checking callers. */
  kontrolKey(): Promise<string> {
    return this.kontrol.getKey();
  }

  /** @internal Serves one session a caller opened through the tunnel. */
  acceptSession(session: Session): SessionHandler {
    return Client.acceptHandler(new Client(this, "", {}, session));
  }

  /** Closes every connection this kite dialed, Kontrol's too. */
  close(): void {
    for (const fn of [...this.#closers]) {
      this.#safely(() =>
        Promise.resolve(fn()).catch((err) =>
          this.logger.warning(`closer failed: ${err}`)
        )
      );
    }
    for (const client of [...this.#dialed]) client.close();
  }

  /** @internal Runs `fn` when the kite closes. */
  addCloser(fn: () => void | Promise<void>): () => void {
    this.#closers.add(fn);
    return () => this.#closers.delete(fn);
  }

  /** @internal A page trusts no keys of its own: nothing to refresh. */
  onTrustChange(): void {}

  /** @internal The credentials dialed clients send. */
  defaultAuth(): Auth | null {
    return this.auth;
  }

  /** @internal Called by a client when its session opens. */
  notifyConnect(client: Client): void {
    for (const fn of this.#connect) this.#safely(() => fn(client));
  }

  /** @internal Called by a client when its session ends. */
  notifyDisconnect(client: Client): void {
    for (const fn of this.#disconnect) this.#safely(() => fn(client));
  }

  /** @internal Called by a dialed client that its user closed. */
  forgetClient(client: Client): void {
    this.#dialed.delete(client);
  }

  #safely(fn: () => unknown): void {
    guard(fn, (err) => this.logger.warning(`hook failed: ${err}`));
  }
}
