import { Etcd3 } from "etcd3";
import { ManualClock } from "../kite/clock.ts";
import {
  type KiteIdentity,
  makeIdentity,
  makeQuery,
} from "../kite/protocol.ts";
import { etcdOptionsFromEnv, EtcdStorage, EtcdStorageError } from "./etcd.ts";
import type { StorageEvent } from "./storage.ts";
import { storageConformance } from "./conformance.ts";
import {
  assert,
  assertEquals,
  assertRejects,
} from "../tests/helpers/assert.ts";
import { startBlackhole } from "../tests/helpers/binaries.ts";
import { type EtcdServer, startEtcd } from "../tests/helpers/etcd_server.ts";
import { eventually, within } from "../tests/helpers/wait.ts";

function kite(name: string, fields: Partial<KiteIdentity> = {}): KiteIdentity {
  return makeIdentity({
    username: "alice",
    environment: "prod",
    name,
    version: "1.0.0",
    region: "eu",
    hostname: "h1",
    id: crypto.randomUUID(),
    ...fields,
  });
}

Deno.test("etcdOptionsFromEnv() reads KONTROL_MACHINES", () => {
  const env = (vars: Record<string, string>) => ({
    get: (k: string) => vars[k],
  });
  assertEquals(etcdOptionsFromEnv(env({})).endpoints, [
    "http://127.0.0.1:2379",
  ]);
  assertEquals(
    etcdOptionsFromEnv(env({
      KONTROL_MACHINES: "http://10.0.0.1:2379, 10.0.0.2:2379,",
    })).endpoints,
    ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
  );
});

Deno.test("EtcdStorage times out against a server that never answers", async () => {
  const blackhole = startBlackhole();
  const storage = new EtcdStorage({
    endpoints: [`http://127.0.0.1:${blackhole.port}`],
    timeoutMs: 500,
    onError: () => {},
  });
  try {
    const err = await within(
      assertRejects(
        () => storage.get(makeQuery({ username: "alice" })),
        EtcdStorageError,
        "within 500 ms",
      ),
      "the storage call",
      10_000,
    );
    assert(err.message.includes(`127.0.0.1:${blackhole.port}`), err.message);
    await within(
      assertRejects(
        () =>
          EtcdStorage.connect({
            endpoints: [`http://127.0.0.1:${blackhole.port}`],
            timeoutMs: 500,
          }),
        EtcdStorageError,
      ),
      "the storage call",
      10_000,
    );
  } finally {
    await storage.close();
    await blackhole.close();
  }
});

