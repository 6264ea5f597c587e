/**
 * Two Kontrols on one etcd, and two on one PostgreSQL, sharing a key pair:
 * a kite registered on A is found (and called with a token) through B, B's
 * watchers see A's kites come and go, closing A leaves B's kites alone,
 * and a kite that lists both URLs moves to B when A goes away — with
 * Kontrol as `deno task kontrol` processes too, under their scoped
 * permissions.
 */
import { KiteError } from "../kite/errors.ts";
import { type KiteEvent, makeQuery } from "../kite/protocol.ts";
import { MemoryStorage } from "../storage/memory.ts";
import type { Kite } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "./helpers/assert.ts";
import {
  clusterKite,
  type ClusterKontrol,
  KONTROL_KEY_FILES,
  type KontrolProcess,
  SHARED_ENGINES,
  type SharedBackend,
  startBackend,
  startClusterKontrol,
  startKontrolProcess,
  startSharingKontrol,
} from "./helpers/kontrol_cluster.ts";
import {
  eventually,
  freePort,
  jwtParts,
  KONTROL_PUBLIC,
  verifiesWith,
} from "./helpers/kontrol_harness.ts";

/** Generous bound for things that happen across processes and storage. */
const WAIT_MS = 30_000;

/** A kite with a method that needs a valid token. */
function withWhoami(kite: Kite): Kite {
  kite.handle("whoami", (r) => `hello ${r.username}`);
  return kite;
}

/** Ids and URLs of what `caller` finds for `username` through its Kontrol. */
async function found(
  caller: Kite,
  username: string,
  name?: string,
): Promise<string[]> {
  const kites = await caller.getKites({
    username,
    environment: name ? "test" : "",
    name: name ?? "",
  });
  return kites.map((k) => `${k.kite.id} ${k.url}`).sort();
}

function entry(kite: Kite): string {
  return `${kite.identity.id} ${kite.url}`;
}

/** Closes kites and Kontrols in reverse order of creation. */
class Cleanup {
  #items: { close(): Promise<void> }[] = [];
  add<T extends { close(): Promise<void> }>(item: T): T {
    this.#items.push(item);
    return item;
  }
  async run(): Promise<void> {
    for (const item of this.#items.reverse()) {
      await item.close().catch(() => {});
    }
  }
}

async function pair(
  backend: SharedBackend,
  namespace: string,
  cleanup: Cleanup,
): Promise<[ClusterKontrol, ClusterKontrol]> {
  // Started together: both race to store the shared key pair.
  const started = await Promise.allSettled([0, 1].map(async () =>
    cleanup.add(
      await startClusterKontrol(await backend.open({ namespace })),
    )
  ));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const [a, b] = started.map((s) =>
    (s as PromiseFulfilledResult<ClusterKontrol>).value
  );
  return [a, b];
}

