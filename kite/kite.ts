/**
 * The Kite: an RPC server and client in one object (Go `kite.Kite`).
 *
 * @module
 */
import { Client, type ClientOptions } from "./client.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  configFromEnv,
  DEFAULT_CONFIG,
  defaultHostname,
  KITE_ENV_VARS,
  type KiteConfig,
  unreadableEnv,
} from "./config.ts";
import { guard, guardedClock } from "./guard.ts";
import { addDefaultHandlers } from "./handlers.ts";
import { createLogger, type Logger } from "./log.ts";
import { checkLimits } from "./limits.ts";
import { KiteMetrics } from "./observe/kite_metrics.ts";
import type { CallTracer } from "./observe/call_tracer.ts";
import { type FinalFunc, type Handler, Method } from "./method.ts";
import {
  type Auth,
  checkNameAndVersion,
  type KiteIdentity,
  makeIdentity,
} from "./protocol.ts";
import { type ClusterOptions, ClusterRouter } from "./serve/cluster.ts";
import { IDEMPOTENT_METHOD } from "./discovery/member.ts";
import type { ServingKite } from "./serve/serving_kite.ts";
import {
  type AuthOutcome,
  Dispatcher,
  type RequestAuthenticator,
} from "./serve/dispatch.ts";
import {
  isWildcard,
  listenError,
  type ReachableHost,
  reachableHost,
  readTls,
} from "./listen.ts";
import { SockJsServer } from "./transport/server/sockjs_server.ts";
import { checkSockjsUrl } from "./transport/server/sockjs_http.ts";
import type { Session, SessionHandler } from "./transport/session.ts";
import {
  type KiteTunnel,
  type RegisterToTunnelOptions,
  TunnelClient,
} from "./tunnel_client.ts";
import { type Dial, dial } from "./transport/sockets/deno_dial.ts";
import { TcpWebSocket } from "./transport/sockets/deno_websocket.ts";
import type { ConnectTextSocket } from "./transport/client/client_session.ts";
import {
  bodyTooBigText,
  declaresTooBig,
} from "./transport/server/http_body.ts";
import { RequestsInFlight } from "./transport/server/address_quota.ts";
import { Listener } from "./listener.ts";
import { Authenticator, TrustedKeys } from "./auth/verify.ts";
import { loadKiteKeySync } from "./auth/kitekey_sync.ts";
import {
  ALLOW_ENV_HINT,
  type KiteKeyError,
  writeKiteKey,
} from "./auth/kitekey.ts";
import {
  type CancelWatch,
  type FoundKite,
  type GetKitesOptions,
  KontrolClient,
  type RegisterHTTPOptions,
  type WatchKitesOptions,
} from "./kontrol_client.ts";
import type {
  ContractRef,
  KiteEvent,
  KontrolQuery,
  RegisterResult,
} from "./protocol.ts";
import { KitePool, type PoolOptions } from "./discovery/pool.ts";
import { ProxyRegistration } from "./proxy_registration.ts";

export type { AuthOutcome, RequestAuthenticator };

/** Options for {@linkcode Kite}. */
export interface KiteOptions {
  /** Settings; unset ones come from `KITE_*` variables, then the defaults. */
  config?: Partial<KiteConfig>;
  /** Time source for timers and token checks. @default {systemClock} */
  clock?: Clock;
  /** Where log lines go. @default {stderr at `config.logLevel`} */
  logger?: Logger;
  /** Checks credentials of accepted calls. */
  authenticator?: RequestAuthenticator;
  /** Read `KITE_*` environment variables. @default {true} */
  env?: boolean;
  /**
   * The kite.key JWT to use, or `false` for none.
   * @default {the contents of `$KITE_HOME/kite.key`, when present}
   */
  kiteKey?: string | false;
  /**
   * With metrics on, serve them at `GET /kite/metrics`; `false` leaves the
   * route out (serve `kite.metrics.registry.handle` on a private port
   * instead). @default {true}
   */
  metricsRoute?: boolean;
}

