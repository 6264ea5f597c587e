/**
 * The reverse proxy kite as processes: Kontrol (`deno task kontrol`), the
 * proxy (`deno task proxy`) and a math kite (`deno task proxy:math`) that
 * listens on a port this test is never told and registers with the proxy
 * it finds through Kontrol. The test finds the kite through Kontrol and
 * calls it at the public URL over SockJS WebSocket, XHR polling and raw
 * WebSocket, replays the recorded Go client's frames and runs kite.js
 * through it; an unauthenticated register is refused; a hostile caller in
 * a process of its own floods and sends an oversize frame, and only loses
 * its own connections; a kite that dies is closed with a reason and then
 * answered with a 404.
 *
 * @module
 */
import { Kite } from "../mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { KiteError } from "../kite/errors.ts";
import { kitectl } from "./helpers/kitectl_cli.ts";
import { runKitejsClient } from "./helpers/kitejs.ts";
import {
  childEnv,
  ROOT,
  type Spawned,
  spawnTask,
  startOperatedKontrol,
} from "./helpers/kontrol_task.ts";
import { readRecording } from "./helpers/vectors.ts";
import { eventually, freePort } from "./helpers/wait.ts";
import { selfSigned } from "./helpers/self_signed.ts";

const ENV = "proxytest";
const PER_ADDRESS = 40;

/** Waits for `pattern` in a task's output; returns the first group. */
async function line(task: Spawned, pattern: RegExp, what: string) {
  let match: RegExpMatchArray | null = null;
  await eventually(
    () => {
      const out = task.output();
      match = (out.stdout + out.stderr).match(pattern);
      return match !== null;
    },
    `${what}:\n${task.output().stdout}${task.output().stderr}`,
    30_000,
  );
  return match![1];
}

/** Plays go-kite/02-callbacks' client frames at `wsURL`; the server's dnode messages in order. */
async function replayGoClient(wsURL: string): Promise<string[][]> {
  const rec = readRecording("go-kite/02-callbacks.jsonl").filter((r) =>
    r.type === "ws"
  );
  const sent = rec.filter((r) => r.dir === "c2s").map((r) => r.frame as string);
  const expected = rec.filter((r) => r.dir === "s2c").map((r) =>
    r.frame as string
  ).filter((f) => f.startsWith("a")).map((f) => JSON.parse(f.slice(1)));
  const got: string[][] = [];
  const ws = new WebSocket(wsURL);
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      const frame = String(e.data);
      if (frame === "o") {
        for (const f of sent) ws.send(f);
      } else if (frame.startsWith("a")) {
        got.push(JSON.parse(frame.slice(1)));
        if (got.flat().length >= expected.flat().length) resolve();
      }
    };
    ws.onclose = (e) => reject(new Error(`closed: ${e.code} ${e.reason}`));
  });
  ws.onclose = null;
  ws.close();
  assertEquals(got.flat(), expected.flat());
  return got;
}

