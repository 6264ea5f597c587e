/**
 * Which addresses the reverse proxy dials for a registered kite. A kite's
 * `register` names any URL; dialing it unchecked lets whoever holds a
 * kite.key make the proxy connect to services only the proxy can reach
 * (a database on its loopback, a cloud metadata address) and relay
 * callers' bytes there. By default the proxy dials only the address the
 * kite registered from (the TCP peer of its `register` call); the
 * operator allows more with `--kite-hosts` / `KITE_PROXY_KITE_HOSTS`:
 * addresses, CIDR ranges, host names, or `*` for any (Go's proxy, which
 * checks nothing).
 *
 * A URL naming a host is resolved when the kite registers; a plain-HTTP
 * kite is then dialed at the address that was checked, so a name that
 * later resolves elsewhere (DNS rebinding) changes nothing. A TLS kite is
 * dialed by name (its certificate is checked against it), and every
 * address the name resolves to must be allowed.
 *
 * @module
 */
import { KiteError } from "../../kite/errors.ts";

/** The flag and variable that widen what the proxy dials. */
export const KITE_HOSTS_FLAG = "--kite-hosts";
/** Environment variable for {@linkcode KITE_HOSTS_FLAG}. */
export const KITE_HOSTS_ENV = "KITE_PROXY_KITE_HOSTS";

/** Resolves a host name to IP addresses. */
export type Resolve = (name: string) => Promise<string[]>;

/** An IP range: the address as 16 bytes (IPv4 mapped) and the prefix bits. */
interface Range {
  bytes: Uint8Array;
  bits: number;
}

/** Where the proxy may dial a kite: {@linkcode KiteHosts.check}. */
export class KiteHosts {
  readonly #any: boolean;
  readonly #ranges: Range[] = [];
  readonly #names = new Set<string>();
  readonly #resolve: Resolve;

  /**
   * `entries`: IP addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`), host
   * names (matched as written in the kite's URL) or `*` (any).
   * @throws {TypeError} for an entry that is none of these.
   */
  constructor(entries: readonly string[] = [], resolve: Resolve = resolveDns) {
    this.#resolve = resolve;
    let any = false;
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      if (entry === "*") {
        any = true;
        continue;
      }
      const [addr, bitsText, extra] = entry.split("/");
      const bytes = parseIP(addr.replace(/^\[|\]$/g, ""));
      if (bytes && extra === undefined) {
        const v4 = !addr.includes(":");
        const max = v4 ? 32 : 128;
        const bits = bitsText === undefined ? max : Number(bitsText);
        if (!/^\d{1,3}$/.test(bitsText ?? "0") || bits > max) {
          throw new TypeError(
            `${KITE_HOSTS_FLAG}: ${raw} has a bad prefix length (0-${max})`,
          );
        }
        this.#ranges.push({ bytes, bits: v4 ? bits + 96 : bits });
      } else if (bitsText === undefined && /^[a-z0-9_.-]+$/.test(entry)) {
        this.#names.add(entry.replace(/\.$/, ""));
      } else {
        throw new TypeError(
          `${KITE_HOSTS_FLAG}: ${raw} is not an address, a CIDR range, a host name or *`,
        );
      }
    }
    this.#any = any;
  }

  /** Parses a comma-separated list (the flag's and the variable's form). */
  static parse(list: string | undefined, resolve?: Resolve): KiteHosts {
    return new KiteHosts(list ? list.split(",") : [], resolve);
  }

  /**
   * The URL to dial for a kite that registered `url` from `from` (its
   * connection's `host:port`): `url` itself, or, for a plain-HTTP kite
   * named by host name, `url` at the address that was checked.
   * @throws {KiteError} `authenticationError` naming the flag, when the
   * proxy may not dial it.
   */
  async check(url: URL, from: string): Promise<URL> {
    if (this.#any) return url;
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (this.#names.has(host.replace(/\.$/, ""))) return url;
    const own = parseIP(hostOf(from));
    const allowed = (ip: string) => {
      const bytes = parseIP(ip);
      return !!bytes && (
        (own !== undefined && sameHost(bytes, own)) ||
        this.#ranges.some((r) => inRange(bytes, r))
      );
    };
    if (parseIP(host)) {
      if (allowed(host)) return url;
      throw this.#refusal(url, from, `${host} is not that address`);
    }
    let addresses: string[];
    try {
      addresses = isLocalhost(host)
        ? ["127.0.0.1", "::1"]
        : await this.#resolve(host);
    } catch (err) {
      throw this.#refusal(
        url,
        from,
        `${host} does not resolve (${(err as Error).message})`,
      );
    }
    const good = addresses.filter(allowed);
    const secure = url.protocol === "https:" || url.protocol === "wss:";
    if (good.length === 0 || (secure && good.length < addresses.length)) {
      throw this.#refusal(
        url,
        from,
        `${host} resolves to ${addresses.join(", ") || "nothing"}`,
      );
    }
    if (secure) return url; // dialed by name: its certificate must match it
    const pinned = new URL(url);
    pinned.hostname = good[0].includes(":") ? `[${good[0]}]` : good[0];
    return pinned;
  }

  #refusal(url: URL, from: string, why: string): KiteError {
    return new KiteError(
      "authenticationError",
      `this proxy dials a kite only at the address it registers from (${
        hostOf(from) || "unknown"
      }): ${url.host} is refused, ${why}. Register a URL with that address ` +
        `(set KITE_IP), or have the proxy's operator allow it with ` +
        `${KITE_HOSTS_FLAG} / ${KITE_HOSTS_ENV} (addresses, CIDR ranges, host names)`,
    );
  }
}

