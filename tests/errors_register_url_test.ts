/**
 * The URL a kite registers: reachable from other hosts when it listens on
 * every address, logged at INFO, and 127.0.0.1 with a WARNING saying why
 * when the machine's addresses cannot be listed. Nothing here binds or
 * dials anything but 127.0.0.1.
 */
import { reachableHost } from "../kite/listen.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";
import { type MemoryLogger, testKite } from "./helpers/kite_harness.ts";
import { kontrolKite, startTestKontrol } from "./helpers/kontrol_harness.ts";

const PROBE = "tests/fixtures/register_url_probe.ts";

Deno.test("a kite configured for 0.0.0.0 registers this machine's address, not 127.0.0.1", () => {
  const kite = testKite("wide", { ip: "0.0.0.0" });
  const { host } = reachableHost();
  assertEquals(kite.registerURL, `http://${host}:0/kite`);
  assertEquals(kite.url, "http://127.0.0.1:0/kite", "local use stays local");
});

Deno.test("register() logs at INFO which URL it registered with which Kontrol", async () => {
  const tk = await startTestKontrol();
  const kite = await kontrolKite(tk, "math", "alice");
  try {
    await kite.serve();
    await kite.register();
    const logger = kite.logger as MemoryLogger;
    assertEquals(
      logger.lines.filter((l) => l.startsWith("INFO registered")),
      [`INFO registered ${kite.url} with Kontrol ${tk.url}`],
    );
  } finally {
    await kite.close();
    await tk.close();
  }
});

Deno.test("without --allow-sys a kite on 0.0.0.0 registers 127.0.0.1 and warns which flag is missing", async () => {
  const run = await runDeno(["run", "--allow-env", PROBE]);
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.stdout.trim(), "http://127.0.0.1:0/kite");
  assert(
    run.stderr.includes(
      "registering 127.0.0.1, which other hosts cannot reach: no permission to list network interfaces (run with --allow-sys=networkInterfaces)",
    ),
    run.stderr,
  );
  const allowed = await runDeno([
    "run",
    "--allow-env",
    "--allow-sys=networkInterfaces,hostname",
    PROBE,
  ]);
  assertEquals(allowed.code, 0, allowed.stderr);
  assertEquals(
    allowed.stdout.trim(),
    `http://${reachableHost().host}:0/kite`,
  );
});
