/**
 * `deno task kontrol` as a real process: `--help`, `--initial`, a normal
 * run on Deno KV, PKCS#1 and PKCS#8 key files, and the narrow permissions
 * the launcher gives `kontrol/main.ts` (never `-A`).
 */
import { trimPem } from "../kite/auth/keys.ts";
import { keyIdFor } from "../kontrol/keys.ts";
import {
  KONTROL_V8_FLAGS,
  kontrolEnv,
  permissionFlags,
} from "../kontrol/launch.ts";
import { readSettings } from "../kontrol/settings.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { testKite } from "./helpers/kite_harness.ts";
import {
  freePort,
  jwtParts,
  KONTROL_PUBLIC,
  verifiesWith,
} from "./helpers/kontrol_harness.ts";
import {
  FIXTURES,
  type RunningKontrol,
  runTask,
  startTask,
} from "./helpers/kontrol_task.ts";

Deno.test("deno task kontrol --help lists the flags and their variables", async () => {
  const { code, stdout } = await runTask(["--help"], {});
  assertEquals(code, 0);
  for (
    const flag of [
      "ip",
      "port",
      "kontrolurl",
      "username",
      "data",
      "storage",
      "publickeyfile",
      "privatekeyfile",
      "machines",
      "initial",
      "postgres-host",
    ]
  ) {
    assert(stdout.includes(`--${flag} `), `--${flag} in:\n${stdout}`);
    const env = `KONTROL_${flag.toUpperCase().replace("-", "_")} `;
    assert(stdout.includes(env), `${env} in:\n${stdout}`);
  }
  assert(stdout.includes("--help"));
  const bad = await runTask(["--no-such-flag"], {});
  assertEquals(bad.code, 2);
  assert(bad.stderr.includes("unknown flag --no-such-flag"), bad.stderr);
});