/** The host of `host:port` / `[v6]:port`. */
export function hostOf(addr: string): string {
  if (addr.startsWith("[")) return addr.slice(1, addr.indexOf("]"));
  const colon = addr.lastIndexOf(":");
  return colon < 0 ? addr : addr.slice(0, colon);
}

/** RFC 6761: `localhost` and names under it are this host's loopback. */
function isLocalhost(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost");
}

async function resolveDns(name: string): Promise<string[]> {
  const signal = AbortSignal.timeout(5_000);
  const [a, aaaa] = await Promise.allSettled([
    Deno.resolveDns(name, "A", { signal }),
    Deno.resolveDns(name, "AAAA", { signal }),
  ]);
  const found = [
    ...(a.status === "fulfilled" ? a.value : []),
    ...(aaaa.status === "fulfilled" ? aaaa.value : []),
  ];
  if (found.length === 0 && a.status === "rejected") throw a.reason;
  return found;
}

const V4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
const LOOPBACK_V4 = new Uint8Array([...V4_MAPPED, 127, 0, 0, 1]);
const LOOPBACK_V6 = new Uint8Array(16).fill(1, 15);

/**
 * Same address, or 127.0.0.1 and ::1 (one host's loopback, which
 * `localhost` names either way).
 */
function sameHost(a: Uint8Array, b: Uint8Array): boolean {
  const loop = (x: Uint8Array) =>
    equal(x, LOOPBACK_V4, 128) || equal(x, LOOPBACK_V6, 128);
  return equal(a, b, 128) || (loop(a) && loop(b));
}

function inRange(ip: Uint8Array, r: Range): boolean {
  return equal(ip, r.bytes, r.bits);
}

/** Whether the first `bits` bits of `a` and `b` are equal. */
function equal(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (a[i] !== b[i]) return false;
  return bits === 0 || ((a[i] ^ b[i]) & (0xff << (8 - bits)) & 0xff) === 0;
}

/** An IPv4 (as IPv4-mapped IPv6) or IPv6 literal as 16 bytes. */
export function parseIP(text: string): Uint8Array | undefined {
  const v4 = parseIPv4(text);
  if (v4) return new Uint8Array([...V4_MAPPED, ...v4]);
  const bare = text.replace(/%.*$/, ""); // zone index
  if (!/^[0-9a-f:.]+$/i.test(bare) || !bare.includes(":")) return;
  const halves = bare.split("::");
  if (halves.length > 2) return;
  const groups = (s: string): number[] | undefined => {
    if (!s) return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const tail = parseIPv4(p);
        if (!tail) return;
        out.push((tail[0] << 8) | tail[1], (tail[2] << 8) | tail[3]);
      } else if (/^[0-9a-f]{1,4}$/i.test(p)) {
        out.push(parseInt(p, 16));
      } else return;
    }
    return out;
  };
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  if (!left || !right) return;
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return;
  const all = [...left, ...Array(missing).fill(0), ...right];
  return new Uint8Array(all.flatMap((g) => [g >> 8, g & 0xff]));
}

function parseIPv4(text: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return;
  const parts = m.slice(1).map(Number);
  return parts.every((n) => n <= 255) ? parts : undefined;
}