/** Where to listen. */
export interface ServeOptions {
  /** Port to listen on; 0 picks a free one. @default {config.port} */
  port?: number;
  /** Skip the INFO `serving <url>` line, for a program that prints its own. @default {false} */
  quiet?: boolean;
  /** Address to listen on. @default {config.ip} */
  hostname?: string;
  /**
   * Let several processes listen on the same port (SO_REUSEPORT, Linux);
   * the kernel spreads connections over them. With XHR transports, set
   * `cluster` too. @default {false}
   */
  reusePort?: boolean;
  /**
   * This process's place among the processes serving the port: XHR
   * sessions (several requests each) are then always served by the one
   * process that owns them (see `kite/serve/cluster.ts`).
   */
  cluster?: ClusterOptions;
}

/** An HTTP handler mounted on the kite's server. */
export type HttpHandler = (
  request: globalThis.Request,
  info?: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/**
 * A kite. Register methods with {@linkcode Kite.handle}, serve them with
 * {@linkcode Kite.serve}, call other kites with {@linkcode Kite.newClient}.
 *
 * @example
 * ```ts ignore
 * import { Kite } from "jsr:@kite/core";
 * const kite = new Kite("math", "1.0.0", { config: { disableAuthentication: true } });
 * kite.handle("square", (r) => r.args.one().number() ** 2);
 * await kite.serve({ port: 3636 });
 * ```
 */
export class Kite implements ServingKite<Client> {
  /** The effective configuration. */
  readonly config: KiteConfig;
  /** This kite's seven-field identity. */
  readonly identity: KiteIdentity;
  /** Time source. */
  readonly clock: Clock;
  /** Logger. */
  readonly logger: Logger;
  /**
   * Why the kite has no kite.key, when it looked for one and found none
   * (missing file, or a permission Deno was not given).
   */
  readonly kiteKeyProblem: Error | undefined;
  /** `$KITE_HOME` when the kite runs with the kite.key read from it. */
  readonly #kiteKeyHome: string | undefined;
  /** Checks credentials on accepted connections. */
  authenticator: RequestAuthenticator;
  /**
   * The kite's metrics, served at `GET /kite/metrics`, when
   * `config.metrics` (`KITE_METRICS=1`) is on; `undefined` otherwise.
   */
  readonly metrics: KiteMetrics | undefined;
  /** @internal How clients dial: Deno's sockets (the browser build has its own). */
  readonly dialer: Dial = dial;
  /** @internal How a tunnel dials its proxy (tunnel_client.ts). */
  readonly connectTunnel: ConnectTextSocket = (url, options) =>
    TcpWebSocket.connect(url, options);
  /** Starts call spans once tracing (`config.tracing`) is loaded. */
  tracer: CallTracer | undefined;
  /** Settles once tracing is loaded; {@linkcode Kite.serve} waits for it. */
  readonly tracing: Promise<void>;
  /**
   * The contracts this kite serves, sent with each registration so
   * `getKites` can filter on them; `implement()` adds to it.
   */
  readonly contracts: ContractRef[] = [];

  /** @internal Methods, hooks and limits: where calls on this kite's connections go (serve/dispatch.ts). */
  readonly calls: Dispatcher;
  readonly #http = new Map<string, HttpHandler>();
  readonly #connections = new Set<Client>();
  readonly #dialed = new Set<Client>();
  readonly #hooks = {
    connect: new Set<(c: Client) => void>(),
    disconnect: new Set<(c: Client) => void>(),
  };
  readonly #closers = new Set<() => void | Promise<void>>();
  readonly #trustListeners = new Set<() => void>();
  #sockjs: SockJsServer | undefined;
  /** HTTP requests in flight per remote address (limit maxConnectionsPerAddress). */
  #httpInFlight!: RequestsInFlight;
  #kontrol: KontrolClient | undefined;
  #listener: Listener | undefined;
  /** The cluster's private port (XHR sessions passed on by other members). */
  #private: Listener | undefined;
  #cluster: ClusterRouter | undefined;
  #listening = false;
  #scheme: "http" | "https" = "http";
  #port = 0;
  /** The address serve() bound, once listening. */
  #host: string | undefined;
  #reachable: ReachableHost | undefined;
  #ready: Promise<void>;
  #setReady!: () => void;

  /**
   * Creates a kite.
   * @throws {TypeError} for an empty name or a version that is not `x.y.z`.
   */
  constructor(name: string, version: string, options: KiteOptions = {}) {
    checkNameAndVersion(name, version);
    // Precedence as Go's config.Get(): defaults, kite.key, environment, then code.
    const kiteKey = loadKiteKeySync(options.kiteKey);
    this.config = {
      ...DEFAULT_CONFIG,
      ...kiteKey.config,
      ...(options.env === false ? {} : configFromEnv()),
      ...options.config,
    };
    checkLimits(this.config);
    // Checked here: the SockJS endpoint is made on the first request.
    checkSockjsUrl(this.config.sockjsUrl, "config.sockjsUrl");
    this.#httpInFlight = new RequestsInFlight(
      this.config.maxConnectionsPerAddress,
      "maxConnectionsPerAddress",
    );
    // Timers are set by network-triggered work (heartbeats, retries, call
    // timeouts): none of them may end the process by throwing.
    this.clock = guardedClock(
      options.clock ?? systemClock,
      (err) => this.logger.error(`timer failed: ${describe(err)}`),
    );
    this.logger = options.logger ??
      createLogger(name, this.config.logLevel, {
        format: this.config.logFormat,
      });
    this.kiteKeyProblem = kiteKey.problem;
    // A key given in code or the environment is not the file's to replace.
    this.#kiteKeyHome = kiteKey.home !== undefined &&
        this.config.kiteKey === kiteKey.config.kiteKey
      ? kiteKey.home
      : undefined;
    this.#warnAboutPermissions(options.env !== false, kiteKey.problem);
    this.authenticator = options.authenticator ?? this.#defaultAuthenticator();
    this.identity = makeIdentity({
      name,
      username: this.config.username,
      id: this.config.id || crypto.randomUUID(),
      environment: this.config.environment,
      region: this.config.region,
      version,
      hostname: this.config.hostname || defaultHostname(),
    });
    this.calls = new Dispatcher(this);
    this.#ready = new Promise((resolve) => this.#setReady = resolve);
    addDefaultHandlers(this);
    // What pools learn from this kite: the methods declared idempotent.
    this.handle(
      IDEMPOTENT_METHOD,
      () =>
        [...this.calls.methods.values()].filter((m) => m.isIdempotent).map((
          m,
        ) => m.name),
    ).disableAuthentication();
    this.metrics = this.config.metrics
      ? this.#newMetrics(options.metricsRoute ?? true)
      : undefined;
    // Loaded on demand: without tracing, no tracing library in the graph.
    this.tracing = this.config.tracing
      ? import("./observe/tracing.ts").then(
        (m) => void (this.tracer = m.otelCallTracer(this.identity)),
        (err) => this.logger.error(`tracing not loaded: ${describe(err)}`),
      )
      : Promise.resolve();
  }

  #newMetrics(route: boolean): KiteMetrics {
    const metrics = new KiteMetrics({
      connections: () =>
        [...this.#connections, ...this.#dialed].map((c) => ({
          transport: c.session?.transport ?? "none",
          side: c.side,
          pendingCalls: c.pendingCalls,
          callbackCount: c.callbackCount,
        })),
      xhrSessions: () => this.#sockjs?.sessionCount ?? 0,
    });
    if (route) this.handleHTTP("/kite/metrics", metrics.registry.handle);
    return metrics;
  }

  /**
   * A missing permission is named, not taken for an unset variable or an
   * absent file: `KITE_PORT` ignored without a word would be a mystery.
   */
  #warnAboutPermissions(env: boolean, problem: KiteKeyError | undefined): void {
    const denied = env ? unreadableEnv() : [];
    if (denied.length > 0) {
      const names = denied.length === KITE_ENV_VARS.length
        ? "the KITE_* variables"
        : denied.join(", ");
      this.logger.warning(
        `cannot read ${names} (no --allow-env for them), so their settings are ignored: ` +
          `run deno with ${ALLOW_ENV_HINT}, or pass env: false to use only the config in code`,
      );
    }
    if (problem?.problem === "permission" && !denied.includes("KITE_HOME")) {
      this.logger.warning(
        `${problem.message}; until then this kite has no kite.key for Kontrol`,
      );
    }
  }

  /**
   * Token and kiteKey checks against the Kontrol key this kite trusts
   * (from its kite.key); updated when a register reply rotates the key.
   */
  #defaultAuthenticator(): RequestAuthenticator {
    const trusted = new TrustedKeys();
    const trustConfigKey = () => {
      if (this.config.kontrolKey && !trusted.has(this.config.kontrolKey)) {
        trusted.add(this.config.kontrolKey);
      }
    };
    trustConfigKey();
    this.#trustListeners.add(trustConfigKey);
    return new Authenticator({
      localKite: () => this.identity,
      trustedKeys: trusted,
      kontrolUser: () => this.config.kontrolUser || undefined,
      clock: this.clock,
      verifyTtlMs: this.config.verifyTtlMs,
    });
  }

  /** Kite name. */
  get name(): string {
    return this.identity.name;
  }

  /** Kite version. */
  get version(): string {
    return this.identity.version;
  }

  /**
   * Registers a method. Authentication is on unless the kite's config
   * disables it; the returned {@linkcode Method} chains more settings.
   */
  handle(name: string, handler: Handler): Method {
    if (typeof handler !== "function") {
      throw new TypeError(`handler for ${name} must be a function`);
    }
    const method = new Method(
      name,
      handler,
      !this.config.disableAuthentication,
      this.clock,
    );
    this.calls.methods.set(name, method);
    return method;
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

  /** Calls `fn` for every new connection, dialed or accepted. */
  onConnect(fn: (client: Client) => void): () => void {
    this.#hooks.connect.add(fn);
    return () => this.#hooks.connect.delete(fn);
  }

  /** Calls `fn` when a connection drops. */
  onDisconnect(fn: (client: Client) => void): () => void {
    this.#hooks.disconnect.add(fn);
    return () => this.#hooks.disconnect.delete(fn);
  }

  /** Calls `fn` on the first request of an accepted connection (its identity is known then). */
  onFirstRequest(fn: (client: Client) => void): () => void {
    this.calls.firstRequest.add(fn);
    return () => this.calls.firstRequest.delete(fn);
  }

  /** Mounts an extra HTTP route (exact path), e.g. Kontrol's `/register`. */
  handleHTTP(path: string, handler: HttpHandler): void {
    this.#http.set(path, handler);
  }

  /** The paths mounted with {@linkcode Kite.handleHTTP}, besides `/kite`. */
  get httpPaths(): readonly string[] {
    return [...this.#http.keys()];
  }

  /** Runs `fn` when the kite closes (for helpers that own timers or clients). */
  addCloser(fn: () => void | Promise<void>): () => void {
    this.#closers.add(fn);
    return () => this.#closers.delete(fn);
  }

  /** The accepted connections currently open. */
  get connections(): ReadonlySet<Client> {
    return this.#connections;
  }

  /** The SockJS endpoint under `/kite`, created on first use. */
  get #endpoint(): SockJsServer {
    return this.#sockjs ??= new SockJsServer({
      prefix: "/kite",
      heartbeatMs: this.config.sockjsHeartbeatMs,
      disconnectDelayMs: this.config.sockjsDisconnectDelayMs,
      maxMessageBytes: this.config.maxMessageBytes,
      maxSessions: this.config.maxXhrSessions,
      maxConnections: this.config.maxConnections,
      maxBufferedBytes: this.config.maxBufferedBytes,
      maxConnectionsPerAddress: this.config.maxConnectionsPerAddress,
      maxXhrSessionsPerAddress: this.config.maxXhrSessionsPerAddress,
      idleSessionMs: this.config.idleSessionMs,
      bodyTimeoutMs: this.config.timeoutMs,
      websocket: this.config.sockjsWebSocket,
      jsessionid: this.config.sockjsCookie,
      sockjsUrl: this.config.sockjsUrl,
      onSession: (session) => this.acceptSession(session),
    });
  }

  /**
   * @internal Serves one accepted session as a connection of this kite:
   * the seam every accepting transport (SockJS, tunnel streams) hands its
   * sessions to.
   */
  acceptSession(session: Session): SessionHandler {
    return Client.acceptHandler(new Client(this, "", {}, session));
  }

  /**
   * Gives a kite that cannot accept connections a public URL through a
   * tunnel proxy (`deno task tunnel`): dials it once, serves callers over
   * that connection, registers the public URL with Kontrol, and dials again
   * whenever it drops. Resolves once the first tunnel is up.
   * @throws when the proxy refuses this kite's kite.key.
   */
  registerToTunnel(options?: RegisterToTunnelOptions): Promise<KiteTunnel> {
    return TunnelClient.open(this, options);
  }

  /**
   * Answers one HTTP request: the SockJS endpoint under `/kite` and routes
   * added with {@linkcode Kite.handleHTTP}. `Deno.serve(kite.fetch)` works.
   * A body declared bigger than `maxMessageBytes` is refused with `413`
   * on every route before anything is read.
   */
  fetch = (
    request: globalThis.Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> =>
    this.#httpInFlight.admit(
      info?.remoteAddr,
      () => this.#route(request, info),
    );

  /** Passes a request to the cluster member owning it, or answers it here. */
  #route(
    request: globalThis.Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (this.#cluster) {
      const routed = this.#cluster.route(request, path, info);
      if (routed) return routed;
    }
    return this.#answer(request, path, info);
  }

  #answer(
    request: globalThis.Request,
    path: string,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const route = this.#http.get(path);
    // The SockJS endpoint judges its own bodies (an oversized xhr_send also
    // closes its session); every other route is judged here.
    const answer = route ? undefined : this.#endpoint.handle(request, info);
    if (answer) return Promise.resolve(answer);
    const limit = this.config.maxMessageBytes;
    if (declaresTooBig(request, limit)) {
      return Promise.resolve(bodyTooBig(limit));
    }
    if (route) return Promise.resolve(route(request, info));
    return Promise.resolve(
      new Response("404 page not found\n", { status: 404 }),
    );
  }

  /** Starts listening; resolves once the port is bound. */
  serve(options: ServeOptions = {}): Promise<{ port: number; url: string }> {
    if (this.#listening) throw new Error("kite is already serving");
    const hostname = options.hostname ?? this.config.ip;
    const port = options.port ?? this.config.port;
    this.#listening = true;
    if (options.cluster) this.#cluster = new ClusterRouter(options.cluster);
    let tls: { cert: string; key: string } | undefined;
    try {
      tls = readTls(this.config);
    } catch (err) {
      this.#listening = false;
      return Promise.reject(err);
    }
    this.#scheme = tls ? "https" : "http";
    // With tracing on, the first call served is traced too.
    return this.tracing.then(() =>
      Listener.start({
        port,
        hostname,
        tls,
        reusePort: options.reusePort,
        handler: this.fetch,
        logger: this.logger,
        onError: (err) => {
          this.logger.error(`request failed: ${err}`);
          return new Response("internal error\n", { status: 500 });
        },
      })
    ).then(async (listener) => {
      this.#listener = listener;
      if (this.#cluster) await this.#listenPrivately(this.#cluster);
      this.#port = listener.port;
      this.#host = hostname;
      if (!options.quiet) this.logger.info(`serving ${this.url}`);
      this.#setReady();
      return { port: this.#port, url: this.url };
    }, (cause) => {
      this.#listening = false;
      throw listenError(cause, hostname, port);
    });
  }

  /** The port other cluster members pass this process's XHR sessions to. */
  async #listenPrivately(cluster: ClusterRouter): Promise<void> {
    const port = cluster.privatePort;
    try {
      this.#private = await Listener.start({
        port,
        hostname: "127.0.0.1",
        handler: (request, info) => {
          const forwarded = cluster.forwardedInfo(request, info);
          if (!forwarded) {
            return Promise.resolve(
              new Response(
                "403 this is a kite cluster's private port: only members holding the cluster secret may use it\n",
                { status: 403 },
              ),
            );
          }
          return this.#answer(
            request,
            new URL(request.url).pathname,
            forwarded,
          );
        },
        logger: this.logger,
        onError: (err) => {
          this.logger.error(`request failed: ${err}`);
          return new Response("internal error\n", { status: 500 });
        },
      });
    } catch (cause) {
      throw listenError(cause, "127.0.0.1", port);
    }
  }

  /** Serves until the kite is closed (for `main` programs). */
  async run(options: ServeOptions = {}): Promise<void> {
    await this.serve(options);
    await this.#listener!.finished;
  }

  /** Resolves once the kite listens. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** The bound port (0 before {@linkcode Kite.serve}). */
  get port(): number {
    return this.#port;
  }

  /**
   * `http://<ip>:<port>/kite`, with 127.0.0.1 for a wildcard listen address:
   * the URL to reach this kite from the same machine.
   */
  get url(): string {
    const ip = this.#host ?? this.config.ip;
    return `${this.#scheme}://${
      isWildcard(ip) ? "127.0.0.1" : ip
    }:${this.#port}/kite`;
  }

  /**
   * The URL registered with Kontrol when none is given: {@linkcode Kite.url},
   * except that a kite listening on every address (`0.0.0.0`, the default)
   * names this machine's first non-loopback address, as Go's kite does, so
   * kites on other hosts can reach it. Set `KITE_IP` (or `config.ip`) to
   * choose the address, or pass a URL to `register()`.
   */
  get registerURL(): string {
    const ip = this.#host ?? this.config.ip;
    if (!isWildcard(ip)) return this.url;
    if (!this.#reachable) {
      this.#reachable = reachableHost();
      if (this.#reachable.fallback) {
        this.logger.warning(
          `registering 127.0.0.1, which other hosts cannot reach: ${this.#reachable.fallback}; ` +
            "set KITE_IP to this machine's address",
        );
      }
    }
    return `${this.#scheme}://${this.#reachable.host}:${this.#port}/kite`;
  }

  /** Stops serving: closes every session and client, then the listener. */
  async close(): Promise<void> {
    for (const fn of this.#closers) await fn();
    this.#closers.clear();
    for (const client of this.#dialed) client.close();
    this.#sockjs?.close();
    for (const client of this.#connections) client.close();
    await this.#private?.close();
    this.#private = undefined;
    if (this.#listener) {
      await this.#listener.close();
      this.#listener = undefined;
      this.#listening = false;
    }
  }

  /** A client for another kite at `url` (e.g. `http://127.0.0.1:3636/kite`). Call `dial()` next. */
  newClient(url: string, options: ClientOptions = {}): Client {
    const client = new Client(this, url, options);
    this.#dialed.add(client);
    return client;
  }

  /** @internal Called by a dialed client that its user closed. */
  forgetClient(client: Client): void {
    this.#dialed.delete(client);
  }

  /** The kite's Kontrol client (URL and kite key from the config). */
  get kontrol(): KontrolClient {
    return this.#kontrol ??= new KontrolClient(this);
  }

  /** Registers with Kontrol once; see {@linkcode KontrolClient.register}. */
  register(url?: string): Promise<RegisterResult> {
    return this.kontrol.register(url);
  }

  /** Registers and stays registered across reconnects; see {@linkcode KontrolClient.registerForever}. */
  registerForever(url?: string): Promise<RegisterResult> {
    return this.kontrol.registerForever(url);
  }

  /** Registers over HTTP with heartbeats; see {@linkcode KontrolClient.registerHTTP}. */
  registerHTTP(
    url?: string,
    options?: RegisterHTTPOptions,
  ): Promise<RegisterResult> {
    return this.kontrol.registerHTTP(url, options);
  }

  /**
   * Makes the kite reachable through a reverse proxy kite (docs/proxy.md):
   * dials the proxy (`url`, else `KITE_PROXY_URL`, else a kite named
   * `proxy` found through Kontrol), calls its `register` with `localURL`
   * (default {@linkcode Kite.registerURL}), and registers the public URL
   * it answers with Kontrol; again whenever the proxy connection drops.
   * Resolves with the public URL.
   */
  registerToProxy(
    options: {
      url?: string;
      query?: Partial<KontrolQuery>;
      localURL?: string;
    } = {},
  ): Promise<string> {
    return new ProxyRegistration(this, {
      url: options.url,
      query: options.query,
      name: "proxy",
      argument: () => options.localURL ?? this.registerURL,
    }).start();
  }

  /** Finds kites through Kontrol; see {@linkcode KontrolClient.getKites}. */
  getKites(
    query: Partial<KontrolQuery>,
    options?: GetKitesOptions,
  ): Promise<FoundKite[]> {
    return this.kontrol.getKites(query, options);
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
   * Calls a service, not an instance: a {@linkcode KitePool} over every
   * kite matching `query`, kept current through a Kontrol watch, with
   * balancing, safe retries, circuit breakers and fallbacks.
   */
  pool(query: Partial<KontrolQuery>, options?: PoolOptions): KitePool {
    return new KitePool(this, query, options);
  }

  /**
   * @internal Saves a kite.key Kontrol re-issued to the file this kite's
   * came from, so a restart uses it; resolves with the path, or
   * `undefined` when the kite's key did not come from a file.
   */
  async saveKiteKey(key: string): Promise<string | undefined> {
    const home = this.#kiteKeyHome;
    return home === undefined ? undefined : await writeKiteKey(key, home);
  }

  /** @internal Called when the trusted Kontrol key or kite key changed. */
  onTrustChange(): void {
    for (const fn of this.#trustListeners) fn();
  }

  /** @internal Subscribes to trust changes (the authenticator refreshes its keys). */
  onTrustChanged(fn: () => void): () => void {
    this.#trustListeners.add(fn);
    return () => this.#trustListeners.delete(fn);
  }

  /** The credentials clients send by default: the kite.key, if there is one. */
  defaultAuth(): Auth | null {
    return this.config.kiteKey
      ? { type: "kiteKey", key: this.config.kiteKey }
      : null;
  }

  /** @internal Called by a client when its session opens. */
  notifyConnect(client: Client): void {
    if (client.side === "accepted") this.#connections.add(client);
    for (const fn of this.#hooks.connect) this.#safely(() => fn(client));
  }

  /** @internal Called by a client when its session ends. */
  notifyDisconnect(client: Client): void {
    this.#connections.delete(client);
    for (const fn of this.#hooks.disconnect) this.#safely(() => fn(client));
  }

  /** @internal Requests of `client` being served now (for tests and soak checks). */
  requestsInFlight(client: Client): number {
    return this.calls.requestsInFlight(client);
  }

  #safely(fn: () => unknown): void {
    guard(fn, (err) => this.logger.warning(`hook failed: ${describe(err)}`));
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `413` for a body declared bigger than `maxMessageBytes`. */
function bodyTooBig(limit: number): Response {
  return new Response(bodyTooBigText(limit, "maxMessageBytes") + "\n", {
    status: 413,
    // The unread body stays on the connection: do not reuse it.
    headers: {
      "content-type": "text/plain; charset=utf-8",
      connection: "close",
    },
  });
}
