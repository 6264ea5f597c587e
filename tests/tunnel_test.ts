/**
 * The tunnel proxy with every party in a process of its own where it
 * matters: a math kite that never listens registers through a tunnel
 * proxy (both found through Kontrol) and is called on its public URL;
 * the tunnel survives the kite's and the proxy's restarts; 100 callers
 * share one tunnel; a hostile caller costs only its own stream.
 *
 * @module
 */
import type { Client, CloseInfo, Kite } from "../mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import {
  eventually,
  freePort,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";
import {
  type Child,
  spawnTunnelKite,
  spawnTunnelProxy,
} from "./helpers/tunnel_processes.ts";

const MATH = { username: "alice", name: "math-tunnel", environment: "test" };

interface World {
  tk: TestKontrol;
  home: string;
  port: number;
  proxy: Child;
  kite: Child;
  caller: Kite;
  children: Child[];
}

/** Kontrol here; a tunnel proxy and a math kite behind it as processes. */
async function withTunnel(fn: (w: World) => Promise<void>): Promise<void> {
  const tk = await startTestKontrol();
  const home = await Deno.makeTempDir({ prefix: "tunnel_home_" });
  const children: Child[] = [];
  let caller: Kite | undefined;
  try {
    await Deno.writeTextFile(`${home}/kite.key`, await tk.kiteKey("alice"));
    // The proxy runs as Kontrol's user, where kites look for it (as in Go).
    const proxyHome = `${home}/proxy`;
    await Deno.mkdir(proxyHome);
    await Deno.writeTextFile(
      `${proxyHome}/kite.key`,
      await tk.kiteKey("kontrol"),
    );
    const port = freePort();
    const proxy = await spawnTunnelProxy(proxyHome, port);
    children.push(proxy);
    const kite = await spawnTunnelKite(home, {
      MATH_KITE_ID: crypto.randomUUID(),
    });
    children.push(kite);
    caller = await kontrolKite(tk, "caller", "bob");
    await fn({ tk, home, port, proxy, kite, caller, children });
  } finally {
    await caller?.close();
    for (const c of children.reverse()) await c.kill();
    await tk.close();
    await Deno.remove(home, { recursive: true });
  }
}

/** The math kite as Kontrol lists it, dialed. */
async function found(caller: Kite, id?: string): Promise<Client> {
  const kites = await caller.getKites(id ? { ...MATH, id } : MATH);
  assertEquals(kites.length, 1, "one math-tunnel kite registered");
  await kites[0].client.dial();
  return kites[0].client;
}

Deno.test("a kite that never listens is found through Kontrol and called through the tunnel", async () => {
  await withTunnel(async ({ caller, port, kite }) => {
    const [, id, url] = kite.ready;
    assertEquals(url, `http://127.0.0.1:${port}/${id}/kite`);
    const client = await found(caller);
    assertEquals(client.url, url, "Kontrol lists the public tunnel URL");
    assertEquals(await client.tell("square", 7), 49);
    // The kite authenticated the caller's Kontrol token as for any connection.
    assertEquals(await client.tell("whoami"), "bob");
    client.close();
    // Raw WebSocket and XHR callers work too.
    for (const transport of ["raw-websocket", "xhr-polling"] as const) {
      const c = caller.newClient(url, { transport, auth: client.auth });
      await c.dial();
      assertEquals(await c.tell("square", 12), 144, transport);
      c.close();
    }
  });
});

/** Calls `square(n)` until it answers, for a tunnel coming back. */
async function answersAgain(caller: Kite, what: string): Promise<Client> {
  let client: Client | undefined;
  await eventually(
    async () => {
      try {
        client?.close();
        client = await found(caller);
        return (await client.tell("square", 3)) === 9;
      } catch {
        return false;
      }
    },
    what,
    30_000,
  );
  return client!;
}

