/**
 * The reverse proxy kite (Go `reverseproxy`, docs/proxy.md): a kite named
 * `proxy` whose `register` method takes a kite's own URL and answers a
 * public one, `<scheme>://<publicHost>:<publicPort>/proxy/<kite id>`; every
 * request and WebSocket under that path is carried to the kite's URL with
 * the rest of the path appended (`/proxy/<id>/123/abc/websocket` →
 * `<kite URL>/123/abc/websocket`). The kite registers the public URL with
 * Kontrol, so callers dial it like any kite URL.
 *
 * The proxy's front (`front.ts`) owns the listening socket: a connection
 * whose first request is a WebSocket upgrade under `/proxy/` is spliced to
 * the kite at the TCP level (`splice.ts`); every other connection goes to
 * this class's `fetch` through an internal `Deno.serve` on 127.0.0.1.
 *
 * @module
 */
import { Kite, type KiteOptions } from "../../kite/kite.ts";
import { KiteError } from "../../kite/errors.ts";
import { Listener } from "../../kite/listener.ts";
import { isWildcard, listenError, readTls } from "../../kite/listen.ts";
import type { Request as KiteRequest } from "../../kite/request.ts";
import { toWebSocketUrl } from "../../kite/transport/client/sockjs_client_url.ts";
import {
  AddressQuota,
  peerOf,
} from "../../kite/transport/server/address_quota.ts";
import { ProxyRegistry, type Registered } from "../registry.ts";
import { proxyError } from "./answers.ts";
import { forwardHttp } from "./forward_http.ts";
import {
  forwardWebSocket,
  KITE_FAILED_CODE,
  KITE_GONE_CODE,
} from "./forward_websocket.ts";
import { Front, refuse, type Upgrade } from "./front.ts";
import { rewriteHead } from "./head.ts";
import { Splice } from "./splice.ts";
import { dial } from "./dial.ts";
import { KiteHosts } from "./kite_hosts.ts";
import { ProxyMetrics } from "../metrics.ts";

/** The proxy kite's name, as Go's (kites look it up in Kontrol by it). */
export const PROXY_NAME = "proxy";
/** The proxy kite's version, as Go's. */
export const PROXY_VERSION = "0.0.1";
/** Where the public URLs live. */
export const PROXY_PREFIX = "/proxy/";

/** Options for {@linkcode ReverseProxy}. */
export interface ReverseProxyOptions extends KiteOptions {
  /**
   * Host in the public URLs (must match the certificate with TLS).
   * @default {the listen address; 127.0.0.1 for a wildcard one}
   */
  publicHost?: string;
  /** Port in the public URLs. @default {the bound port} */
  publicPort?: number;
  /** Kites registered at once. @default {10000} */
  maxKites?: number;
  /**
   * Callers' WebSockets and requests open to one kite at once; more get
   * `503`. @default {1000}
   */
  maxConnectionsPerKite?: number;
  /**
   * Where the proxy may dial kites besides the address each registered
   * from: IP addresses, CIDR ranges, host names, `*` for anywhere
   * (`--kite-hosts`, `KITE_PROXY_KITE_HOSTS`; see `kite_hosts.ts`).
   * @default {none: only each kite's own address}
   */
  kiteHosts?: KiteHosts;
}

/** A reverse proxy kite; {@linkcode ReverseProxy.serve} starts it. */
export class ReverseProxy {
  /** The proxy's own kite (its `register` method, `/kite`, `/kite/metrics`). */
  readonly kite: Kite;
  /** The kites it serves. */
  readonly registry: ProxyRegistry<URL>;
  readonly #perKite: number;
  readonly #kiteHosts: KiteHosts;
  /** Callers' WebSockets and requests open through the proxy, per address. */
  readonly #callers: AddressQuota;
  #open = 0;
  readonly #metrics: ProxyMetrics | undefined;
  #listener: Listener | undefined;
  #front: Front | undefined;
  #scheme: "http" | "https" = "http";
  #publicHost: string | undefined;
  #publicPort: number | undefined;

