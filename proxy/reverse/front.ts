/**
 * The reverse proxy's front: it owns the listening socket (`Deno.listen`,
 * or `Deno.listenTls` with a certificate) and reads each connection's
 * first request head itself, within a size bound and a deadline. A
 * WebSocket upgrade under `/proxy/` is handed to the proxy, which splices
 * the connection to the kite's at the TCP level (no message is parsed or
 * re-framed); every other connection (SockJS XHR, `/info`, the proxy's own
 * `/kite`, keep-alive connections that start with a plain request) is
 * carried to an internal `Deno.serve` on 127.0.0.1 request by request
 * (`http_splice.ts`: the front reads every later head too, with the same
 * bounds, and hands a later upgrade under `/proxy/` to the proxy), whose
 * handler learns the caller's real address from {@linkcode Front.callerOf}:
 * the front records the port each internal connection comes from, so a
 * stranger dialing the internal port directly has no caller and is
 * refused. Per address, connections reading their head and connections
 * handed to the internal server are each at most `maxPerAddress`.
 *
 * @module
 */
import type { Logger } from "../../kite/log.ts";
import {
  AddressQuota,
  peerOf,
} from "../../kite/transport/server/address_quota.ts";
import {
  headEnd,
  isUpgrade,
  parseHead,
  rawAnswer,
  type RequestHead,
} from "./head.ts";
import { closeQuietly, SPLICE_BUFFER_BYTES, writeWithin } from "./splice.ts";
import { type FirstRequest, HttpSplice } from "./http_splice.ts";

/** What the front's sweep watches: a splice of either kind. */
export interface Swept {
  /** Whether a write has been pending since before `since`. */
  stalled(since: number): boolean;
  /** Closes both sides. */
  abort(): void;
  /** Closes it when a deadline passed at `now`. */
  expire?(now: number): void;
}

/** Largest request head the front reads, bytes (one splice buffer). */
export const MAX_HEAD_BYTES = SPLICE_BUFFER_BYTES;

/** A WebSocket upgrade the front hands over, with the connection. */
export interface Upgrade {
  /** The caller's connection, its head read. */
  conn: Deno.Conn;
  /** The caller's address. */
  remoteAddr: Deno.NetAddr;
  /** The head, parsed. */
  head: RequestHead;
  /** The path, normalized (`/proxy/…`), and the query. */
  url: URL;
  /** Bytes the caller sent after its head. */
  rest: Uint8Array;
  /** A splice buffer the handler may reuse. */
  buffer: Uint8Array;
}

/** Options for {@linkcode Front.start}. */
export interface FrontOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** PEM certificate and key: TLS is terminated here. */
  tls?: { cert: string; key: string };
  /** The internal `Deno.serve`'s port on 127.0.0.1. */
  innerPort: number;
  /** Connections one address may have reading heads, and handed inside. */
  maxPerAddress: number;
  /** A caller's head must be complete within this, ms. */
  headTimeoutMs: number;
  /** A write pending this long (its reader stopped) ends its splice, ms. */
  stallMs: number;
  /** Whether a target path (normalized) goes to {@linkcode FrontOptions.upgrade}. */
  spliced(path: string): boolean;
  /** Takes an upgrade to a spliced path; owns the connection from then on. */
  upgrade(upgrade: Upgrade): Promise<void>;
  /** Where accept failures are reported. */
  logger: Logger;
}

/** A listening front; see the module doc. */
export class Front {
  readonly #o: FrontOptions;
  readonly #listener: Deno.Listener;
  readonly #heads: AddressQuota;
  readonly #inside: AddressQuota;
  /** Internal connections' local ports → the caller each carries. */
  readonly #callers = new Map<number, Deno.NetAddr>();
  readonly #open = new Set<Deno.Conn>();
  readonly #splices = new Set<Swept>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  #closing = false;