for (const engine of SHARED_ENGINES) {
  Deno.test({
    name: `${engine}: two Kontrols on one ${engine} share their kites`,
    async fn(t) {
      const backend = await startBackend(engine);
      try {
        await t.step(
          "a kite registered on A is found through B, whose token calls it",
          async () => {
            const cleanup = new Cleanup();
            try {
              const [a, b] = await pair(backend, "/cluster-1", cleanup);
              const secret = cleanup.add(
                withWhoami(await clusterKite("secret", "alice1", [a.url])),
              );
              await secret.serve();
              await secret.register();
              assertEquals(secret.kontrol.registeredWith, a.url);
              assert(a.kontrol.registry.has(secret.identity.id));
              assertEquals(
                b.kontrol.registry.size,
                0,
                "B does not supervise it",
              );

              const caller = cleanup.add(
                await clusterKite("caller", "bob", [b.url]),
              );
              const [hit, ...rest] = await caller.getKites({
                username: "alice1",
                environment: "test",
                name: "secret",
              });
              assertEquals(rest, []);
              assertEquals(`${hit.kite.id} ${hit.url}`, entry(secret));
              assertEquals(caller.kontrol.url, b.url);
              const { claims } = jwtParts(hit.token);
              assertEquals(
                [claims.iss, claims.sub, claims.aud],
                ["kontrol", "bob", "/alice1/test/secret"],
              );
              assert(await verifiesWith(hit.token, KONTROL_PUBLIC));
              await hit.client.dial();
              assertEquals(await hit.client.tell("whoami"), "hello bob");

              // The method does need that token.
              const bare = caller.newClient(secret.url, { auth: null });
              await bare.dial();
              const err = await assertRejects(
                () => bare.tell("whoami"),
                KiteError,
              );
              bare.close();
              assertEquals((err as KiteError).type, "authenticationError");
            } finally {
              await cleanup.run();
            }
          },
        );

        await t.step(
          "a watcher on B sees a kite register on A and go away",
          async () => {
            const cleanup = new Cleanup();
            try {
              const [a, b] = await pair(backend, "/cluster-2", cleanup);
              const watcher = cleanup.add(
                await clusterKite("watcher", "bob", [b.url]),
              );
              const events: KiteEvent[] = [];
              const cancel = await watcher.watchKites(
                { username: "alice2" },
                (e) => events.push(e),
              );
              const worker = await clusterKite("worker", "alice2", [a.url]);
              const id = worker.identity.id;
              const actions = () =>
                events.filter((e) => e.kite.id === id).map((e) => e.action);
              try {
                await worker.serve();
                await worker.register();
                await eventually(
                  () => actions().length > 0,
                  "REGISTER at B",
                  WAIT_MS,
                );
                const registered = events.find((e) => e.kite.id === id)!;
                assertEquals(registered.action, "REGISTER");
                assertEquals(registered.url, worker.url);
                assert(await verifiesWith(registered.token!, KONTROL_PUBLIC));
              } finally {
                await worker.close();
              }
              // A deregisters it when its connection closes; B's watcher hears.
              await eventually(
                () => actions().length > 1,
                "DEREGISTER at B",
                WAIT_MS,
              );
              assertEquals(actions(), ["REGISTER", "DEREGISTER"]);
              await cancel();
            } finally {
              await cleanup.run();
            }
          },
        );

        await t.step(
          "closing A: B's kites stay, registerForever kites move to B, A's others expire",
          async () => {
            const cleanup = new Cleanup();
            try {
              // Short liveness timings, so A's leftovers go within seconds:
              // on etcd with A's lease, on PostgreSQL by B's stale sweep.
              const timing = {
                heartbeatIntervalMs: 1_000,
                heartbeatGraceMs: 2_000,
                updateIntervalMs: 500,
              };
              const namespace = "/cluster-3";
              const a = cleanup.add(
                await startClusterKontrol(
                  await backend.open({ namespace, leaseTtlSeconds: 3 }),
                  { timing, staleAfterMs: 5_000 },
                ),
              );
              const b = cleanup.add(
                await startClusterKontrol(await backend.open({ namespace }), {
                  timing,
                  staleAfterMs: 5_000,
                }),
              );
              const onB = cleanup.add(
                await clusterKite("onB", "alice3", [b.url]),
              );
              const mover = cleanup.add(
                await clusterKite("mover", "alice3", [a.url, b.url]),
              );
              const onlyA = cleanup.add(
                await clusterKite("onlyA", "alice3", [a.url]),
              );
              for (const k of [onB, mover, onlyA]) await k.serve();
              await onB.registerForever();
              await mover.registerForever();
              await onlyA.register();
              assertEquals(
                [mover.kontrol.registeredWith, onB.kontrol.registeredWith],
                [a.url, b.url],
              );
              const caller = cleanup.add(
                await clusterKite("caller", "bob", [b.url]),
              );
              assertEquals(
                await found(caller, "alice3"),
                [entry(onB), entry(mover), entry(onlyA)].sort(),
              );

              await a.close();
              await eventually(
                () => mover.kontrol.registeredWith === b.url,
                "the registerForever kite to re-register with B",
                WAIT_MS,
              );
              assert(b.kontrol.registry.has(mover.identity.id));
              // Nobody supervises onlyA any more, so it goes...
              await eventually(
                async () => (await found(caller, "alice3")).length === 2,
                "A's plain registration to expire",
                WAIT_MS,
              );
              // ...while B's kites, the moved one included, outlived A's lease
              // or went through B's sweeps.
              assertEquals(
                await found(caller, "alice3"),
                [entry(onB), entry(mover)].sort(),
              );
              assertEquals(onB.kontrol.registeredWith, b.url);
            } finally {
              await cleanup.run();
            }
          },
        );

        await t.step(
          "deno task kontrol processes: a kite moves from A to B when A is killed",
          async () => {
            const dir = await Deno.makeTempDir({ prefix: "kontrol_cluster_" });
            const cleanup = new Cleanup();
            const processes: KontrolProcess[] = [];
            try {
              const ports = [freePort(), freePort()];
              const started = await Promise.allSettled(
                ports.map((port, i) =>
                  startKontrolProcess({
                    ...backend.kontrolEnv(),
                    ...KONTROL_KEY_FILES,
                    KONTROL_IP: "127.0.0.1",
                    KONTROL_PORT: String(port),
                    KONTROL_DATA: `${dir}/data${i}`,
                  }).then((p) => processes.push(p) && p)
                ),
              );
              for (const s of started) {
                if (s.status === "rejected") throw s.reason;
              }
              const [a, b] = ports.map((port) =>
                processes.find((p) => p.url.includes(`:${port}/`))!
              );
              // Scoped permissions: net for the listen address and the storage only.
              for (const [p, port] of [[a, ports[0]], [b, ports[1]]] as const) {
                const flags = p.mainArgv.filter((f) => f.startsWith("--allow"));
                assert(
                  !flags.some((f) => f === "--allow-all" || f === "-A"),
                  flags.join(" "),
                );
                assertEquals(
                  flags.filter((f) => f.startsWith("--allow-net")),
                  [`--allow-net=127.0.0.1:${port},${backend.hostPort}`],
                );
              }

              const mover = cleanup.add(
                withWhoami(
                  await clusterKite("mover", "alice4", [a.url, b.url]),
                ),
              );
              await mover.serve();
              await mover.registerForever();
              assertEquals(mover.kontrol.registeredWith, a.url);
              const caller = cleanup.add(
                await clusterKite("caller", "bob", [b.url]),
              );
              const [hit] = await caller.getKites({
                username: "alice4",
                environment: "test",
                name: "mover",
              });
              assertEquals(`${hit.kite.id} ${hit.url}`, entry(mover));
              await hit.client.dial();
              assertEquals(await hit.client.tell("whoami"), "hello bob");
              hit.client.close();

              assert((await a.kill("SIGKILL")) !== 0, "A was killed");
              await eventually(
                () => mover.kontrol.registeredWith === b.url,
                "the kite to re-register with B",
                WAIT_MS,
              );
              // B supervises it now: when it closes, B removes it at once
              // (A's copy would have stayed until its lease or age ran out).
              await mover.close();
              await eventually(
                async () => (await found(caller, "alice4")).length === 0,
                "B to deregister the closed kite",
                WAIT_MS,
              );
              assertEquals(await b.kill("SIGTERM"), 0, b.output());
            } finally {
              await cleanup.run();
              for (const p of processes) {
                await p.kill("SIGKILL").catch(() => {});
              }
              await Deno.remove(dir, { recursive: true });
            }
          },
        );
      } finally {
        await backend.close();
      }
    },
  });
}

