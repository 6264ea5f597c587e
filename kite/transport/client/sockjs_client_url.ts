/**
 * The URLs a SockJS client opens (docs/protocol.md §1.5, §1.6): a random server id and session
 * id under the kite URL's path.
 *
 * @module
 */

const HEX = "0123456789abcdef";

/** A SockJS server id as the Go client makes it: 3 decimal digits, 100–999. */
export function randomServerId(): string {
  const [n] = crypto.getRandomValues(new Uint32Array(1));
  return String(100 + (n % 900));
}

/** A SockJS session id as the Go client makes it: 20 lowercase hex chars. */
export function randomSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let id = "";
  for (const byte of bytes) id += HEX[byte >> 4] + HEX[byte & 15];
  return id;
}

/**
 * The same URL with scheme `ws:`/`wss:` (from `http:`/`https:`).
 *
 * @throws {TypeError} for any other scheme.
 */
export function toWebSocketUrl(url: URL): URL {
  const out = new URL(url);
  out.protocol = schemeFor(url, "ws:", "wss:");
  return out;
}

/**
 * The same URL with scheme `http:`/`https:` (from `ws:`/`wss:`).
 *
 * @throws {TypeError} for any other scheme.
 */
export function toHttpUrl(url: URL): URL {
  const out = new URL(url);
  out.protocol = schemeFor(url, "http:", "https:");
  return out;
}

/**
 * `{path}/{server}/{session}/websocket` with the query kept, as Go's
 * `path.Join` makes it: empty segments (double or trailing slashes) dropped.
 */
export function sockjsWebsocketUrl(
  kiteUrl: URL,
  serverId: string,
  sessionId: string,
): URL {
  const url = toWebSocketUrl(kiteUrl);
  url.pathname = joinPath(url.pathname, serverId, sessionId, "websocket");
  return url;
}

/** The two URLs of an xhr-polling session. */
export interface XhrSessionUrls {
  /** `…/{server}/{session}/xhr`: opens the session, then each poll. */
  poll: string;
  /** `…/{server}/{session}/xhr_send`: carries the client's messages. */
  send: string;
}

/**
 * The xhr-polling URLs under the kite URL. Go concatenates strings here and
 * breaks on a trailing slash or a query (docs/protocol.md §12 #21); we join the path
 * and keep the query.
 */
export function xhrSessionUrls(
  kiteUrl: URL,
  serverId: string,
  sessionId: string,
): XhrSessionUrls {
  const url = toHttpUrl(kiteUrl);
  const base = url.pathname;
  url.pathname = joinPath(base, serverId, sessionId, "xhr");
  const poll = url.href;
  url.pathname = joinPath(base, serverId, sessionId, "xhr_send");
  return { poll, send: url.href };
}

/** `host:port` of a URL, with the scheme's default port filled in. */
export function hostPort(url: URL): string {
  if (url.port !== "") return url.host;
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  return `${url.hostname}:${secure ? 443 : 80}`;
}

function joinPath(path: string, ...segments: string[]): string {
  const parts = path.split("/").filter((part) => part !== "");
  return "/" + parts.concat(segments).join("/");
}

function schemeFor(url: URL, plain: string, secure: string): string {
  switch (url.protocol) {
    case "http:":
    case "ws:":
      return plain;
    case "https:":
    case "wss:":
      return secure;
    default:
      throw new TypeError(
        `unsupported URL scheme "${url.protocol}" in ${url.href}: expected http, https, ws or wss`,
      );
  }
}
