/**
 * The HTTP side of the SockJS server that holds no session: CORS and cache
 * headers, the `JSESSIONID` cookie, `/info`, the `iframe.html` page and the
 * plain error answers (docs/protocol.md §1.2). Headers follow the SockJS
 * protocol test-suite and sockjs-node.
 *
 * @module
 */

/** `Cache-Control` of every answer that must never be cached. */
export const NO_CACHE =
  "no-store, no-cache, no-transform, must-revalidate, max-age=0";
const ONE_YEAR_S = 365 * 24 * 60 * 60;
/** The sockjs-client the iframe page loads unless told otherwise (sockjs-node's default). */
export const DEFAULT_SOCKJS_URL =
  "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js";
/** `iframe.html` and its versioned names (`iframe-1.6.1.html`). */
export const IFRAME_ROUTE = /^\/iframe[0-9.a-z_-]*\.html$/;
/** A cookie value echoed back in `JSESSIONID`: cookie-octets, bounded. */
const COOKIE_VALUE = /^[!#-+\--:<-[\]-~]{1,256}$/;
/** A URL that may go into the iframe page's `src` attribute as it is. */
const SCRIPT_URL = /^(https?:\/\/|\/)[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;

/**
 * CORS headers of the info and session routes: the request's `Origin`
 * (`null` included) is echoed with `Access-Control-Allow-Credentials: true`,
 * so that cookies flow; without an `Origin`, `*` and no credentials.
 */
export function corsHeaders(request: Request): Headers {
  const headers = new Headers({ Vary: "Origin" });
  const origin = request.headers.get("origin");
  if (origin) {
    headers.set("Access-Control-Allow-Origin", origin);
    headers.set("Access-Control-Allow-Credentials", "true");
  } else {
    headers.set("Access-Control-Allow-Origin", "*");
  }
  const asked = request.headers.get("access-control-request-headers");
  if (asked && asked !== "null") {
    headers.set("Access-Control-Allow-Headers", asked);
  }
  return headers;
}

/** Makes an answer cacheable for a year (preflights, the iframe page). */
export function cacheForAYear(headers: Headers): Headers {
  headers.set("Cache-Control", `public, max-age=${ONE_YEAR_S}`);
  headers.set(
    "Expires",
    new Date(Date.now() + ONE_YEAR_S * 1000).toUTCString(),
  );
  return headers;
}

/** A `204` preflight answer allowing `methods`, cached for a year. */
export function corsOptions(
  request: Request,
  methods: string,
  headers: Headers = corsHeaders(request),
): Response {
  headers.set("Access-Control-Allow-Methods", methods);
  headers.set("Access-Control-Max-Age", String(ONE_YEAR_S));
  return new Response(null, { status: 204, headers: cacheForAYear(headers) });
}

/**
 * Sets `JSESSIONID` (path `/`) for load balancers that stick sessions by
 * it: the request's own value when it is a plain cookie value, else
 * `dummy` (sockjs-node's `jsessionid: true`).
 */
export function setSessionCookie(request: Request, headers: Headers): void {
  let value = "dummy";
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== "JSESSIONID") continue;
    const given = part.slice(eq + 1).trim();
    if (COOKIE_VALUE.test(given)) value = given;
    break;
  }
  headers.set("Set-Cookie", `JSESSIONID=${value}; path=/`);
}

/** What `/info` tells a client about this server. */
export interface InfoOptions {
  /** Whether the websocket transport is served. */
  websocket: boolean;
  /** Whether the server sets `JSESSIONID` (the client must send cookies). */
  cookieNeeded: boolean;
}

/** The `/info` answer: never cached, no cookie (docs/protocol.md §1.2). */
export function infoResponse(request: Request, info: InfoOptions): Response {
  const headers = corsHeaders(request);
  headers.set("Cache-Control", NO_CACHE);
  headers.set("Content-Type", "application/json; charset=UTF-8");
  const entropy = crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
  // Go key order and trailing newline (docs/protocol.md §1.2).
  return new Response(
    `{"websocket":${info.websocket},"cookie_needed":${info.cookieNeeded},"origins":["*:*"],"entropy":${entropy}}\n`,
    { headers },
  );
}

/**
 * The page the `iframe-*` transports load from the server's origin: it
 * loads sockjs-client from `sockjsUrl` and hands the transport to it. The
 * same text is served under every `iframe*.html` name with a strong ETag,
 * so that a browser asks once a year. The SockJS protocol test-suite checks
 * this text line for line, so it is the protocol's, not ours to reword.
 */
export class IframePage {
  readonly #body: string;
  #etag: Promise<string> | undefined;

  /** `sockjsUrl` must be absolute (`http(s)://`) or start with `/`. */
  constructor(sockjsUrl: string) {
    checkSockjsUrl(sockjsUrl);
    this.#body = `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="${sockjsUrl}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>`;
  }

  /** `200` with the page, or `304` with nothing when `If-None-Match` holds its ETag. */
  async answer(request: Request): Promise<Response> {
    const etag = await (this.#etag ??= digest(this.#body));
    if (request.headers.get("if-none-match") === etag) {
      return new Response(null, { status: 304, headers: { ETag: etag } });
    }
    const headers = cacheForAYear(new Headers({ ETag: etag }));
    headers.set("Content-Type", "text/html; charset=UTF-8");
    return new Response(this.#body, { headers });
  }
}

/**
 * Checks the URL the iframe page loads sockjs-client from.
 * @throws {TypeError} naming the setting, unless it is an `http(s)://` URL
 * or a path, with nothing an HTML attribute would have to escape.
 */
export function checkSockjsUrl(sockjsUrl: string, setting = "sockjsUrl"): void {
  if (typeof sockjsUrl !== "string" || !SCRIPT_URL.test(sockjsUrl)) {
    throw new TypeError(
      `SockJsServer: ${setting} must be an http(s) URL or a path starting with "/", without quotes or spaces, got ${
        JSON.stringify(sockjsUrl)
      }`,
    );
  }
}

async function digest(text: string): Promise<string> {
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  const hex = [...new Uint8Array(hash, 0, 16)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `"${hex}"`;
}

/** `405` with the methods the route takes. */
export function notAllowed(allow: string): Response {
  return new Response(null, { status: 405, headers: { Allow: allow } });
}

/** `404 page not found`, as Go's `http.NotFound` words it. */
export function notFound(headers: Headers = new Headers()): Response {
  headers.set("Content-Type", "text/plain; charset=utf-8");
  headers.set("X-Content-Type-Options", "nosniff");
  return new Response("404 page not found\n", { status: 404, headers });
}

/** `400` for a WebSocket route reached without a proper upgrade. */
export function badUpgrade(): Response {
  return textError(
    new Headers(),
    400,
    'Can "Upgrade" only to "WebSocket".',
  );
}

/** `503` saying which limit was reached. */
export function unavailable(headers: Headers, reason: string): Response {
  return textError(headers, 503, reason);
}

/** A plain-text error answer. */
export function textError(
  headers: Headers,
  status: number,
  text: string,
): Response {
  headers.set("Content-Type", "text/plain; charset=utf-8");
  return new Response(text, { status, headers });
}
