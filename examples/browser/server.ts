/**
 * The Deno side of the browser example: a kite that serves the page and
 * the browser build, and calls the page's own methods (`log`, `alert`)
 * over the connection the page dialed.
 *
 * @module
 */
import { Kite, type KiteOptions } from "../../mod.ts";
import type { Client } from "../../mod.ts";
import { servePage } from "./serve_page.ts";

/** Options for {@linkcode browserExampleKite}. */
export interface BrowserExampleOptions {
  /** The browser build (`dist/kite.browser.js`). */
  bundle: string;
  /** Milliseconds between the `log` calls to each page. @default {1000} */
  tickMs?: number;
  /** Kite options (tests pass a logger). */
  kite?: KiteOptions;
}

const PAGE = new URL("./page.html", import.meta.url);

/** The kite that serves the page and calls it back. */
export async function browserExampleKite(
  options: BrowserExampleOptions,
): Promise<Kite> {
  const page = await Deno.readTextFile(PAGE);
  const kite = new Kite("browser-demo", "1.0.0", {
    ...options.kite,
    // The page sends no credentials: this demo serves anyone on 127.0.0.1.
    // A real app hands its page a Kontrol token ({auth: {type: "token"}}).
    config: { disableAuthentication: true, ...options.kite?.config },
  });
  const tickMs = options.tickMs ?? 1000;
  const timers = new Map<Client, ReturnType<typeof setInterval>>();
  kite.handle("hello", (r) => {
    const pageClient = r.client;
    pageClient.tell("alert", `hello from ${kite.identity.name} (Deno)`)
      .catch((err) => kite.logger.warning(`alert failed: ${err}`));
    let n = 0;
    const tick = () => {
      n++;
      pageClient.tell(
        "log",
        `tick ${n} from Deno at ${new Date().toISOString()}`,
      )
        .catch((err) => kite.logger.debug(`log failed: ${err}`));
    };
    tick();
    clearInterval(timers.get(pageClient));
    timers.set(pageClient, setInterval(tick, tickMs));
    return `connected to ${kite.identity.name}; your browser: ${
      r.args.one().string().slice(0, 60)
    }`;
  });
  kite.onDisconnect((c) => {
    clearInterval(timers.get(c));
    timers.delete(c);
  });
  kite.addCloser(() => {
    for (const t of timers.values()) clearInterval(t);
    timers.clear();
  });
  servePage(kite, page, { "kite.browser.js": options.bundle });
  return kite;
}
