/**
 * Kontrol away or refusing the kite.key: calls fail within `timeoutMs`
 * naming the URL, retry loops say at WARNING (rate-limited) what they wait
 * for, and a kite.key from another Kontrol is explained, not retried.
 */
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { ManualClock } from "../kite/clock.ts";
import { KiteError } from "../kite/errors.ts";
import { makeQuery } from "../kite/protocol.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";
import {
  MemoryLogger,
  settle,
  testKite,
  within,
} from "./helpers/kite_harness.ts";
import { KONTROL_PUBLIC, startTestKontrol } from "./helpers/kontrol_harness.ts";
import { eventually, freePort } from "./helpers/wait.ts";

/** A kite.key for `alice`, signed by the fixture Kontrol pair, naming `url`. */
function aliceKey(url: string, foreign = false): Promise<string> {
  return signKiteKey({
    username: "alice",
    kontrolUser: "kontrol",
    kontrolURL: url,
    publicKeyPem: foreign ? fixtureKey("foreign_public.pem") : KONTROL_PUBLIC,
    privateKeyPem: fixtureKey(
      foreign ? "foreign_pkcs8.pem" : "kontrol_pkcs8.pem",
    ),
  });
}

Deno.test("getKites() with Kontrol unreachable fails with a timeout naming the URL and KITE_TIMEOUT", async () => {
  const url = `http://127.0.0.1:${freePort()}/kite`;
  const kite = testKite("caller", { kontrolURL: url, timeoutMs: 300 }, {
    kiteKey: await aliceKey(url),
  });
  try {
    const err = await within(
      assertRejects(() => kite.getKites({ username: "alice" }), KiteError),
      "getKites to fail",
    ) as KiteError;
    assertEquals(err.type, "timeout");
    assert(
      err.message.startsWith(`cannot reach Kontrol at ${url} within 300 ms (`),
      err.message,
    );
    assert(err.message.includes("KITE_TIMEOUT"), err.message);
  } finally {
    await kite.close();
  }
});

Deno.test("a program whose Kontrol is unreachable exits with the URL, bounded by KITE_TIMEOUT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite_unreachable_" });
  try {
    const url = `http://127.0.0.1:${freePort()}/kite`;
    await writeKiteKey(await aliceKey(url), dir);
    const run = await runDeno([
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "examples/query/main.ts",
    ], { KITE_HOME: dir, KITE_TIMEOUT: "1s" });
    assert(run.code !== 0, run.stdout);
    assert(
      run.stderr.includes(`cannot reach Kontrol at ${url} within 1 s`),
      run.stderr,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registerForever() with Kontrol away warns once per 30 s what it waits for, and keeps trying", async () => {
  const url = `http://127.0.0.1:${freePort()}/kite`;
  const logger = new MemoryLogger();
  const kite = testKite("worker", { kontrolURL: url, timeoutMs: 100 }, {
    kiteKey: await aliceKey(url),
    logger,
  });
  await kite.serve();
  const registering = settle(kite.registerForever());
  try {
    const dials = () =>
      logger.lines.filter((l) => l.startsWith(`DEBUG dial Kontrol ${url}`));
    await eventually(
      () => dials().length >= 4,
      "several dial attempts",
      20_000,
    );
    const warnings = logger.lines.filter((l) => l.startsWith("WARNING"));
    assertEquals(warnings.length, 1, logger.lines.join("\n"));
    assert(
      warnings[0].startsWith(
        `WARNING registering ${kite.url}: waiting for Kontrol (cannot reach Kontrol at ${url}`,
      ),
      warnings[0],
    );
  } finally {
    await kite.close();
  }
  const outcome = await within(registering, "registerForever to end on close");
  assert(!outcome.ok, "closing the kite ends registerForever");
});

