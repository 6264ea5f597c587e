/**
 * Per-peer counting: how many connections or sessions one remote address
 * holds, so that one client cannot take every slot of a server.
 *
 * @module
 */

/**
 * The peer a remote address belongs to: an IPv4 address as it is, an
 * IPv6 address by its /64 prefix (one host usually owns a whole /64, so
 * counting single IPv6 addresses would not bound anything), an
 * IPv4-mapped IPv6 address as its IPv4 address. `""` when unknown.
 */
export function peerOf(addr: Deno.Addr | undefined): string {
  if (!addr || (addr.transport !== "tcp" && addr.transport !== "udp")) {
    return "";
  }
  const host = addr.hostname;
  if (!host.includes(":")) return host;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped) return mapped[1];
  return ipv6Prefix64(host);
}

/** The first four groups of an IPv6 address, written out, plus `::/64`. */
function ipv6Prefix64(host: string): string {
  const bare = host.replace(/%.*$/, ""); // zone index
  const [head, tail = ""] = bare.split("::");
  const left = head ? head.split(":") : [];
  const right = bare.includes("::") && tail ? tail.split(":") : [];
  const missing = 8 - left.length - right.length;
  const groups = bare.includes("::")
    ? [...left, ...Array(Math.max(missing, 0)).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""))
    .join(":") + "::/64";
}

/** Counts what each peer holds against one per-peer limit. */
export class AddressQuota {
  /** Most a peer may hold. */
  readonly limit: number;
  readonly #held = new Map<string, number>();

  /** A quota of `limit` per peer. */
  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Takes one slot for `peer`.
   * @returns false (taking nothing) when the peer already holds `limit`.
   */
  take(peer: string): boolean {
    const held = this.#held.get(peer) ?? 0;
    if (held >= this.limit) return false;
    this.#held.set(peer, held + 1);
    return true;
  }

  /** Gives back one slot of `peer`. */
  release(peer: string): void {
    const held = this.#held.get(peer) ?? 0;
    if (held <= 1) this.#held.delete(peer);
    else this.#held.set(peer, held - 1);
  }

  /** Slots `peer` holds now. */
  heldBy(peer: string): number {
    return this.#held.get(peer) ?? 0;
  }

  /** Number of peers holding at least one slot. */
  get peers(): number {
    return this.#held.size;
  }
}

/**
 * HTTP requests in flight per peer (a long poll, a body still arriving):
 * past the limit a peer's further requests get `503` and their connection
 * is closed, so slow requests cannot pile up from one address.
 */
export class RequestsInFlight {
  readonly #quota: AddressQuota;
  readonly #setting: string;

  /** At most `limit` per peer; `setting` names the limit in the refusal. */
  constructor(limit: number, setting: string) {
    this.#quota = new AddressQuota(limit);
    this.#setting = setting;
  }

  /** Requests `addr`'s peer has in flight now. */
  heldBy(addr: Deno.Addr | undefined): number {
    return this.#quota.heldBy(peerOf(addr));
  }

  /** Answers the request with `answer`, counted, or refuses it. */
  admit(
    addr: Deno.Addr | undefined,
    answer: () => Response | Promise<Response>,
  ): Promise<Response> {
    const peer = peerOf(addr);
    if (!this.#quota.take(peer)) {
      return Promise.resolve(
        new Response(
          `Too many requests in flight from ${
            peer || "this address"
          }: limit is ${this.#quota.limit} per address (${this.#setting})\n`,
          {
            status: 503,
            headers: {
              "content-type": "text/plain; charset=utf-8",
              connection: "close",
            },
          },
        ),
      );
    }
    let answered: Promise<Response>;
    try {
      answered = Promise.resolve(answer());
    } catch (error) {
      answered = Promise.reject(error);
    }
    return answered.finally(() => this.#quota.release(peer));
  }
}
