/**
 * `examples/secret/server.ts` as a real process: its kite.key comes from a
 * temp `KITE_HOME` (signed by a test Kontrol), its port from `KITE_PORT=0`.
 * It registers with that Kontrol; a caller finds it with getKites and calls
 * `secret` with the Kontrol token it got.
 */
import { KiteError } from "../mod.ts";
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { settle, within } from "./helpers/kite_harness.ts";
import { kontrolKite, startTestKontrol } from "./helpers/kontrol_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** A child Deno process needs more than the in-process guard to start. */
const START_MS = 30_000;

/** The child's environment: only PATH, the module cache and `extra`. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

Deno.test("the secret example, started with KITE_HOME and KITE_PORT, answers a Kontrol token with hello <user>", async () => {
  const tk = await startTestKontrol();
  const home = await Deno.makeTempDir({ prefix: "secret_example_" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-sys",
      "--allow-read",
      "examples/secret/server.ts",
    ],
    cwd: ROOT,
    clearEnv: true,
    env: childEnv({
      KITE_HOME: home,
      KITE_PORT: "0",
      KITE_IP: "127.0.0.1",
      KITE_ENVIRONMENT: "test",
      KITE_LOG_LEVEL: "WARNING",
    }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  let stdout = "";
  let stderr = "";
  let wake = () => {};
  const drain = (stream: ReadableStream<Uint8Array>, out: "o" | "e") =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write: (chunk) => {
          if (out === "o") stdout += chunk;
          else stderr += chunk;
          wake();
        },
      }),
    );
  await writeKiteKey(await tk.kiteKey("alice"), home);
  const process = child.spawn();
  const drained = Promise.all([
    drain(process.stdout, "o"),
    drain(process.stderr, "e"),
  ]);
  const caller = await kontrolKite(tk, "caller", "bob");
  try {
    const printed = (re: RegExp) =>
      within(
        (async () => {
          for (let m = re.exec(stdout); !m; m = re.exec(stdout)) {
            await new Promise<void>((r) => wake = r);
          }
          return re.exec(stdout)!;
        })(),
        `${re} on the example's stdout (stderr: ${stderr})`,
        START_MS,
      );
    const [, url] = await printed(/secret kite on (http:\/\/\S+\/kite),/);
    const [, id] = await printed(/registered with Kontrol as (\S+)/);
    assert(!url.endsWith(":3637/kite"), "KITE_PORT=0 must pick a free port");

    const found = await caller.getKites({
      username: "alice",
      environment: "test",
      name: "secret",
    });
    assertEquals(found.map((k) => [k.kite.id, k.url]), [[id, url]]);
    const client = found[0].client;
    await client.dial();
    assertEquals(await client.tell("secret"), "hello bob");

    // The trust came from the kite.key in KITE_HOME: bob's kite.key from the
    // same Kontrol works, no credentials do not.
    client.auth = { type: "kiteKey", key: await tk.kiteKey("bob") };
    assertEquals(await client.tell("secret"), "hello bob");
    client.auth = null;
    const r = await settle(client.tell("secret"));
    assert(!r.ok && r.error instanceof KiteError, "a call without auth passed");
    assertEquals(
      [r.error.type, r.error.message],
      ["authenticationError", "No authentication information is provided"],
    );
  } finally {
    await caller.close();
    try {
      process.kill("SIGTERM");
    } catch {
      // already gone
    }
    await process.status;
    await drained;
    await tk.close();
    await Deno.remove(home, { recursive: true });
  }
});
