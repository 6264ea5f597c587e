/**
 * Serves the Kontrol dashboard (`kontrol --dashboard`): `GET /dashboard`,
 * the page, and `GET /dashboard.js`, its script (the browser build of
 * `app.ts`). The page holds no data and no credentials: it asks for a
 * token and then sees, through Kontrol's own `getKites` watch, only what
 * that token's user may list.
 *
 * @module
 */
import type { Kite } from "../../kite/kite.ts";

/** What the dashboard is served from. */
export interface DashboardOptions {
  /** The bundled page script (`dist/dashboard.js`, `deno task build:browser`). */
  script: string;
}

// Kites are dialed at their own URLs (any host) for ping/systemInfo.
const HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; " +
    "style-src 'unsafe-inline'; connect-src 'self' http: https: ws: wss:; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Mounts the dashboard's two routes on Kontrol's kite. */
export function addDashboardRoutes(
  kite: Kite,
  options: DashboardOptions,
): void {
  const serve = (body: string, type: string) => (req: Request) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { ...HEADERS, "content-type": type },
    });
  };
  kite.handleHTTP(
    "/dashboard",
    serve(DASHBOARD_HTML, "text/html; charset=utf-8"),
  );
  kite.handleHTTP(
    "/dashboard.js",
    serve(options.script, "text/javascript; charset=utf-8"),
  );
}

const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kontrol dashboard</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1d2430;
    background: #f4f6f9; height: 100vh; display: flex; flex-direction: column; }
  header { padding: 10px 16px; background: #1d2430; color: #fff;
    display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  #status { color: #b8c4d6; font-size: 13px; }
  form { padding: 24px 16px; max-width: 720px; }
  form input { width: 100%; font: 13px monospace; padding: 6px; margin: 6px 0; }
  #problem { color: #b3261e; }
  #main { flex: 1; display: flex; min-height: 0; }
  #list { flex: 3; overflow-y: auto; position: relative; background: #fff;
    border-right: 1px solid #d5dbe4; }
  .spacer { position: relative; }
  .row { position: absolute; left: 0; right: 0; height: 26px; line-height: 26px;
    padding: 0 12px; white-space: nowrap; overflow: hidden;
    text-overflow: ellipsis; cursor: pointer; font-size: 13px; }
  .row.group { background: #e8edf4; font-weight: 600; }
  .row.kite { padding-left: 28px; font-family: ui-monospace, monospace; }
  .row.kite:hover { background: #f0f4fa; }
  .row.selected { background: #dce8fb; }
  #details { flex: 2; padding: 12px 16px; overflow-y: auto; }
  #details dl { display: grid; grid-template-columns: max-content 1fr;
    gap: 2px 12px; margin: 0 0 12px; }
  #details dt { color: #5a6678; }
  #details dd { margin: 0; font-family: ui-monospace, monospace;
    word-break: break-all; }
  #details button { margin-right: 8px; padding: 4px 10px; }
  #output { background: #1d2430; color: #d8e0ea; padding: 8px;
    white-space: pre-wrap; min-height: 3em; font-size: 12px; }
  #gone { color: #b3261e; }
  [hidden] { display: none !important; }
</style></head>
<body>
<header><h1>Kontrol</h1><span id="status"></span></header>
<form id="login" hidden>
  <label>A token for Kontrol (it is kept in this tab only)
    <input id="token" type="password" autocomplete="off" spellcheck="false"></label>
  <button>Open</button>
  <p id="problem"></p>
  <p>Get one with <code>deno task kitectl dashboard</code> (it prints this
  page's address with a token for your kite.key's user), or from a kite:
  <code>kite.kontrol.getToken({ username: "kontrol", name: "kontrol" })</code>.
  You see the kites of that user.</p>
</form>
<div id="main" hidden>
  <div id="list"></div>
  <aside id="details" hidden>
    <dl id="fields"></dl>
    <p id="gone" hidden>This kite has gone away.</p>
    <button id="ping">kite.ping</button><button id="systemInfo">kite.systemInfo</button>
    <pre id="output"></pre>
  </aside>
</div>
<script type="module" src="/dashboard.js"></script>
</body></html>
`;