  private constructor(o: FrontOptions, listener: Deno.Listener) {
    this.#o = o;
    this.#listener = listener;
    this.#heads = new AddressQuota(o.maxPerAddress);
    this.#inside = new AddressQuota(o.maxPerAddress);
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      const since = now - o.stallMs;
      for (const s of this.#splices) {
        if (s.stalled(since)) s.abort();
        else s.expire?.(now);
      }
    }, Math.min(1_000, o.stallMs, o.headTimeoutMs));
    Deno.unrefTimer(this.#sweeper);
  }

  /** Listens and accepts; throws when the port cannot be had. */
  static start(o: FrontOptions): Front {
    const listener = o.tls
      ? Deno.listenTls({ hostname: o.hostname, port: o.port, ...o.tls })
      : Deno.listen({ hostname: o.hostname, port: o.port });
    const front = new Front(o, listener);
    front.#accept();
    return front;
  }

  /** The bound port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /**
   * The caller an internal connection carries, from the address the
   * internal server saw; undefined for a connection the front did not make.
   */
  callerOf(addr: Deno.Addr | undefined): Deno.NetAddr | undefined {
    if (addr?.transport !== "tcp" || addr.hostname !== "127.0.0.1") return;
    return this.#callers.get(addr.port);
  }

  /** Tracks a splice (for the stall sweep) until it is done. */
  track(splice: Swept): () => void {
    this.#splices.add(splice);
    return () => this.#splices.delete(splice);
  }

  /** Stops accepting and closes every connection the front holds. */
  close(): void {
    this.#closing = true;
    clearInterval(this.#sweeper);
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    for (const s of this.#splices) s.abort();
    for (const conn of this.#open) closeQuietly(conn);
  }

  async #accept(): Promise<void> {
    let waitMs = 100;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing || err instanceof Deno.errors.BadResource) return;
        // Most often EMFILE: wait for descriptors to come back, then go on.
        const hint = /os error 24|Too many open files/i.test(String(err))
          ? " — the process holds as many file descriptors as it may: raise the limit (ulimit -n, LimitNOFILE=) or lower maxConnectionsPerAddress"
          : "";
        this.#o.logger.error(
          `accepting a connection on port ${this.port} failed (${err})${hint}; retrying in ${waitMs} ms`,
        );
        await new Promise((resolve) => setTimeout(resolve, waitMs));
        waitMs = Math.min(waitMs * 2, 5_000);
        continue;
      }
      waitMs = 100;
      this.#serve(conn).catch((err) => {
        this.#o.logger.error(`a connection failed: ${err}`);
        closeQuietly(conn);
      });
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const remoteAddr = conn.remoteAddr as Deno.NetAddr;
    const peer = peerOf(remoteAddr);
    if (!this.#heads.take(peer)) {
      return refuse(
        conn,
        503,
        `too many connections from ${peer}: limit is ${this.#heads.limit} per address (maxConnectionsPerAddress)`,
      );
    }
    this.#open.add(conn);
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      refuse(
        conn,
        408,
        `request head not complete within ${this.#o.headTimeoutMs} ms (timeoutMs)`,
      );
    }, this.#o.headTimeoutMs);
    const buffer = new Uint8Array(MAX_HEAD_BYTES);
    let len = 0;
    let end = -1;
    try {
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      while (end < 0) {
        if (len === buffer.length) {
          return refuse(
            conn,
            431,
            `request head over ${MAX_HEAD_BYTES} bytes: send a shorter one`,
          );
        }
        const n = await conn.read(buffer.subarray(len));
        if (late) return; // answered 408 and closed
        if (n === null) return closeQuietly(conn);
        end = headEnd(buffer, len + n, len);
        len += n;
      }
    } catch {
      if (!late) closeQuietly(conn); // it failed (a late one is answered 408)
      return;
    } finally {
      clearTimeout(timer);
      this.#heads.release(peer);
      this.#open.delete(conn);
    }
    const head = parseHead(buffer.subarray(0, end - 4));
    if (!head) return refuse(conn, 400, "malformed request head");
    let url: URL;
    try {
      url = new URL(head.target, "http://front");
    } catch {
      return refuse(conn, 400, `malformed request target ${head.target}`);
    }
    if (this.#takes(head, url)) {
      const rest = buffer.slice(end, len);
      return this.#o.upgrade({ conn, remoteAddr, head, url, rest, buffer });
    }
    await this.#inner(conn, remoteAddr, peer, { head, end, len }, buffer);
  }

  /** Whether `head` is an upgrade the proxy splices to a kite itself. */
  #takes(head: RequestHead, url: URL): boolean {
    return isUpgrade(head) && this.#o.spliced(url.pathname);
  }

  /** Carries `conn` to the internal server, `first` (in `buffer`) first. */
  async #inner(
    conn: Deno.Conn,
    remoteAddr: Deno.NetAddr,
    peer: string,
    first: FirstRequest,
    buffer: Uint8Array,
  ): Promise<void> {
    if (!this.#inside.take(peer)) {
      return refuse(
        conn,
        503,
        `too many connections from ${peer}: limit is ${this.#inside.limit} per address (maxConnectionsPerAddress)`,
      );
    }
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#o.innerPort,
      });
    } catch (err) {
      this.#inside.release(peer);
      this.#o.logger.error(
        `the proxy's internal server is unreachable: ${err}`,
      );
      return refuse(conn, 500, "internal error");
    }
    inner.setNoDelay(true);
    const local = (inner.localAddr as Deno.NetAddr).port;
    this.#callers.set(local, remoteAddr);
    let untrack = () => {};
    const splice = new HttpSplice(conn, inner, first, buffer, {
      headTimeoutMs: this.#o.headTimeoutMs,
      upgrade: (head, url, rest, buffer) => {
        if (this.#closing || !this.#takes(head, url)) {
          return false;
        }
        // The kite's splice runs on its own; errors end that connection.
        this.#o.upgrade({ conn, remoteAddr, head, url, rest, buffer })
          .catch((err) => {
            this.#o.logger.error(`a connection failed: ${err}`);
            closeQuietly(conn);
          });
        return true;
      },
      done: () => {
        this.#callers.delete(local);
        this.#inside.release(peer);
        untrack();
      },
    });
    untrack = this.track(splice);
    if (this.#closing) splice.abort();
  }
}

/** Answers `status` with `text` and closes; never waits on a reader that stalls. */
export async function refuse(
  conn: Deno.Conn,
  status: number,
  text: string,
): Promise<void> {
  await writeWithin(conn, rawAnswer(status, text), 1_000);
  closeQuietly(conn);
}