Deno.test("proxy: a kite on an untold port is found through Kontrol and called through the reverse proxy", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "kite_proxy_" });
  // The proxy runs as Kontrol's own user (as Go deployments do): kites
  // look up `proxy` kites of that user.
  const { kontrol, admin } = await startOperatedKontrol(dir, {
    KONTROL_MACHINESECRET: "s3cret",
  });
  const tasks: Spawned[] = [];
  let caller: Kite | undefined;
  try {
    const reg = await kitectl([
      "register",
      "--kontrol",
      kontrol.url,
      "--username",
      "alice",
      "--secret",
      "s3cret",
    ], { KITE_HOME: `${dir}/alice` });
    assertEquals(reg.code, 0, reg.stderr);
    const proxyPort = freePort();
    const proxy = spawnTask([
      "--port",
      String(proxyPort),
      "--ip",
      "127.0.0.1",
      "--max-connections-per-address",
      String(PER_ADDRESS),
    ], {
      ...admin,
      KITE_ENVIRONMENT: ENV,
      KITE_METRICS: "1",
    }, "proxy");
    tasks.push(proxy);
    const proxyURL = await line(
      proxy,
      /proxy listening on (\S+);/,
      "the proxy to listen",
    );
    assertEquals(proxyURL, `http://127.0.0.1:${proxyPort}/kite`);
    // Serving, it keeps only the network (proxy/permissions.ts); every
    // step below runs against it so.
    await line(
      proxy,
      /(file reads, environment variables and system information are revoked)/,
      "the proxy to drop its startup permissions",
    );
    await line(proxy, /registered (\S+) with Kontrol/, "the proxy to register");

    const math = spawnTask([], {
      KITE_HOME: `${dir}/alice`,
      KITE_ENVIRONMENT: ENV,
    }, "proxy:math");
    tasks.push(math);
    const publicURL = await line(
      math,
      /math kite reachable at (\S+)/,
      "the math kite to register through the proxy",
    );
    assertMatch(
      publicURL,
      new RegExp(`^http://127\\.0\\.0\\.1:${proxyPort}/proxy/[0-9a-f-]{36}$`),
    );
    const kiteId = publicURL.split("/").pop()!;

    caller = new Kite("caller", "1.0.0", {
      env: false,
      kiteKey: (await Deno.readTextFile(`${dir}/alice/kite.key`)).trim(),
      config: { logLevel: "ERROR" },
    });
    const c = caller;

    await t.step(
      "Kontrol hands out the public URL; calls go through over websocket, xhr-polling and raw websocket",
      async () => {
        const [found] = await c.getKites({
          username: "alice",
          environment: ENV,
          name: "math",
        });
        found.client.close();
        assertEquals(found.url, publicURL);
        for (
          const transport of [
            "websocket",
            "xhr-polling",
            "raw-websocket",
          ] as const
        ) {
          const client = c.newClient(found.url, { transport });
          await client.dial();
          assertEquals(await client.tell("square", 9), 81, transport);
          const seen: unknown[] = [];
          assertEquals(
            await client.tell("squareCb", 3, (n: unknown) => seen.push(n)),
            9,
          );
          assertEquals(seen, [9], transport);
          client.close();
        }
      },
    );

    await t.step(
      "the recorded Go client's frames get the recorded replies",
      async () => {
        const ws = publicURL.replace(/^http/, "ws") +
          "/317/b12bf9432331bdc6082b/websocket";
        await replayGoClient(ws);
      },
    );

    await t.step(
      "kite.js calls through it over SockJS and a raw WebSocket",
      async () => {
        for (
          const [transport, url] of [
            ["sockjs", publicURL],
            ["raw", publicURL.replace(/^http/, "ws")],
          ] as const
        ) {
          const [square] = await runKitejsClient({
            url,
            transport,
            calls: [{ method: "square", args: [6] }],
          });
          assertEquals(
            square.ok,
            true,
            `${transport}: ${JSON.stringify(square)}`,
          );
          assertEquals(square.result, 36, transport);
        }
      },
    );

    await t.step("register without a kite.key is refused", async () => {
      const anonymous = new Kite("anon", "1.0.0", {
        env: false,
        kiteKey: false,
        config: { logLevel: "ERROR" },
      });
      const client = anonymous.newClient(proxyURL, { auth: null });
      try {
        await client.dial();
        const err = await client.tell("register", "http://127.0.0.1:1/kite")
          .then(() => undefined, (e) => e);
        assert(err instanceof KiteError, String(err));
        assertEquals(err.type, "authenticationError");
      } finally {
        client.close();
        await anonymous.close();
      }
    });

    await t.step(
      "a kite.key holder cannot make the proxy dial another address: refused naming --kite-hosts, unless the operator allows it",
      async () => {
        // A service only the proxy's host reaches (127.0.0.2 is loopback,
        // but not the address the attacker registers from).
        const internal = Deno.listen({ hostname: "127.0.0.2", port: 0 });
        const target = `http://127.0.0.2:${internal.addr.port}/kite`;
        let accepted = 0;
        const accepting = (async () => {
          for await (const conn of internal) {
            accepted++;
            conn.close();
          }
        })();
        const attack = async (url: string) => {
          const out = await new Deno.Command("deno", {
            args: [
              "run",
              "--allow-net=127.0.0.1,127.0.0.2",
              "--allow-env",
              "--allow-read",
              `${ROOT}tests/fixtures/proxy_ssrf_attacker.ts`,
              url,
              target,
            ],
            env: childEnv({ KITE_HOME: `${dir}/alice` }),
            clearEnv: true,
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
          return [JSON.parse(text), text] as const;
        };
        const allowing = spawnTask(
          [
            "--port",
            "0",
            "--ip",
            "127.0.0.1",
            "--no-kontrol",
          ],
          { ...admin, KITE_PROXY_KITE_HOSTS: "127.0.0.2/32" },
          "proxy",
        );
        try {
          const [report, text] = await attack(proxyURL);
          assertEquals(report.register.ok, false, text);
          assertEquals(report.register.type, "authenticationError", text);
          assertMatch(
            report.register.message,
            /127\.0\.0\.2:\d+ is refused.*--kite-hosts/,
          );
          assertEquals(accepted, 0, "the proxy dialed the internal service");
          // The operator's KITE_PROXY_KITE_HOSTS lets a proxy dial it.
          const allowedURL = await line(
            allowing,
            /proxy listening on (\S+);/,
            "the allowing proxy to listen",
          );
          const [allowed, allowedText] = await attack(allowedURL);
          assertEquals(allowed.register.ok, true, allowedText);
          assert(accepted > 0, allowedText);
        } finally {
          await allowing.kill();
          internal.close();
          await accepting;
        }
        // A bad entry stops the proxy at once, naming it.
        const bad = spawnTask(["--kite-hosts", "10.0.0.0/33"], admin, "proxy");
        const status = await bad.exited(30_000);
        assertEquals(status?.code, 2);
        assertMatch(bad.output().stderr, /--kite-hosts: 10\.0\.0\.0\/33/);
      },
    );

    await t.step("metrics count what was forwarded for the kite", async () => {
      const text = await (await fetch(
        proxyURL.replace(/\/kite$/, "/kite/metrics"),
      )).text();
      const forwarded = text.match(
        new RegExp(`kite_proxy_kite_forwarded\\{kite="${kiteId}"\\} (\\d+)`),
      );
      assert(forwarded && Number(forwarded[1]) >= 5, text);
      assertMatch(
        text,
        new RegExp(
          `kite_proxy_kite_bytes\\{kite="${kiteId}",direction="to_caller"\\} [1-9]`,
        ),
      );
      assertMatch(text, /kite_proxy_registered_kites 1/);
    });

    await t.step(
      "a hostile caller loses only its own connections; the proxy serves on",
      async () => {
        const good = c.newClient(publicURL);
        await good.dial();
        // Only the good client holds a slot before the attack starts.
        await eventually(
          async () => {
            const text = await (await fetch(
              proxyURL.replace(/\/kite$/, "/kite/metrics"),
            )).text();
            return text.includes(`kite_proxy_kite_open{kite="${kiteId}"} 1\n`);
          },
          "earlier steps' connections to be released",
          10_000,
        );
        const attacker = new Deno.Command("deno", {
          args: [
            "run",
            "--allow-net=127.0.0.1",
            `${ROOT}tests/fixtures/proxy_attacker.ts`,
            publicURL.replace(/^http/, "ws"),
            String(PER_ADDRESS * 2),
            String(2 << 20),
          ],
          env: childEnv({}),
          clearEnv: true,
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = attacker.stdout.pipeThrough(new TextDecoderStream())
          .getReader();
        try {
          const { value } = await reader.read();
          const report = JSON.parse(value!);
          // Its flood met the per-address limit (the good client holds a slot)…
          assertEquals(report.opened, PER_ADDRESS - 1, value);
          assertEquals(report.refused, PER_ADDRESS + 1, value);
          // …its oversize message closed that one connection, with the limit named…
          assertEquals(report.oversize.code, 4009, value);
          assertMatch(report.oversize.reason, /limit is 1048576 bytes/);
          assertEquals(report.stillOpen, PER_ADDRESS - 2, value);
          // …and the good client, connected before, is still served.
          assertEquals(await good.tell("square", 12), 144);
        } finally {
          attacker.kill("SIGKILL");
          await attacker.status;
          await reader.cancel();
        }
        good.close();
        // Once the attacker is gone, its slots are free again.
        await eventually(
          async () => {
            const again = c.newClient(publicURL, {
              transport: "raw-websocket",
            });
            try {
              await again.dial();
              return await again.tell("square", 2) === 4;
            } catch {
              return false;
            } finally {
              again.close();
            }
          },
          "a new connection after the attack",
          10_000,
        );
      },
    );

    await t.step(
      "a kite that dies closes its callers with a reason, then its URL answers 404",
      async () => {
        const client = c.newClient(publicURL, { transport: "raw-websocket" });
        await client.dial();
        const closed = new Promise<{ code: number; reason: string }>((r) =>
          client.onDisconnect((info) => r(info))
        );
        await math.kill();
        const info = await closed;
        assert(
          info.reason.includes(`kite ${kiteId} is gone`) ||
            info.reason.includes(`kite ${kiteId} left the proxy`),
          JSON.stringify(info),
        );
        await eventually(
          async () => {
            const res = await fetch(publicURL + "/info");
            const text = await res.text();
            return res.status === 404 &&
              text.includes(`no kite ${kiteId} is registered`);
          },
          "the proxy to forget the dead kite",
          10_000,
        );
      },
    );
  } finally {
    await caller?.close();
    for (const task of tasks) await task.kill();
    await kontrol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy: with KITE_TLS_CERT/KITE_TLS_KEY the proxy terminates TLS and hands out https URLs; kites serving TLS are reached over TLS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite_proxy_tls_" });
  try {
    const { cert, key } = await selfSigned(dir);
    const out = await new Deno.Command("deno", {
      args: ["run", "--allow-all", `${ROOT}tests/fixtures/proxy_tls_probe.ts`],
      cwd: ROOT,
      env: childEnv({
        KITE_TLS_CERT: cert,
        KITE_TLS_KEY: key,
        DENO_CERT: cert,
      }),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assertMatch(r.proxyURL, /^https:\/\/127\.0\.0\.1:\d+\/kite$/);
    assertMatch(
      r.publicURL,
      /^https:\/\/127\.0\.0\.1:\d+\/proxy\/[0-9a-f-]{36}$/,
    );
    assertEquals(
      [r.websocket, r["xhr-polling"], r["raw-websocket"]],
      [25, 25, 25],
      stderr,
    );
    // A kite that serves TLS itself, behind the TLS proxy.
    assertMatch(r.secureKiteURL, /^https:\/\//);
    assertEquals(
      [r["tls:websocket"], r["tls:xhr-polling"], r["tls:raw-websocket"]],
      [25, 25, 25],
      stderr,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