Deno.test("the tunnel survives the kite's restart and the proxy's: in-flight calls fail saying why, new ones work", async () => {
  await withTunnel(async ({ caller, home, port, proxy, kite, children }) => {
    const [, id, url] = kite.ready;
    const client = await found(caller);
    assertEquals(await client.tell("square", 5), 25);
    const drops: CloseInfo[] = [];
    client.onDisconnect((info) => drops.push(info));
    const inFlight = client.tell("wait", 30_000).then(
      () => undefined,
      (err: Error) => err,
    );
    await new Promise((r) => setTimeout(r, 200));
    await kite.kill();
    const err = await inFlight;
    assert(err instanceof Error, "the in-flight call failed");
    assertEquals(err.message, "Remote kite has disconnected", "Go's message");
    // The caller's session closed saying why.
    assertEquals(drops[0]?.code, 4010);
    assertMatch(drops[0].reason, /the kite's tunnel closed.*call again later/);
    client.close();

    // The kite comes back with its id: same public URL, served again.
    const again = await spawnTunnelKite(home, { MATH_KITE_ID: id });
    children.push(again);
    assertEquals(again.ready[2], url);
    const c2 = await answersAgain(caller, "the restarted kite to answer");
    assertEquals(c2.url, url);
    c2.close();

    // The proxy restarts on its port; the kite dials its tunnel again.
    await proxy.kill();
    children.push(
      await spawnTunnelProxy(`${home}/proxy`, port),
    );
    const c3 = await answersAgain(caller, "the kite to tunnel in again");
    assertEquals(await c3.tell("whoami"), "bob");
    c3.close();
  });
});

/** One metric's value in a Prometheus exposition. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert(m, `${name} in the metrics`);
  return Number(m[1]);
}

Deno.test("100 callers through one tunnel get their own answers; the proxy counts tunnels, streams and bytes", async () => {
  await withTunnel(async ({ caller, port, kite }) => {
    const url = kite.ready[2];
    const first = await found(caller);
    const auth = first.auth;
    const clients = Array.from(
      { length: 100 },
      () => caller.newClient(url, { auth }),
    );
    try {
      await Promise.all(clients.map((c) => c.dial()));
      const answers = await Promise.all(
        clients.flatMap((c, i) =>
          [0, 1, 2].map(async (j) => {
            const n = i * 10 + j;
            return [n, await c.tell("square", n)] as const;
          })
        ),
      );
      for (const [n, r] of answers) assertEquals(r, n * n);
      const text = await (await fetch(
        `http://127.0.0.1:${port}/kite/metrics`,
      )).text();
      assertEquals(metric(text, "kite_tunnels"), 1);
      assert(metric(text, "kite_tunnel_streams") >= 101, "101 streams open");
      assert(metric(text, "kite_tunnel_streams_total") >= 101);
      assert(
        metric(text, 'kite_tunnel_bytes_total{direction="to_kite"}') > 300 * 50,
        "bytes to the kite counted",
      );
      assert(
        metric(text, 'kite_tunnel_bytes_total{direction="to_caller"}') >
          300 * 20,
        "bytes to callers counted",
      );
    } finally {
      for (const c of clients) c.close();
      first.close();
    }
  });
});

Deno.test("a hostile caller in its own process (oversized, broken framing, idle sessions, a flood it never reads) loses only its own streams", async () => {
  await withTunnel(async ({ caller, kite }) => {
    const url = kite.ready[2];
    const good = await found(caller);
    let drops = 0;
    good.onDisconnect(() => drops++);
    const attacker = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        new URL("./helpers/tunnel_attacker.ts", import.meta.url).pathname,
        url,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const output = attacker.output();
    let attacking = true;
    output.finally(() => attacking = false);
    let calls = 0;
    while (attacking) {
      assertEquals(await good.tell("square", calls), calls * calls);
      calls++;
    }
    const { code, stdout } = await output;
    assertEquals(code, 0, "the attacker ran to its end");
    const seen = JSON.parse(new TextDecoder().decode(stdout).split("\n")[0]);
    assertEquals(
      seen.oversized,
      4009,
      "the oversized message closed its socket",
    );
    assertEquals(seen.broken, 4002, "broken framing closed its session");
    assert(seen.floodSent > 0, "the flood got going");
    // Cut off while flooding, or closed (4008) once it read at last.
    assert(
      seen.floodError !== "" || seen.floodEnd === 4008,
      `the flooding stream was cut off: ${JSON.stringify(seen)}`,
    );
    // The good caller kept its session and its answers throughout.
    assert(calls > 0);
    assertEquals(drops, 0, "the good caller's session never dropped");
    assertEquals(await good.tell("square", 12), 144);
    good.close();
  });
});