Deno.test({
  name: "EtcdStorage against a real etcd",
  async fn(t) {
    const server = await startEtcd();
    let prefixes = 0;
    const open: Array<EtcdStorage> = [];
    const connect = async (
      prefix: string,
      options: { leaseTtlSeconds?: number; onError?: (e: Error) => void } = {},
    ): Promise<EtcdStorage> => {
      const storage = await EtcdStorage.connect({
        endpoints: server.endpoints,
        prefix,
        timeoutMs: 2_000,
        ...options,
      });
      open.push(storage);
      return storage;
    };
    const freshPrefix = () => `/kite-test-${prefixes++}`;
    const admin = new Etcd3({ hosts: server.endpoints });
    try {
      const conformance = (clock?: ManualClock) => () => {
        const prefix = freshPrefix();
        const options = { endpoints: server.endpoints, prefix, clock };
        return EtcdStorage.connect(options).then((storage) => ({
          storage,
          clock,
          openPeer: () => EtcdStorage.connect(options),
          async cleanup() {
            await storage.close();
            await admin.delete().prefix(prefix + "/");
          },
        }));
      };
      await t.step(
        "passes the storage conformance suite",
        (t) => storageConformance(t, conformance(new ManualClock())),
      );
      await t.step(
        "conforms on the system clock",
        (t) => storageConformance(t, conformance()),
      );

      await t.step(
        "two instances see each other's kites and events",
        async () => {
          const prefix = freshPrefix();
          const a = await connect(prefix);
          const b = await connect(prefix);
          const seenByA: StorageEvent[] = [];
          const seenByB: StorageEvent[] = [];
          a.watch(makeQuery({ username: "alice" }), (e) => seenByA.push(e));
          b.watch(makeQuery({ username: "alice" }), (e) => seenByB.push(e));

          const math = kite("math");
          await b.add({ kite: math, url: "http://h1:3636/kite", keyId: "k1" });
          const found = await a.get(makeQuery({ username: "alice", name: "" }));
          assertEquals(found.map((k) => [k.kite, k.url, k.keyId]), [
            [math, "http://h1:3636/kite", "k1"],
          ]);
          await eventually(
            () => seenByA.length === 1,
            "A sees B's REGISTER",
            20_000,
          );
          assertEquals(seenByA[0], {
            action: "REGISTER",
            kite: math,
            url: "http://h1:3636/kite",
            keyId: "k1",
          });

          // A refresh is not a new registration.
          await a.update({
            kite: math,
            url: "http://h1:4000/kite",
            keyId: "x",
          });
          const [refreshed] = await b.get(makeQuery({ id: math.id }));
          assertEquals([refreshed.url, refreshed.keyId], [
            "http://h1:4000/kite",
            "k1",
          ]);

          assert(await a.delete(math));
          assert(!(await b.delete(math)));
          await eventually(
            () => seenByB.length === 2,
            "B sees A's DEREGISTER",
            20_000,
          );
          assertEquals(seenByB.map((e) => e.action), [
            "REGISTER",
            "DEREGISTER",
          ]);
          assertEquals(seenByA.map((e) => e.action), [
            "REGISTER",
            "DEREGISTER",
          ]);
          assertEquals(await b.get(makeQuery({ username: "alice" })), []);
        },
      );

      await t.step(
        "a closed instance's kites expire with its lease",
        async () => {
          const prefix = freshPrefix();
          const errors: Error[] = [];
          const a = await connect(prefix, {
            leaseTtlSeconds: 2,
            onError: (e) => errors.push(e),
          });
          const c = await connect(prefix, { leaseTtlSeconds: 2 });
          const observer = await connect(prefix);
          const events: StorageEvent[] = [];
          observer.watch(
            makeQuery({ username: "alice" }),
            (e) => events.push(e),
          );
          const fromA = kite("a");
          const fromC = kite("c");
          await a.add({ kite: fromA, url: "http://a/kite", keyId: "k" });
          await c.add({ kite: fromC, url: "http://c/kite", keyId: "k" });

          await a.close();
          await eventually(
            async () =>
              (await observer.get(makeQuery({ id: fromA.id }))).length === 0,
            "A's kite expires",
            20_000,
          );
          assert(
            events.some((e) =>
              e.action === "DEREGISTER" && e.kite.id === fromA.id
            ),
            "watchers see the expiry as DEREGISTER",
          );
          // C lived through more than one TTL: its keepalive holds its kite.
          assertEquals(
            (await observer.get(makeQuery({ id: fromC.id }))).map((k) =>
              k.kite
            ),
            [fromC],
          );
          assertEquals(errors, []);
        },
      );

      await t.step(
        "a lost lease is re-granted and the kites restored",
        async () => {
          const prefix = freshPrefix();
          const errors: Error[] = [];
          const a = await connect(prefix, { onError: (e) => errors.push(e) });
          const math = kite("math");
          await a.add({ kite: math, url: "http://h1/kite", keyId: "k1" });

          // Revoke A's lease behind its back, as etcd does when it expires.
          const raw = new Etcd3({ hosts: server.endpoints });
          try {
            const key =
              `${prefix}/kites/alice/prod/math/1.0.0/eu/h1/${math.id}`;
            const [kv] = (await raw.get(key).exec()).kvs;
            assert(kv && kv.lease !== "0", "the kite is held by a lease");
            await raw.leaseClient.leaseRevoke({ ID: kv.lease });
            await eventually(
              async () => {
                const [back] = (await raw.get(key).exec()).kvs;
                return back !== undefined && back.lease !== kv.lease;
              },
              "the kite comes back",
              20_000,
            );
          } finally {
            raw.close();
          }
          const [restored] = await a.get(makeQuery({ id: math.id }));
          assertEquals([restored.kite, restored.url], [math, "http://h1/kite"]);
          assert(
            errors.some((e) => e.message.includes("lease lost")),
            `the loss is reported: ${errors.map((e) => e.message)}`,
          );
        },
      );

      await t.step("survives an etcd outage without losing kites", async () => {
        await outage(
          server,
          await connect(freshPrefix(), { onError: () => {} }),
        );
      });
    } finally {
      for (const storage of open) await storage.close();
      admin.close();
      await server.close();
    }
  },
});

async function outage(server: EtcdServer, storage: EtcdStorage): Promise<void> {
  const events: StorageEvent[] = [];
  storage.watch(makeQuery({ username: "alice" }), (e) => events.push(e));
  const before = kite("before");
  await storage.add({ kite: before, url: "http://before/kite", keyId: "k" });
  await storage.addKey({ id: "key-1", public: "PUB", private: "PRIV" });

  // A crash, not a graceful stop: Deno 2.9's node:http2 can abort the whole
  // process inside nghttp2 when a server sends GOAWAY (denoland/deno#36788),
  // which etcd does when it shuts down gracefully.
  await server.stop("SIGKILL");
  const err = await within(
    assertRejects(
      () => storage.get(makeQuery({ username: "alice" })),
      EtcdStorageError,
    ),
    "the storage call",
    20_000,
  );
  assert(err.message.includes("etcd"), err.message);
  await within(
    assertRejects(
      () =>
        storage.add({ kite: kite("during"), url: "http://x/kite", keyId: "k" }),
      EtcdStorageError,
    ),
    "the storage call",
    20_000,
  );

  await server.start();
  await eventually(
    async () => {
      try {
        await storage.get(makeQuery({ username: "alice" }));
        return true;
      } catch {
        return false;
      }
    },
    "storage works again",
    20_000,
  );
  const kites = await storage.get(makeQuery({ username: "alice" }));
  assertEquals(kites.map((k) => k.kite), [before]);
  assertEquals((await storage.getKeyFromId("key-1"))?.public, "PUB");

  const after = kite("after");
  await storage.add({ kite: after, url: "http://after/kite", keyId: "k" });
  await eventually(
    () => events.some((e) => e.action === "REGISTER" && e.kite.id === after.id),
    "the watch resumes",
    20_000,
  );
}
