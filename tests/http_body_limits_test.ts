/**
 * Every HTTP route of a kite and of Kontrol refuses an oversized body with
 * 413 before reading it: a declared `Content-Length` over the limit is
 * answered at once (the body is never sent), and the routes that read a
 * body cut a chunked one off as soon as it passes the limit. The targets
 * run in processes of their own; afterwards they still serve.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { mathTestKite } from "./helpers/kite_harness.ts";
import { declaredBody, growingBody, UPGRADE } from "./helpers/raw_http.ts";
import { mib, startTarget, type Target } from "./helpers/target_process.ts";

const LIMIT = 64 * 1024;
/** Far more than any limit: what a server reading it all would hold. */
const HUGE = 200 * 2 ** 20;

/** Every route under `/kite` (SockJS, docs/protocol.md §1.2, and the raw WebSocket, §1.7). */
const SOCKJS_ROUTES: [string, string, string[]?][] = [
  ["POST", "/kite/000/s1/xhr_send"],
  ["POST", "/kite/000/s2/xhr"],
  ["POST", "/kite/000/s3/xhr_streaming"],
  ["OPTIONS", "/kite/000/s4/xhr"],
  ["POST", "/kite/000/s6/jsonp_send"],
  ["GET", "/kite/000/s7/jsonp?c=x"],
  ["GET", "/kite/000/s8/eventsource"],
  ["GET", "/kite/000/s9/htmlfile?c=x"],
  ["GET", "/kite/iframe.html"],
  ["GET", "/kite/000/s5/websocket", UPGRADE],
  ["GET", "/kite", UPGRADE],
  ["GET", "/kite/info"],
  ["OPTIONS", "/kite/info"],
  ["GET", "/kite"],
  ["GET", "/kite/"],
  ["GET", "/kite/websocket"],
  ["GET", "/elsewhere"],
];

/** The routes Kontrol mounts besides `/kite`, with the method they take. */
const KONTROL_ROUTES: Record<string, string> = {
  "/register": "POST",
  "/heartbeat": "GET",
};

async function assertServes(target: Target): Promise<void> {
  assert(target.alive(), `the target died:\n${target.stderr()}`);
  const kite = mathTestKite();
  const client = kite.newClient(target.url);
  try {
    await client.dial();
    const stats = await client.tell("target.stats") as { rss: number };
    assert(stats.rss > 0);
  } finally {
    client.close();
    await kite.close();
  }
}

async function assertDeclaredRefused(
  target: Target,
  routes: [string, string, string[]?][],
): Promise<void> {
  for (const [method, path, extra] of routes) {
    const r = await declaredBody(target.port, method, path, HUGE, extra);
    if (extra?.includes("Upgrade: websocket")) {
      // Deno's HTTP layer refuses an upgrade that carries a body before
      // the kite sees it: 400, no body, connection closed.
      assertEquals(r.status, 400, `${method} ${path} (upgrade): ${r.text}`);
      assert(/connection: close/i.test(r.text), r.text);
      continue;
    }
    assertEquals(r.status, 413, `${method} ${path}: ${r.text}`);
    assert(
      r.text.includes(`limit is ${LIMIT} bytes`) ||
        r.text.includes("limit is 65536 bytes"),
      `${method} ${path} names the limit: ${r.text}`,
    );
  }
}

Deno.test("every kite route answers 413 to a body declared over maxMessageBytes, before reading it", async () => {
  const target = await startTarget("kite", {
    config: { maxMessageBytes: LIMIT },
  });
  try {
    assertEquals(target.httpPaths, []);
    await assertDeclaredRefused(target, SOCKJS_ROUTES);
    await assertServes(target);
  } finally {
    await target.stop();
  }
});

Deno.test("every Kontrol route answers 413 to a body declared over its limit, before reading it", async () => {
  const target = await startTarget("kontrol", {
    config: { maxMessageBytes: LIMIT },
  });
  try {
    // A route added to Kontrol must be added here (and bounded).
    assertEquals(
      [...target.httpPaths].sort(),
      Object.keys(KONTROL_ROUTES).sort(),
    );
    const routes: [string, string][] = Object.entries(KONTROL_ROUTES).map((
      [path, method],
    ) => [method, path]);
    await assertDeclaredRefused(target, [...SOCKJS_ROUTES, ...routes]);
    await assertServes(target);
  } finally {
    await target.stop();
  }
});

Deno.test("routes that read a body cut a growing chunked body off at the limit", async () => {
  const kite = await startTarget("kite", {
    config: { maxMessageBytes: LIMIT },
  });
  const kontrol = await startTarget("kontrol");
  try {
    const cases: [Target, string, string][] = [
      [kite, "POST", "/kite/000/s1/xhr_send"],
      [kite, "POST", "/kite/000/s1/jsonp_send"],
      [kontrol, "POST", "/register"],
    ];
    for (const [target, method, path] of cases) {
      const before = target.rss();
      const r = await growingBody(target.port, method, path, 64 * 2 ** 20);
      assertEquals(r.status, 413, `${method} ${path}: ${r.text}`);
      // Refused near the limit, not after everything was sent: the socket
      // buffers on both sides hold a few MiB at most.
      assert(
        r.written < 16 * 2 ** 20,
        `${path}: ${mib(r.written)} sent before the 413`,
      );
      const grown = target.rss() - before;
      assert(grown < 32 * 2 ** 20, `${path}: RSS grew by ${mib(grown)}`);
    }
    await assertServes(kite);
    await assertServes(kontrol);
  } finally {
    await kite.stop();
    await kontrol.stop();
  }
});