Deno.test("kontrolURL with several URLs: the kite skips dead ones and follows Kontrol as it goes away", async () => {
  // Two Kontrols on one in-memory storage: no database needed for the client side.
  const storage = new MemoryStorage();
  const start = () => startSharingKontrol(storage);
  const a = await start();
  const b = await start();
  const dead = `http://127.0.0.1:${freePort()}/kite`;
  const kite = await clusterKite("mover", "alice5", [dead, a.url, b.url]);
  try {
    assertEquals(kite.kontrol.urls, [dead, a.url, b.url]);
    await kite.serve();
    await kite.registerForever();
    assertEquals(kite.kontrol.url, a.url);
    assertEquals(kite.kontrol.registeredWith, a.url);
    assert(a.kontrol.registry.has(kite.identity.id));

    await a.kontrol.kite.close();
    await eventually(
      () => kite.kontrol.registeredWith === b.url,
      "the kite to re-register with B",
      WAIT_MS,
    );
    assert(b.kontrol.registry.has(kite.identity.id));
    const [stored] = await storage.get(makeQuery({ username: "alice5" }));
    assertEquals(stored.url, kite.url);
  } finally {
    await kite.close();
    await a.kontrol.kite.close();
    await b.kontrol.kite.close();
    await storage.close();
  }
});

Deno.test("KontrolClient.urls splits kontrolURL on commas and needs at least one", async () => {
  const kite = await clusterKite("k", "alice6", [
    " http://a:4000/kite ",
    "",
    "http://b:4000/kite,",
  ]);
  try {
    assertEquals(kite.kontrol.urls, [
      "http://a:4000/kite",
      "http://b:4000/kite",
    ]);
    assertEquals(kite.kontrol.url, "http://a:4000/kite");
    assertEquals(kite.kontrol.registeredWith, undefined);
    kite.config.kontrolURL = " , ";
    const err = assertThrows(() => kite.kontrol.urls, KiteError);
    assertEquals((err as KiteError).type, "sendError");
  } finally {
    await kite.close();
  }
});
