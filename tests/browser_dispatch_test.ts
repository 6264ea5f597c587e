/**
 * The page kite serves calls through the Deno kite's dispatch path
 * (`kite/serve/dispatch.ts`): its hooks run, a caller's deadline reaches
 * the handler and `kite.cancel` stops it, and its concurrency limit sheds
 * calls with the same error. The page kite here runs in Deno (its sockets
 * are the WebSocket every runtime has); tests/browser_kite_test.ts drives
 * it in Chromium.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { settle, testKite } from "./helpers/kite_harness.ts";
import { eventually } from "./helpers/wait.ts";
import { BrowserKite } from "../kite/browser/mod.ts";
import type { Client, KiteError } from "../mod.ts";

Deno.test("a page kite's calls go through hooks, deadlines, kite.cancel and limits", async () => {
  const server = testKite("math", { disableAuthentication: true });
  let page: Client | undefined;
  server.onFirstRequest((c) => page = c);
  server.handle("hello", () => "hi");
  const kite = new BrowserKite("page", "1.0.0", {
    config: { maxConcurrentRequests: 1, logLevel: "FATAL" },
  });
  const seen: string[] = [];
  kite.preHandle((r) => void seen.push(`pre ${r.method}`));
  kite.postHandle((r) => void seen.push(`post ${r.method}`));
  kite.finalFunc((r, result, error) =>
    void seen.push(`final ${r.method} ${result} ${error?.type}`)
  );
  const deadlines: (number | undefined)[] = [];
  let release = () => {};
  let aborted = false;
  kite.handle("echo", (r) => {
    deadlines.push(r.deadline);
    return r.args.one().string();
  });
  kite.handle("hold", (r) =>
    new Promise((resolve) => {
      release = () => resolve("released");
      r.signal.addEventListener("abort", () => {
        aborted = true;
        resolve("aborted");
      });
    }));
  try {
    await server.serve({ quiet: true });
    const client = kite.newClient(server.url, { transport: "raw-websocket" });
    await client.dial();
    assertEquals(await client.tell("hello"), "hi");
    await eventually(() => page !== undefined, "the page's first call");

    // Hooks and a caller's deadline.
    assertEquals(await page!.call("echo", ["x"], { timeoutMs: 5_000 }), "x");
    assertEquals(seen, ["pre echo", "post echo", "final echo x undefined"]);
    assert(deadlines[0] !== undefined && deadlines[0] > Date.now(), "deadline");

    // One call at a time: the second is shed as a Deno kite sheds it.
    const held = page!.call("hold", [], { timeoutMs: 5_000 });
    await eventually(() => seen.includes("pre hold"), "hold started");
    const shed = await settle(page!.call("hold"));
    assert(!shed.ok);
    assertEquals((shed.error as KiteError).type, "requestLimitError");
    release();
    assertEquals(await held, "released");

    // A caller that gives up cancels the handler's signal (kite.cancel).
    const gone = new AbortController();
    const cancelled = settle(page!.call("hold", [], { signal: gone.signal }));
    await eventually(
      () => seen.filter((s) => s === "pre hold").length === 2,
      "the second hold started",
    );
    gone.abort();
    assert(!(await cancelled).ok);
    await eventually(() => aborted, "the page handler saw kite.cancel");
  } finally {
    kite.close();
    await server.close();
  }
});
