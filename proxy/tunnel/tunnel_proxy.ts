/**
 * The tunnel proxy kite (`deno task tunnel`): kites that cannot accept
 * connections dial its `/tunnel` endpoint, prove who they are with their
 * kite.key, and get a public URL, `<public base>/<kite id>/kite`; callers'
 * SockJS / WebSocket / XHR sessions on that URL travel to the kite as
 * streams of its one connection. The proxy is itself a kite named
 * `tunnelproxy` (Go's name), found by kites through Kontrol. See
 * docs/proxy.md, "Tunnel proxy".
 *
 * @module
 */

import { KiteError } from "../../kite/errors.ts";
import { Kite, type KiteOptions } from "../../kite/kite.ts";
import { type KiteIdentity, QUERY_FIELDS } from "../../kite/protocol.ts";
import type { CounterChild } from "../../kite/observe/metrics.ts";
import {
  AddressQuota,
  peerOf,
} from "../../kite/transport/server/address_quota.ts";
import { TUNNEL_GONE } from "../../kite/transport/tunnel/mux.ts";
import { TUNNEL_PROXY_NAME, TUNNEL_REFUSED } from "../../kite/tunnel_client.ts";
import { GO_TUNNEL_PREFIX, GoTunnels } from "./go_tunnel.ts";
import { Tunnel, type TunnelLimits } from "./tunnel.ts";

/** Go's tunnel proxy listens on 3999 by default. */
export const DEFAULT_TUNNEL_PORT = 3999;
/** The tunnel proxy's version. */
export const TUNNEL_PROXY_VERSION = "0.1.0";

/** Limits of a {@linkcode TunnelProxy}. */
export interface TunnelProxyLimits extends TunnelLimits {
  /** Tunnels (kites) at once; more are refused with `503`. */
  maxTunnels: number;
}

/** The defaults of {@linkcode TunnelProxyLimits}. */
export const DEFAULT_TUNNEL_LIMITS: Readonly<TunnelProxyLimits> = Object
  .freeze({
    maxTunnels: 1_000,
    maxStreams: 1_000,
    windowChars: 4 << 20,
    maxFrameChars: 32 << 20,
    maxBufferedBytes: 64 << 20,
  });

/** Options for {@linkcode TunnelProxy}. */
export interface TunnelProxyOptions {
  /** Options of the proxy's own kite (config, kite.key, logger). */
  kite?: KiteOptions;
  /**
   * The base of the public URLs handed out, e.g. `https://tunnel.example`.
   * @default {the proxy's own URL without `/kite`}
   */
  publicURL?: string;
  /** Limits per proxy and per tunnel. */
  limits?: Partial<TunnelProxyLimits>;
}

/** Largest hello a kite may send, characters. */
const MAX_HELLO_CHARS = 64 << 10;
/** Kite ids that can be a path segment and are not one of the proxy's routes. */
const KITE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RESERVED = new Set(["kite", "tunnel", "gotunnel"]);

/** A tunnel proxy: its kite, its tunnels, its routes. */
export class TunnelProxy {
  /** The proxy's own kite (name `tunnelproxy`): Kontrol, metrics, `/kite`. */
  readonly kite: Kite;
  readonly #limits: TunnelProxyLimits;
  readonly #publicURL: string | undefined;
  readonly #tunnels = new Map<string, Tunnel>();
  #pending = 0;
  /** Callers' sessions per address over every tunnel. */
  readonly #perCaller: AddressQuota;
  /** Go kites, served Go's way (go_tunnel.ts). */
  readonly #go: GoTunnels;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #streamsOpened: CounterChild | undefined;
  #toKite: CounterChild | undefined;
  #toCaller: CounterChild | undefined;