Deno.test("deno task kontrol --initial --username bob writes a Go-shaped kite.key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_initial_" });
  try {
    const { code, stdout, stderr } = await runTask(
      ["--initial", "--username", "bob"],
      { KITE_HOME: `${dir}/home`, KONTROL_DATA: `${dir}/data` },
    );
    assertEquals(code, 0, stderr);
    assert(stdout.includes("bob"), stdout);
    const key = (await Deno.readTextFile(`${dir}/home/kite.key`)).trim();
    const { header, claims } = jwtParts(key);
    assertEquals(header, '{"alg":"RS256","typ":"JWT"}');
    assertEquals(Object.keys(claims), [
      "jti",
      "iat",
      "iss",
      "sub",
      "kontrolKey",
      "kontrolURL",
    ]);
    // As Go's `kontrol -initial -username testuser` (recorded): iss = sub.
    assertEquals(claims.sub, "bob");
    assertEquals(claims.iss, "bob");
    assertEquals(claims.kontrolURL, "http://127.0.0.1:4000/kite");
    // The key pair was generated into the data directory and signed the key.
    const generated = trimPem(
      await Deno.readTextFile(`${dir}/data/keys/public.pem`),
    );
    assertEquals(claims.kontrolKey, generated);
    assert(await verifiesWith(key, generated), "kite.key signature");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const variant of ["pkcs8", "pkcs1"]) {
  Deno.test(`deno task kontrol serves with KONTROL_PRIVATEKEYFILE in ${variant}, without -A`, async () => {
    const dir = await Deno.makeTempDir({ prefix: `kontrol_${variant}_` });
    const port = freePort();
    const env = {
      KITE_HOME: `${dir}/home`,
      KONTROL_DATA: `${dir}/data`,
      KONTROL_IP: "127.0.0.1",
      KONTROL_PORT: String(port),
      KONTROL_PUBLICKEYFILE: `${FIXTURES}kontrol_public.pem`,
      KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_${variant}.pem`,
    };
    let running: RunningKontrol | undefined;
    try {
      const initial = await runTask(["--initial", "--username", "alice"], env);
      assertEquals(initial.code, 0, initial.stderr);
      const kiteKey = (await Deno.readTextFile(`${dir}/home/kite.key`)).trim();
      const url = `http://127.0.0.1:${port}/kite`;
      assertEquals(jwtParts(kiteKey).claims.kontrolKey, KONTROL_PUBLIC);
      assertEquals(jwtParts(kiteKey).claims.kontrolURL, url);
      assert(await verifiesWith(kiteKey, KONTROL_PUBLIC));

      running = await startTask(env);
      assertEquals(running.url, url);
      const res = await fetch(url);
      assertEquals([res.status, await res.text()], [
        200,
        "Welcome to SockJS!\n",
      ]);

      // main.ts runs with scoped permissions only.
      const flags = running.mainArgv.filter((a) => a.startsWith("-"));
      assert(
        !flags.some((f) => f === "-A" || f.startsWith("--allow-all")),
        flags.join(" "),
      );
      assertEquals(
        flags.filter((f) => f.startsWith("--allow-net")),
        [`--allow-net=127.0.0.1:${port}`],
      );
      for (const kind of ["read", "write", "env"]) {
        const given = flags.filter((f) => f.startsWith(`--allow-${kind}`));
        assertEquals(given.length, 1, kind);
        assert(given[0].includes("="), `--allow-${kind} is scoped`);
      }
      assert(!flags.some((f) => f.startsWith("--allow-run")), flags.join(" "));
      assert(!flags.some((f) => f.startsWith("--allow-ffi")), flags.join(" "));
      // ... and with V8's young generation capped (memory per kite), and
      // one malloc arena.
      assert(
        flags.includes(`--v8-flags=${KONTROL_V8_FLAGS}`),
        flags.join(" "),
      );
      assertEquals(running.mainEnv().MALLOC_ARENA_MAX, "1");

      // A kite holding the kite.key uses the process Kontrol end to end.
      const user = testKite("math", { environment: "test" }, { kiteKey });
      try {
        assertEquals(await user.kontrol.getKey(), KONTROL_PUBLIC);
        await user.serve();
        await user.register();
        const [found] = await user.getKites({ username: "alice" });
        assertEquals(found.url, user.url);
        assertEquals(found.keyId, await keyIdFor(KONTROL_PUBLIC));
        assert(await verifiesWith(found.token, KONTROL_PUBLIC));
      } finally {
        await user.close();
      }

      const code = await running.stop();
      running = undefined;
      assertEquals(code, 0);
    } finally {
      if (running) await running.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("permissionFlags: scoped net/read/write/env, never --allow-all", () => {
  const settings = readSettings([], (name) =>
    ({
      KONTROL_IP: "127.0.0.1",
      KONTROL_PORT: "4555",
      KONTROL_DATA: "/tmp/kontrol-data",
      KONTROL_PUBLICKEYFILE: "/keys/pub.pem",
      KONTROL_PRIVATEKEYFILE: "/keys/priv.pem",
      KITE_HOME: "/home/k/.kite",
    })[name]);
  assertEquals(permissionFlags(settings), [
    "--allow-net=127.0.0.1:4555",
    "--allow-read=/tmp/kontrol-data,/keys/pub.pem,/keys/priv.pem,/home/k/.kite/kite.key",
    "--allow-write=/tmp/kontrol-data",
    "--allow-env=KITE_*,KONTROL_*,HOME",
    "--allow-sys=hostname,systemMemoryInfo",
  ]);
  const initial = readSettings(
    ["--initial", "--username", "bob"],
    (name) => ({ KITE_HOME: "/home/bob/.kite", KONTROL_DATA: "/d" })[name],
  );
  const flags = permissionFlags(initial);
  assertEquals(flags[0], "--allow-net=0.0.0.0:4000");
  assertEquals(flags[1], "--allow-read=/d,/home/bob/.kite");
  assertEquals(flags[2], "--allow-write=/d,/home/bob/.kite");
});

Deno.test("deno task kontrol takes its kite's per-address connection cap from KONTROL_MAXCONNECTIONSPERADDRESS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_caps_" });
  const port = freePort();
  let running: RunningKontrol | undefined;
  const sockets: WebSocket[] = [];
  // Resolves "open", or "refused" when the handshake is answered otherwise.
  const dial = () =>
    new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/kite/websocket`);
      sockets.push(ws);
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("refused");
    });
  try {
    running = await startTask({
      KITE_HOME: `${dir}/home`,
      KONTROL_DATA: `${dir}/data`,
      KONTROL_STORAGE: "memory",
      KONTROL_IP: "127.0.0.1",
      KONTROL_PORT: String(port),
      KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
      KONTROL_USERNAME: "kontrol",
      KONTROL_MAXCONNECTIONSPERADDRESS: "2",
    });
    assertEquals([await dial(), await dial(), await dial()], [
      "open",
      "open",
      "refused",
    ]);
  } finally {
    for (const ws of sockets) ws.close();
    if (running) await running.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kontrolEnv() gives Kontrol one malloc arena unless the operator chose a number", () => {
  assertEquals(kontrolEnv(() => undefined), { MALLOC_ARENA_MAX: "1" });
  assertEquals(
    kontrolEnv((name) => name === "MALLOC_ARENA_MAX" ? "4" : undefined),
    {},
  );
});
