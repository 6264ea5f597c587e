/**
 * The Kontrol dashboard page: a browser kite (`@kite/core/browser`) that
 * watches, through Kontrol, the kites of the user its token names, and
 * shows them grouped and live. Watch events are batched per animation
 * frame: a burst of thousands of registrations is one model update and
 * one render of the rows in sight. Bundled by `deno task build:browser`
 * into `dist/dashboard.js`, which `kontrol --dashboard` serves.
 *
 * @module
 */
import { type Client, Kite, type KiteEvent } from "../../kite/browser/mod.ts";
import { byId, document, replaceURL, requestAnimationFrame } from "./dom.ts";
import { type DashboardKite, KiteTable } from "./model.ts";
import { clockTime, KiteList } from "./view.ts";

/** Where the token is kept for the tab's lifetime (never in localStorage). */
const TOKEN_KEY = "kontrol-dashboard-token";
/** Bound on a `kite.ping`/`kite.systemInfo` call from the details panel. */
const CALL_TIMEOUT_MS = 10_000;

/** What the page exposes to tests and the bench (`window.kontrolDashboard`). */
export interface DashboardStats {
  /** Milliseconds from navigation start to the first render of the watched set. */
  firstRenderMs?: number;
  /** Watch events applied so far. */
  applied: number;
  /** Kites shown. */
  kites: number;
  /** Frames that applied events. */
  frames: number;
  /** The longest such frame's work (apply + render), ms. */
  busiestFrameMs: number;
}

/**
 * The username a token was issued to (`sub`), read without verifying:
 * Kontrol verifies it on every call; the page only needs the name to
 * scope the watch.
 * @throws {Error} when `token` is not a JWT with a `sub`.
 */
export function tokenSubject(token: string): string {
  const part = token.split(".")[1] ?? "";
  let claims: { sub?: unknown };
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    claims = JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "=")));
  } catch {
    throw new Error("that is not a token (a JWT from Kontrol)");
  }
  if (typeof claims?.sub !== "string" || claims.sub === "") {
    throw new Error("the token names no user (sub)");
  }
  return claims.sub;
}

/** The token from `#token=` (then removed from the address bar) or this tab's storage. */
function savedToken(): string | undefined {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    replaceURL(location.pathname);
    return fromHash;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

function askForToken(problem?: string): void {
  const form = byId("login");
  byId("problem").textContent = problem ?? "";
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    const token = byId("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    form.hidden = true;
    void open(token);
  };
}

async function open(token: string): Promise<void> {
  let username: string;
  try {
    username = tokenSubject(token);
  } catch (err) {
    return askForToken((err as Error).message);
  }
  const status = byId("status");
  status.textContent = `connecting to Kontrol as ${username}…`;
  const kontrolURL = new URL("/kite", location.href).href;
  const kite = new Kite("kontrol-dashboard", "1.0.0", {
    kontrol: { url: kontrolURL, key: token },
    config: { username },
  });
  const table = new KiteTable();
  // While Kontrol is away the list may be stale: say so. The watch is set
  // up again on the next connection and sends what changed meanwhile.
  let live = true;
  const showStatus = () => {
    status.textContent =
      `${table.size} kites in ${table.groups} groups · ${username} · ${
        live ? "live" : "Kontrol connection lost, reconnecting…"
      }`;
  };
  const onKontrol = (up: boolean) => (c: Client) => {
    if (c.url !== kontrolURL || opening) return;
    live = up;
    showStatus();
  };
  kite.onConnect(onKontrol(true));
  kite.onDisconnect(onKontrol(false));
  const stats: DashboardStats = {
    applied: 0,
    kites: 0,
    frames: 0,
    busiestFrameMs: 0,
  };
  (globalThis as { kontrolDashboard?: DashboardStats }).kontrolDashboard =
    stats;
  const details = new Details(kite, table);
  const list = new KiteList(byId("list"), table, (e) => details.show(e));
  byId("main").hidden = false;

  // Latest event per kite id: a hidden tab (no frames) holds at most one
  // event per kite however long it waits.
  let pending = new Map<string, KiteEvent>();
  let opening = true;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const started = performance.now();
    const batch = pending;
    pending = new Map();
    table.apply(batch.values(), Date.now(), opening);
    stats.applied += batch.size;
    stats.kites = table.size;
    stats.frames++;
    list.render();
    details.refresh();
    showStatus();
    stats.busiestFrameMs = Math.max(
      stats.busiestFrameMs,
      performance.now() - started,
    );
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
  };
  try {
    await kite.watchKites({ username }, (event) => {
      pending.delete(event.kite.id);
      pending.set(event.kite.id, event);
      schedule();
    }, { initial: true });
  } catch (err) {
    kite.close();
    sessionStorage.removeItem(TOKEN_KEY);
    byId("main").hidden = true;
    status.textContent = "";
    return askForToken(`Kontrol refused: ${(err as Error).message}`);
  }
  // Everything delivered so far was registered before the page opened.
  flush();
  opening = false;
  if (stats.firstRenderMs === undefined) {
    stats.firstRenderMs = performance.now();
  }
}

/** The panel that shows one kite and calls it. */
class Details {
  readonly #kite: Kite;
  readonly #table: KiteTable;
  #entry: DashboardKite | undefined;

  constructor(kite: Kite, table: KiteTable) {
    this.#kite = kite;
    this.#table = table;
    byId("ping").onclick = () => this.#call("kite.ping");
    byId("systemInfo").onclick = () => this.#call("kite.systemInfo");
  }

  show(entry: DashboardKite): void {
    this.#entry = entry;
    const k = entry.kite;
    const fields: [string, string][] = [
      ["id", k.id],
      ["username", k.username],
      ["environment", k.environment],
      ["name", k.name],
      ["version", k.version],
      ["region", k.region],
      ["hostname", k.hostname],
      ["URL", entry.url],
      [
        entry.before ? "registered before" : "registered at",
        clockTime(entry.since),
      ],
    ];
    const dl = byId("fields");
    dl.replaceChildren(...fields.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
    byId("output").textContent = "";
    byId("details").dataset.id = k.id;
    byId("details").hidden = false;
  }

  /** Marks the kite shown as gone once it deregistered. */
  refresh(): void {
    const id = this.#entry?.kite.id;
    if (id === undefined) return;
    byId("gone").hidden = this.#table.get(id) !== undefined;
  }

  async #call(method: string): Promise<void> {
    const entry = this.#entry;
    if (!entry) return;
    const out = byId("output");
    out.textContent = `${method}…`;
    const kontrol = this.#kite.kontrol;
    const started = performance.now();
    let client: Client | undefined;
    try {
      const token = entry.token ?? await kontrol.getToken(entry.kite);
      client = kontrol.found({
        kite: entry.kite,
        url: entry.url,
        keyId: "",
        token,
      }).client;
      await client.dial();
      const result = await client.tellWithTimeout(method, CALL_TIMEOUT_MS);
      const ms = Math.round(performance.now() - started);
      out.textContent = `${method} → ${
        JSON.stringify(result, null, 2)
      } (${ms} ms)`;
    } catch (err) {
      out.textContent = `${method} failed: ${(err as Error).message}`;
    } finally {
      client?.close();
    }
  }
}

const token = savedToken();
if (token) void open(token);
else askForToken();
