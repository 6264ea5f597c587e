/**
 * TLS for kites and Kontrol: with `KITE_TLS_CERT`/`KITE_TLS_KEY` (a
 * self-signed certificate made by openssl here) Kontrol and a kite serve
 * HTTPS/WSS, register `https:` URLs, and are called over them by a client
 * that trusts the certificate (`DENO_CERT`) — and refused by one that does
 * not.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { kitectl } from "./helpers/kitectl_cli.ts";
import { FIXTURES, spawnTask, startTask } from "./helpers/kontrol_task.ts";
import { eventually, freePort } from "./helpers/wait.ts";
import { selfSigned } from "./helpers/self_signed.ts";

Deno.test("tls: Kontrol and a kite serve https/wss with KITE_TLS_CERT and register https URLs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite_tls_" });
  const { cert, key } = await selfSigned(dir);
  const tls = { KITE_TLS_CERT: cert, KITE_TLS_KEY: key };
  const trust = { DENO_CERT: cert };
  const alice = { KITE_HOME: `${dir}/alice` };
  const kontrol = await startTask({
    ...tls,
    KONTROL_STORAGE: "memory",
    KONTROL_PORT: String(freePort()),
    KONTROL_IP: "127.0.0.1",
    KONTROL_DATA: `${dir}/data`,
    KONTROL_USERNAME: "kontrol",
    KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
    KONTROL_MACHINESECRET: "s3cret",
  });
  let math: ReturnType<typeof spawnTask> | undefined;
  try {
    assertMatch(kontrol.url, /^https:\/\/127\.0\.0\.1:\d+\/kite$/);
    const reg = await kitectl(
      [
        "register",
        "--kontrol",
        kontrol.url,
        "--username",
        "alice",
        "--secret",
        "s3cret",
      ],
      { ...alice, ...trust },
    );
    assertEquals(reg.code, 0, reg.stderr);
    math = spawnTask([], {
      ...alice,
      ...tls,
      ...trust,
      KITE_ENVIRONMENT: "tls",
    }, "math:register");
    await eventually(
      () => /registered at https:/.test(math!.output().stdout),
      "the math kite to register over TLS",
      30_000,
    );
    const found = await kitectl(
      ["query", "/alice/tls/math", "--json"],
      { ...alice, ...trust },
    );
    assertEquals(found.code, 0, found.stderr);
    const [kite] = JSON.parse(found.stdout) as { url: string }[];
    assertMatch(kite.url, /^https:\/\/127\.0\.0\.1:\d+\/kite$/);
    const square = await kitectl(["tell", kite.url, "square", "5"], {
      ...alice,
      ...trust,
    });
    assertEquals(square.code, 0, square.stderr);
    assertEquals(JSON.parse(square.stdout), 25);
    // A client that does not trust the certificate gets nowhere.
    const untrusted = await kitectl(
      ["ping", kite.url, "--timeout", "5000"],
      alice,
    );
    assertEquals(untrusted.code, 1, untrusted.stdout);
    assert(/cannot connect to https:/.test(untrusted.stderr), untrusted.stderr);
  } finally {
    await math?.kill();
    await kontrol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