Deno.test("a kite.key from another Kontrol: registerForever fails at once and says what it means", async () => {
  const tk = await startTestKontrol();
  const logger = new MemoryLogger();
  const kite = testKite("stranger", { kontrolURL: tk.url }, {
    kiteKey: await aliceKey(tk.url, true),
    logger,
  });
  try {
    await kite.serve();
    const err = await within(
      assertRejects(() => kite.registerForever(), KiteError),
      "registerForever to give up",
    ) as KiteError;
    assertEquals(err.type, "authenticationError");
    for (
      const part of [
        "kiteKey: not found",
        `Kontrol at ${tk.url} refused this kite's kite.key`,
        "signed by a key pair this Kontrol does not know",
        "deno task kontrol --initial --username <name>",
        "KITE_KONTROL_URL",
      ]
    ) {
      assert(err.message.includes(part), `${part} in: ${err.message}`);
    }
    // Other calls explain it the same way.
    const found = await assertRejects(
      () => kite.getKites({ username: "alice" }),
      KiteError,
    );
    assert(found.message.includes("does not know"), found.message);
  } finally {
    await kite.close();
    await tk.close();
  }
});

Deno.test("registerHTTP with Kontrol away warns once per 30 s naming /heartbeat, then registers again when it is back", async () => {
  const port = freePort();
  const kiteClock = new ManualClock(Date.now());
  let tk = await startTestKontrol({ port });
  const logger = new MemoryLogger();
  const kite = testKite("math", { kontrolURL: tk.url, environment: "test" }, {
    kiteKey: await tk.kiteKey("alice"),
    clock: kiteClock,
    logger,
  });
  // The kite's clock has no other timer: one pending timer means "armed".
  const beat = async () => {
    await eventually(() => kiteClock.pending === 1, "the next heartbeat");
    await kiteClock.advance(10_000);
  };
  const warnings = () => logger.lines.filter((l) => l.startsWith("WARNING"));
  try {
    await kite.serve();
    await kite.registerHTTP();
    await tk.close();

    await beat();
    await eventually(() => warnings().length === 1, "a warning");
    assert(
      warnings()[0].startsWith(
        `WARNING heartbeat to http://127.0.0.1:${port}/heartbeat failed (`,
      ),
      warnings()[0],
    );
    await beat();
    await eventually(() => kiteClock.pending === 1, "the next heartbeat");
    assertEquals(warnings().length, 1, "rate-limited");

    // A new Kontrol on the same port does not know the kite: it answers
    // registeragain, and the kite registers with it.
    tk = await startTestKontrol({ port });
    await beat();
    const back = tk;
    await eventually(
      async () =>
        (await back.storage.get(makeQuery({ username: "alice" }))).length ===
          1,
      "the kite to register again",
    );
  } finally {
    await kite.close();
    await tk.close();
  }
});

Deno.test("registerHTTP() names the /register URL when Kontrol is away, and explains a foreign kite.key", async () => {
  const url = `http://127.0.0.1:${freePort()}/kite`;
  const away = testKite("math", { kontrolURL: url, timeoutMs: 500 }, {
    kiteKey: await aliceKey(url),
  });
  const tk = await startTestKontrol();
  const stranger = testKite("math", { kontrolURL: tk.url }, {
    kiteKey: await aliceKey(tk.url, true),
  });
  try {
    await away.serve();
    const err = await assertRejects(() => away.registerHTTP(), KiteError);
    assert(
      err.message.startsWith(
        `cannot reach Kontrol at ${
          url.replace(/\/kite$/, "")
        }/register within 500 ms (`,
      ),
      err.message,
    );
    await stranger.serve();
    const refused = await assertRejects(
      () => stranger.registerHTTP(),
      KiteError,
    ) as KiteError;
    assertEquals(refused.type, "authenticationError");
    assert(
      refused.message.startsWith("kiteKey: not found: Kontrol at ") &&
        refused.message.includes("does not know"),
      refused.message,
    );
  } finally {
    await away.close();
    await stranger.close();
    await tk.close();
  }
});