  /** A proxy; call {@linkcode TunnelProxy.serve} next. */
  constructor(options: TunnelProxyOptions = {}) {
    this.kite = new Kite(
      TUNNEL_PROXY_NAME,
      TUNNEL_PROXY_VERSION,
      options.kite,
    );
    this.#limits = { ...DEFAULT_TUNNEL_LIMITS, ...options.limits };
    this.#perCaller = new AddressQuota(
      this.kite.config.maxConnectionsPerAddress,
    );
    this.#go = new GoTunnels({
      config: this.kite.config,
      logger: this.kite.logger,
      maxStreams: this.#limits.maxStreams,
      dialBackBase: () => this.publicURL.replace(/^http/, "ws"),
      admit: (remoteAddr) => this.#admit(remoteAddr),
      release: (remoteAddr) => this.#release(remoteAddr),
    });
    this.#publicURL = options.publicURL?.replace(/\/+$/, "");
    const own = this.kite.fetch;
    // The kite's server answers the proxy's routes first, then its own.
    this.kite.fetch = (request, info) =>
      Promise.resolve(this.#route(request, info) ?? own(request, info));
    this.kite.addCloser(() => {
      for (const t of [...this.#tunnels.values()]) {
        t.close(1001, "the tunnel proxy is closing");
      }
      this.#stopHeartbeat();
      this.#go.close();
    });
    // Go's method and answer shape (one string argument, a URL string
    // back); the tunnel itself is opened on /tunnel (docs/proxy.md).
    this.kite.handle("register", (r) => {
      const id = r.remoteKite.id;
      // With authentication off (tests), the claimed username stands in.
      const username = r.username ?? r.remoteKite.username;
      const owner = this.#tunnels.get(id)?.kite.username ??
        this.#go.ownerOf(id);
      if (owner !== undefined && owner !== username) {
        throw new KiteError(
          "authenticationError",
          `kite id ${id} is taken by another user's tunnel`,
        );
      }
      if (this.#tunnels.has(id)) return this.urlOf(id);
      // A Go kite (RegisterToTunnel): its callers are served by dial-backs.
      if (!KITE_ID.test(id) || RESERVED.has(id)) {
        throw new KiteError(
          "argumentError",
          `kite id ${
            JSON.stringify(id.slice(0, 64))
          } cannot be a URL path segment`,
        );
      }
      if (!this.#go.has(id) && this.tunnels >= this.#limits.maxTunnels) {
        throw new KiteError(
          "genericError",
          `this tunnel proxy carries ${this.#limits.maxTunnels} tunnels already`,
        );
      }
      this.#go.add(id, username, r.client);
      r.client.onDisconnect(() => this.#go.remove(id, r.client));
      return this.urlOf(id);
    });
    this.#addMetrics();
  }

  /** Listens (port {@linkcode DEFAULT_TUNNEL_PORT} unless set). */
  serve(
    options: { port?: number; hostname?: string; quiet?: boolean } = {},
  ): Promise<{ port: number; url: string }> {
    return this.kite.serve({
      port: this.kite.config.port || DEFAULT_TUNNEL_PORT,
      ...options,
    });
  }

  /** The base of public URLs, e.g. `http://127.0.0.1:3999`. */
  get publicURL(): string {
    return this.#publicURL ?? this.kite.registerURL.replace(/\/kite$/, "");
  }

  /** The public URL of kite `id`. */
  urlOf(id: string): string {
    return `${this.publicURL}/${id}/kite`;
  }

  /** Open tunnels (Go kites registered Go's way included). */
  get tunnels(): number {
    return this.#tunnels.size + this.#go.size;
  }

  /** Registers the proxy with Kontrol (its kite URL under the public base). */
  register(): Promise<unknown> {
    return this.kite.registerForever(`${this.publicURL}/kite`);
  }

  /** Closes every tunnel, then the kite. */
  close(): Promise<void> {
    return this.kite.close();
  }

  #route(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response | undefined {
    const path = new URL(request.url).pathname;
    if (path === "/tunnel") return this.#upgrade(request, info);
    if (path.startsWith(GO_TUNNEL_PREFIX + "/")) {
      return this.#go.handleDialBack(request, info);
    }
    const slash = path.indexOf("/", 1);
    const id = path.slice(1, slash < 0 ? undefined : slash);
    if (RESERVED.has(id)) return undefined;
    const tunnel = this.#tunnels.get(id);
    if (tunnel) return tunnel.handle(request, info);
    const go = this.#go.handle(id, request, info);
    if (go) return go;
    if (path.startsWith("/kite", slash)) {
      return new Response(
        `no kite ${id} has a tunnel open here (it may be dialing again); try later\n`,
        { status: 404 },
      );
    }
    return undefined;
  }

  #upgrade(request: Request, info?: Deno.ServeHandlerInfo): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response(
        "/tunnel takes a WebSocket from a kite (kite.registerToTunnel())\n",
        { status: 400 },
      );
    }
    if (this.tunnels + this.#pending >= this.#limits.maxTunnels) {
      return new Response(
        `this tunnel proxy carries ${this.#limits.maxTunnels} tunnels already\n`,
        { status: 503 },
      );
    }
    // Read before the upgrade: the request is closed after it.
    const remote = peerOf(info?.remoteAddr);
    const { socket, response } = Deno.upgradeWebSocket(request);
    this.#pending++;
    let waiting = true;
    const done = () => {
      if (waiting) this.#pending--;
      waiting = false;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      done();
      socket.close(TUNNEL_REFUSED, "no hello in time");
    }, this.kite.config.timeoutMs);
    socket.onclose = done;
    socket.onmessage = (event) => {
      socket.onmessage = () => socket.close(1002, "wait for the hello answer");
      // A hello that fails in an unforeseen way ends this socket only.
      this.#hello(socket, event.data, remote).catch((err) => {
        this.kite.logger.error(`tunnel from ${remote}: hello failed: ${err}`);
        if (socket.readyState === WebSocket.OPEN) {
          socket.close(1011, "the tunnel proxy failed on the hello");
        }
      }).finally(done);
    };
    return response;
  }

  async #hello(socket: WebSocket, data: unknown, remote: string) {
    const refuse = (why: string) => {
      this.kite.logger.warning(`tunnel from ${remote} refused: ${why}`);
      if (socket.readyState === WebSocket.OPEN) {
        socket.close(TUNNEL_REFUSED, why.slice(0, 120));
      }
    };
    const hello = parseHello(data);
    if (typeof hello === "string") return refuse(hello);
    let username: string;
    // A page has no kite.key: it shows the token Kontrol gave it for this
    // proxy, verified like any caller's token.
    const credential = hello.kiteKey
      ? { type: "kiteKey", key: hello.kiteKey, what: "kite.key" }
      : { type: "token", key: hello.token ?? "", what: "token" };
    try {
      ({ username } = await this.kite.authenticator.authenticate({
        type: credential.type,
        key: credential.key,
      }));
    } catch (err) {
      return refuse(`${credential.what} refused: ${(err as Error).message}`);
    }
    const kite = hello.kite;
    if (kite.username !== username) {
      return refuse(
        `the ${credential.what} is for ${username}, the kite says ${kite.username}`,
      );
    }
    const old = this.#tunnels.get(kite.id);
    const goOwner = this.#go.ownerOf(kite.id);
    if (
      (old && old.kite.username !== username) ||
      (goOwner !== undefined && goOwner !== username)
    ) {
      return refuse(`kite id ${kite.id} is taken by another user's tunnel`);
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    old?.close(TUNNEL_GONE, "replaced by a newer tunnel of the same kite");
    const tunnel = new Tunnel(
      kite,
      socket,
      this.kite.config,
      this.#limits,
      {
        streamOpened: () => this.#streamsOpened?.inc(),
        bytes: (direction, n) =>
          (direction === "to_kite" ? this.#toKite : this.#toCaller)?.inc(n),
        admit: (remoteAddr) => this.#admit(remoteAddr),
        release: (remoteAddr) => this.#release(remoteAddr),
      },
      this.kite.logger,
    );
    this.#tunnels.set(kite.id, tunnel);
    this.#armHeartbeat();
    tunnel.ended.then(() => {
      if (this.#tunnels.get(kite.id) === tunnel) this.#tunnels.delete(kite.id);
      if (this.#tunnels.size === 0) this.#stopHeartbeat();
      this.kite.logger.info(`tunnel of ${kite.name} ${kite.id} closed`);
    });
    const url = this.urlOf(kite.id);
    socket.send(JSON.stringify({ url, heartbeatMs: this.#heartbeatMs }));
    this.kite.logger.info(
      `tunnel of ${kite.name} ${kite.id} (${username}) from ${remote}: ${url}`,
    );
  }

  #admit(remoteAddr: string): string | undefined {
    const peer = peerOfText(remoteAddr);
    if (this.#perCaller.take(peer)) return undefined;
    return `Too many connections from ${peer} through this tunnel proxy: limit is ${this.#perCaller.limit} per address (maxConnectionsPerAddress)`;
  }

  #release(remoteAddr: string): void {
    this.#perCaller.release(peerOfText(remoteAddr));
  }

  get #heartbeatMs(): number {
    return this.kite.config.sockjsHeartbeatMs;
  }

  /** One timer beats every tunnel while there is one. */
  #armHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#heartbeatMs <= 0) return;
    this.#heartbeat = setInterval(() => {
      for (const t of this.#tunnels.values()) t.beat();
    }, this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #addMetrics(): void {
    const registry = this.kite.metrics?.registry;
    if (!registry) return;
    registry.gauge(
      "kite_tunnels",
      "Kites with a tunnel open.",
      [],
      () => [[[], this.tunnels]],
    );
    registry.gauge(
      "kite_tunnel_streams",
      "Callers' sessions carried by tunnels now.",
      [],
      () => {
        let n = 0;
        for (const t of this.#tunnels.values()) n += t.streams;
        return [[[], n]];
      },
    );
    this.#streamsOpened = registry.counter(
      "kite_tunnel_streams_total",
      "Callers' sessions opened through tunnels.",
    ).labels();
    const bytes = registry.counter(
      "kite_tunnel_bytes_total",
      "Message text carried through tunnels, by direction (UTF-16 code units; bytes for ASCII).",
      ["direction"],
    );
    this.#toKite = bytes.labels("to_kite");
    this.#toCaller = bytes.labels("to_caller");
  }
}

/** A kite's hello: its identity and its kite.key, or (a page) a token for the proxy. */
interface Hello {
  kite: KiteIdentity;
  kiteKey?: string;
  token?: string;
}

/** The hello, or what is wrong with it. */
function parseHello(data: unknown): Hello | string {
  if (typeof data !== "string") return "the hello must be a text frame";
  if (data.length > MAX_HELLO_CHARS) {
    return `the hello is over ${MAX_HELLO_CHARS} characters`;
  }
  let hello: Record<string, unknown>;
  try {
    hello = JSON.parse(data);
  } catch {
    return "the hello is not JSON";
  }
  const kite = hello?.kite as Record<string, unknown> | undefined;
  const kiteKey = typeof hello?.kiteKey === "string" ? hello.kiteKey : "";
  const token = typeof hello?.token === "string" ? hello.token : "";
  if (!kiteKey && !token) {
    return "the hello carries no kiteKey or token: give the kite a kite.key (kitectl register), or have a page find this proxy through Kontrol (registerToTunnel() without url), whose getKites gives it a token for the proxy";
  }
  if (typeof kite !== "object" || kite === null) {
    return "the hello carries no kite identity";
  }
  const identity: Record<string, string> = {};
  for (const f of QUERY_FIELDS) {
    if (typeof kite[f] !== "string") return `the kite's ${f} is not a string`;
    identity[f] = kite[f] as string;
  }
  if (!KITE_ID.test(identity.id) || RESERVED.has(identity.id)) {
    return `kite id ${
      JSON.stringify(identity.id.slice(0, 64))
    } cannot be a URL path segment`;
  }
  return {
    kite: identity as unknown as KiteIdentity,
    ...(kiteKey ? { kiteKey } : { token }),
  };
}

/** The peer (address, or IPv6 /64) of a session's `host:port`. */
function peerOfText(remoteAddr: string): string {
  const colon = remoteAddr.lastIndexOf(":");
  const host = (colon < 0 ? remoteAddr : remoteAddr.slice(0, colon))
    .replace(/^\[|\]$/g, "");
  return peerOf({ transport: "tcp", hostname: host, port: 0 });
}
