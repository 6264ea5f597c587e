/**
 * One kite on N processes behind one port (`serve({ reusePort, cluster })`).
 * The kernel spreads TCP connections over the processes (SO_REUSEPORT), so
 * a WebSocket session lives in the process that accepted it. An XHR
 * session is several HTTP requests, possibly on several connections: each
 * process sends the requests of a session it does not own — the owner is
 * a hash of the session id — to the owner's private port on 127.0.0.1,
 * with the caller's address in a header that only the private port reads.
 * Any local process can reach that port, so it answers only requests that
 * carry the cluster's secret (the launcher hands it to every member):
 * nobody else can claim another caller's address to dodge per-address
 * limits.
 *
 * @module
 */

/** Where a process sits in its cluster. */
export interface ClusterOptions {
  /** This process, `0 … size - 1`. */
  index: number;
  /** Processes serving the port. */
  size: number;
  /**
   * Process `i` also listens on `127.0.0.1:(basePort + i)` for the XHR
   * requests the others pass on.
   */
  basePort: number;
  /**
   * Shared by the members only (at least 16 characters, e.g. 32 random
   * bytes in hex made by the launcher): the private ports answer only
   * requests that carry it.
   */
  secret: string;
}

/** Shortest {@linkcode ClusterOptions.secret}. */
const MIN_SECRET_LENGTH = 16;

/** The header that carries the caller's address to the owner. */
const FORWARDED = "x-kite-cluster-from";
/** The header that carries the cluster's secret to the owner. */
const SECRET = "x-kite-cluster-secret";
// `/kite/{server}/{session}/xhr…` (docs/protocol.md §1.2).
const XHR_ROUTE = /^\/[^/]+\/[^/.]+\/([^/.]+)\/(xhr|xhr_send|xhr_streaming)$/;

/**
 * Checks `options`.
 * @throws {RangeError} for an index outside the size or a bad port.
 */
export function checkCluster(options: ClusterOptions): void {
  const { index, size, basePort, secret } = options;
  if (typeof secret !== "string" || secret.length < MIN_SECRET_LENGTH) {
    throw new RangeError(
      `cluster secret must be a string of at least ${MIN_SECRET_LENGTH} characters shared by the members (e.g. 32 random bytes in hex), got ${
        typeof secret === "string"
          ? `${secret.length} characters`
          : typeof secret
      }`,
    );
  }
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `cluster size must be a whole number >= 1, got ${size}`,
    );
  }
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new RangeError(
      `cluster index must be in 0..${size - 1}, got ${index}`,
    );
  }
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + size > 65536) {
    throw new RangeError(
      `cluster basePort must leave room for ${size} ports below 65536, got ${basePort}`,
    );
  }
}

/** The process that owns session `id` (FNV-1a of the id). */
export function ownerOf(id: string, size: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % size;
}

/** Passes XHR requests of sessions this process does not own to their owner. */
export class ClusterRouter {
  readonly #options: ClusterOptions;

  /** @throws {RangeError} as {@linkcode checkCluster}. */
  constructor(options: ClusterOptions) {
    checkCluster(options);
    this.#options = options;
  }

  /** This process's private port. */
  get privatePort(): number {
    return this.#options.basePort + this.#options.index;
  }

  /**
   * The owner's answer for an XHR request of a session owned elsewhere;
   * `undefined` for everything this process serves itself.
   */
  route(
    request: Request,
    path: string,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> | undefined {
    const m = XHR_ROUTE.exec(path);
    if (!m) return undefined;
    const { size, basePort, index } = this.#options;
    const owner = ownerOf(m[1], size);
    if (owner === index) return undefined;
    const url = new URL(request.url);
    const target = `http://127.0.0.1:${
      basePort + owner
    }${url.pathname}${url.search}`;
    const headers = new Headers(request.headers);
    const from = info?.remoteAddr as Deno.NetAddr | undefined;
    headers.set(FORWARDED, from?.hostname ?? "");
    headers.set(SECRET, this.#options.secret);
    return fetch(target, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
      signal: request.signal,
    }).catch((err) =>
      new Response(
        `the process holding this session (cluster member ${owner}, 127.0.0.1:${
          basePort + owner
        }) does not answer: ${(err as Error).message}\n`,
        { status: 503 },
      )
    );
  }

  /**
   * The request info for a request that came on the private port: the
   * caller's address as the forwarding member saw it, so per-address
   * limits count the caller, not 127.0.0.1. `undefined` for a request
   * without the cluster's secret: it did not come from a member.
   */
  forwardedInfo(
    request: Request,
    info: Deno.ServeHandlerInfo,
  ): Deno.ServeHandlerInfo | undefined {
    if (!sameText(request.headers.get(SECRET), this.#options.secret)) {
      return undefined;
    }
    const from = request.headers.get(FORWARDED);
    if (!from) return info;
    return {
      ...info,
      remoteAddr: { transport: "tcp", hostname: from, port: 0 },
    };
  }
}

/** Compares in time that does not depend on where the texts differ. */
function sameText(given: string | null, secret: string): boolean {
  if (given === null || given.length !== secret.length) return false;
  let diff = 0;
  for (let i = 0; i < secret.length; i++) {
    diff |= given.charCodeAt(i) ^ secret.charCodeAt(i);
  }
  return diff === 0;
}