  /** Creates the proxy kite; settings come from `KITE_*` as for any kite. */
  constructor(options: ReverseProxyOptions = {}) {
    this.kite = new Kite(PROXY_NAME, PROXY_VERSION, options);
    const config = this.kite.config;
    this.registry = new ProxyRegistry(options.maxKites ?? 10_000);
    this.#perKite = options.maxConnectionsPerKite ?? 1_000;
    this.#kiteHosts = options.kiteHosts ?? new KiteHosts();
    this.#callers = new AddressQuota(config.maxConnectionsPerAddress);
    this.#publicHost = options.publicHost;
    this.#publicPort = options.publicPort;
    this.#metrics = this.kite.metrics &&
      new ProxyMetrics(this.kite.metrics.registry, this.registry);
    this.kite.handle("register", (r) => this.#register(r));
    this.kite.onDisconnect((client) => {
      for (const gone of this.registry.dropConnection(client)) {
        this.kite.logger.info(`kite ${gone.id} left the proxy`);
      }
    });
    this.kite.addCloser(() => this.registry.clear("the proxy is closing"));
  }

  /** `<scheme>://<publicHost>:<publicPort>/proxy/<id>`: what `register` answers. */
  publicURL(id: string): string {
    return `${this.#base()}${PROXY_PREFIX}${encodeURIComponent(id)}`;
  }

  /** The proxy kite's own URL (`…/kite`), which it registers with Kontrol. */
  get url(): string {
    return `${this.#base()}/kite`;
  }

  #base(): string {
    const host = this.#publicHost ?? "127.0.0.1";
    const port = this.#publicPort ?? this.#front?.port ?? 0;
    return `${this.#scheme}://${host}:${port}`;
  }

