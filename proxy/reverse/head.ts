/**
 * A request head on a connection the reverse proxy's front
 * accepted: found within a size bound, parsed just enough to tell a
 * WebSocket upgrade under `/proxy/` from everything else, and rewritten
 * for the kite it is spliced to.
 *
 * @module
 */

/** A parsed request head. */
export interface RequestHead {
  /** `GET`, `POST`, … */
  method: string;
  /** The request target as sent. */
  target: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Header lines as sent, in order (`[name, value]`, names as sent). */
  headers: [string, string][];
}

const CRLFCRLF = [13, 10, 13, 10];

/**
 * Where the head in `buf[0, len)` ends (the index after its blank line),
 * or -1; `from` is where the previous search stopped (0 the first time).
 */
export function headEnd(buf: Uint8Array, len: number, from: number): number {
  for (let i = Math.max(0, from - 3); i + 4 <= len; i++) {
    if (
      buf[i] === CRLFCRLF[0] && buf[i + 1] === CRLFCRLF[1] &&
      buf[i + 2] === CRLFCRLF[2] && buf[i + 3] === CRLFCRLF[3]
    ) return i + 4;
  }
  return -1;
}

/** Parses a head (its bytes without the blank line); undefined when malformed. */
export function parseHead(bytes: Uint8Array): RequestHead | undefined {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  const lines = text.split("\r\n");
  const first = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0]);
  if (!first) return undefined;
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { method: first[1], target: first[2], version: first[3], headers };
}

/** The value of header `name` (case-insensitive), the first one. */
export function header(head: RequestHead, name: string): string | undefined {
  const lower = name.toLowerCase();
  return head.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** Whether the head asks for a WebSocket upgrade. */
export function isUpgrade(head: RequestHead): boolean {
  return head.method === "GET" &&
    /(^|,)\s*websocket\s*($|,)/i.test(header(head, "upgrade") ?? "") &&
    /(^|,)\s*upgrade\s*($|,)/i.test(header(head, "connection") ?? "");
}

/** Headers the proxy sets itself (a caller's own would be believed by the kite). */
const REPLACED = new Set([
  "host",
  "connection",
  "x-forwarded-for",
  "x-forwarded-proto",
]);

/**
 * The head to send the kite: the request line aimed at `url` (path and
 * query), `Host` the kite's, `Connection: Upgrade, close` (a kite that
 * refuses the upgrade closes the connection after its answer, so the
 * connection never carries another request past the proxy's routing),
 * `X-Forwarded-For`/`-Proto` the proxy's, every other header as the
 * caller sent it.
 */
export function rewriteHead(
  head: RequestHead,
  url: URL,
  forwardedFor: string,
  forwardedProto: string,
): Uint8Array {
  const lines = [`${head.method} ${url.pathname}${url.search} ${head.version}`];
  lines.push(`Host: ${url.host}`, "Connection: Upgrade, close");
  for (const [name, value] of head.headers) {
    if (!REPLACED.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
  }
  if (forwardedFor) lines.push(`X-Forwarded-For: ${forwardedFor}`);
  lines.push(`X-Forwarded-Proto: ${forwardedProto}`, "", "");
  const text = lines.join("\r\n");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * A complete plain-text HTTP answer (`Connection: close`), written to a
 * connection the front will close after it.
 */
export function rawAnswer(status: number, text: string): Uint8Array {
  const body = new TextEncoder().encode(text + "\n");
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    "Content-Type: text/plain; charset=utf-8\r\n" +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  const out = new Uint8Array(head.length + body.length);
  out.set(new TextEncoder().encode(head));
  out.set(body, head.length);
  return out;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};