  /**
   * Answers one request: under `/proxy/` forwarded to a registered kite,
   * anything else served by the proxy's own kite.
   */
  fetch = (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response => {
    const path = new URL(request.url).pathname;
    if (!path.startsWith(PROXY_PREFIX)) return this.kite.fetch(request, info);
    return this.#forward(request, path, info);
  };

  /**
   * Listens (TLS from `KITE_TLS_CERT`/`KITE_TLS_KEY`, as any kite); resolves
   * with the bound port and the proxy kite's URL.
   */
  async serve(
    options: { port?: number; hostname?: string } = {},
  ): Promise<{ port: number; url: string }> {
    const config = this.kite.config;
    const hostname = options.hostname ?? config.ip;
    const port = options.port ?? config.port;
    const tls = readTls(config);
    this.#scheme = tls ? "https" : "http";
    this.#publicHost ??= isWildcard(hostname) ? "127.0.0.1" : hostname;
    // Plain requests reach Deno.serve on 127.0.0.1 through the front.
    this.#listener = await Listener.start({
      port: 0,
      hostname: "127.0.0.1",
      handler: this.#inside,
      logger: this.kite.logger,
      onError: (err) => {
        this.kite.logger.error(`request failed: ${err}`);
        return proxyError(500, "internal error");
      },
    });
    try {
      this.#front = Front.start({
        hostname,
        port,
        tls,
        innerPort: this.#listener.port,
        maxPerAddress: config.maxConnectionsPerAddress,
        headTimeoutMs: config.timeoutMs,
        stallMs: config.timeoutMs,
        spliced: (path) => path.startsWith(PROXY_PREFIX),
        upgrade: this.#splice,
        logger: this.kite.logger,
      });
    } catch (cause) {
      await this.#listener.close();
      this.#listener = undefined;
      throw listenError(cause, hostname, port);
    }
    return { port: this.#front.port, url: this.url };
  }

  /** The internal server's handler: the caller's real address, or a refusal. */
  #inside = (
    request: Request,
    info: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response => {
    const remoteAddr = this.#front?.callerOf(info.remoteAddr);
    if (!remoteAddr) {
      return proxyError(
        403,
        `this is the proxy's internal port: connect to port ${this.#front?.port}`,
        true,
      );
    }
    return this.fetch(request, { ...info, remoteAddr });
  };

  /**
   * The port of the internal `Deno.serve` on 127.0.0.1 that the front
   * hands plain requests to (it answers only connections the front made).
   */
  get internalPort(): number | undefined {
    return this.#listener?.port;
  }

  /** Serves until closed. */
  async run(options: { port?: number; hostname?: string } = {}): Promise<void> {
    await this.serve(options);
    await this.#listener!.finished;
  }

  /** Forgets every kite, closes what callers have open, stops listening. */
  async close(): Promise<void> {
    await this.kite.close();
    this.#front?.close();
    this.#front = undefined;
    await this.#listener?.close();
    this.#listener = undefined;
  }

  async #register(r: KiteRequest): Promise<string> {
    const arg = r.args.one().string();
    let url: URL;
    try {
      url = new URL(arg);
    } catch {
      throw new KiteError(
        "argumentError",
        `register takes the kite's own URL, e.g. http://10.0.0.5:6000/kite; got ${
          JSON.stringify(arg.slice(0, 100))
        }`,
      );
    }
    if (!/^(https?|wss?):$/.test(url.protocol) || arg.length > 2048) {
      throw new KiteError(
        "argumentError",
        `register takes an http(s) or ws(s) URL of at most 2048 characters; got ${
          JSON.stringify(arg.slice(0, 100))
        }`,
      );
    }
    const id = r.remoteKite.id;
    if (!id) throw new KiteError("argumentError", "the caller sent no kite id");
    const target = await this.#kiteHosts.check(
      url,
      r.client.session?.remoteAddr ?? "",
    );
    // Its connection may have dropped while its host name was resolved.
    if (!r.client.connected) {
      throw new KiteError("disconnect", `kite ${id} left while registering`);
    }
    // With authentication off (tests), the claimed username stands in.
    const username = r.username ?? r.claimedUsername;
    this.registry.add(id, username, r.client, target);
    const publicURL = this.publicURL(id);
    const via = target === url ? "" : `, dialed at ${target.host}`;
    this.kite.logger.info(
      `kite ${id} (${url}${via}) is reachable at ${publicURL}`,
    );
    return publicURL;
  }

  /**
   * Admits one caller's connection or request to the kite at `path`
   * (`/proxy/<id>/…`): the kite, the rest of the path, and the function
   * that gives the slots back; or the refusal to answer.
   */
  #admit(path: string, remoteAddr: Deno.Addr | undefined): Admitted | Refused {
    const slash = path.indexOf("/", PROXY_PREFIX.length);
    let id: string;
    try {
      id = decodeURIComponent(
        path.slice(PROXY_PREFIX.length, slash < 0 ? undefined : slash),
      );
    } catch {
      return {
        status: 400,
        text: `malformed kite id in ${path.slice(0, 200)}`,
      };
    }
    const rest = slash < 0 ? "" : path.slice(slash + 1);
    const entry = this.registry.get(id);
    if (!entry) {
      this.#metrics?.refused("unknown_kite");
      return {
        status: 404,
        text:
          `no kite ${id} is registered with this proxy: it may have left; ` +
          "look it up in Kontrol again",
      };
    }
    const config = this.kite.config;
    const peer = peerOf(remoteAddr);
    if (this.#open >= config.maxConnections) {
      this.#metrics?.refused("proxy_full");
      return {
        status: 503,
        text:
          `this proxy forwards ${config.maxConnections} connections already (maxConnections)`,
      };
    }
    if (entry.open >= this.#perKite) {
      this.#metrics?.refused("kite_full");
      return {
        status: 503,
        text:
          `kite ${id} has ${this.#perKite} connections open through this proxy already`,
      };
    }
    if (!this.#callers.take(peer)) {
      this.#metrics?.refused("caller_full");
      return {
        status: 503,
        text:
          `too many connections from ${peer}: limit is ${this.#callers.limit} per address (maxConnectionsPerAddress)`,
      };
    }
    this.#open++;
    entry.open++;
    entry.forwarded++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#open--;
      entry.open--;
      this.#callers.release(peer);
    };
    const count = (toKite: number, toCaller: number) => {
      entry.bytesIn += toKite;
      entry.bytesOut += toCaller;
      this.#metrics?.bytes(toKite, toCaller);
    };
    return { id, entry, rest, release, count };
  }

  /**
   * A WebSocket upgrade the front read: the kite is dialed, sent the
   * caller's head (aimed at the kite's URL) and whatever followed it, and
   * the two connections are spliced; the kite's own answer (`101` or a
   * refusal) reaches the caller as it was sent.
   */
  #splice = async (u: Upgrade): Promise<void> => {
    const a = this.#admit(u.url.pathname, u.remoteAddr);
    if ("status" in a) return await refuse(u.conn, a.status, a.text);
    const backend = backendURL(a.entry, a.rest, u.url.search);
    let kite: Deno.Conn;
    try {
      kite = await dial(backend, this.kite.config.timeoutMs);
    } catch (err) {
      a.release();
      return await refuse(
        u.conn,
        502,
        `kite ${a.id} cannot be reached: ${(err as Error).message}`,
      );
    }
    const head = rewriteHead(
      u.head,
      backend,
      u.remoteAddr.hostname,
      this.#scheme,
    );
    const first = { head, rest: u.rest, gated: true };
    let untrack = () => {};
    const stream = (reason: string) => splice.close(KITE_GONE_CODE, reason);
    const splice: Splice = new Splice(u.conn, kite, first, u.buffer, {
      count: a.count,
      gateMs: this.kite.config.timeoutMs,
      kiteGone: {
        code: KITE_FAILED_CODE,
        reason: `kite ${a.id} is gone: its connection dropped`,
      },
      done: () => {
        a.entry.streams.delete(stream);
        a.release();
        untrack();
      },
    });
    a.entry.streams.add(stream);
    if (this.#front) untrack = this.#front.track(splice);
    else splice.abort();
  };

  #forward(
    request: Request,
    path: string,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> | Response {
    const a = this.#admit(path, info?.remoteAddr);
    if ("status" in a) return proxyError(a.status, a.text, a.status === 503);
    const { entry, release, count } = a;
    const config = this.kite.config;
    const backend = backendURL(entry, a.rest, new URL(request.url).search);
    const name = `kite ${a.id}`;
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      let stream: ((reason: string) => void) | undefined;
      return forwardWebSocket(request, {
        backend: toWebSocketUrl(backend),
        name,
        maxMessageBytes: config.maxMessageBytes,
        maxKiteMessageBytes: config.maxDialedMessageBytes,
        maxBufferedBytes: config.maxBufferedBytes,
        timeoutMs: config.timeoutMs,
        count,
        onOpen: (close) => entry.streams.add(stream = close),
        done: () => {
          if (stream) entry.streams.delete(stream);
          release();
        },
      });
    }
    const gone = new AbortController();
    const stream = () => gone.abort();
    entry.streams.add(stream);
    return forwardHttp(request, {
      backend,
      name,
      maxBodyBytes: config.maxMessageBytes,
      maxBodySetting: "maxMessageBytes",
      timeoutMs: config.timeoutMs,
      forwardedFor: info?.remoteAddr && "hostname" in info.remoteAddr
        ? info.remoteAddr.hostname
        : "",
      forwardedProto: this.#scheme,
      signal: gone.signal,
      count,
      done: () => {
        entry.streams.delete(stream);
        release();
      },
    });
  }
}

/** A caller admitted to a kite. */
interface Admitted {
  id: string;
  entry: Registered<URL>;
  /** The path after `/proxy/<id>/`. */
  rest: string;
  release(): void;
  count(toKite: number, toCaller: number): void;
}

/** A caller refused, and why. */
interface Refused {
  status: number;
  text: string;
}

/** The kite's URL with `rest` appended to its path and the caller's query. */
function backendURL(
  entry: Registered<URL>,
  rest: string,
  search: string,
): URL {
  const url = new URL(entry.target);
  if (rest) url.pathname = url.pathname.replace(/\/$/, "") + "/" + rest;
  url.search = search;
  return url;
}
