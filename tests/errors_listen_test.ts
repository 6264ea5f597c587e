/**
 * A port or data directory already taken: kites, Kontrol and the demo say
 * which port (or directory and PID) and what to set instead, as separate
 * processes where that is what a user runs.
 */
import { ListenError } from "../kite/listen.ts";
import { DATA_LOCK_FILE } from "../kontrol/data_lock.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";
import { testKite } from "./helpers/kite_harness.ts";
import { freePort } from "./helpers/wait.ts";
import { runTask, startTask } from "./helpers/kontrol_task.ts";

/** Holds a port on 127.0.0.1 while `fn` runs. */
async function holding(fn: (port: number) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await fn((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
  }
}

Deno.test("serve() on a port in use rejects with the address and KITE_PORT", () =>
  holding(async (port) => {
    const kite = testKite("busy");
    try {
      const err = await assertRejects(() => kite.serve({ port }), ListenError);
      assertEquals(
        (err as ListenError).message.startsWith(
          `cannot listen on 127.0.0.1:${port}: port ${port} is already in use`,
        ),
        true,
        (err as Error).message,
      );
      assert((err as Error).message.includes("KITE_PORT"));
      assert((err as Error).cause instanceof Deno.errors.AddrInUse);
      // The kite can still serve elsewhere.
      const { port: other } = await kite.serve({ port: 0 });
      assert(other !== port);
    } finally {
      await kite.close();
    }
  }));

Deno.test("a kite process on a port in use exits naming the port and KITE_PORT", () =>
  holding(async (port) => {
    const run = await runDeno(
      [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        "examples/math/server.ts",
      ],
      { KITE_PORT: String(port), KITE_IP: "127.0.0.1" },
    );
    assert(run.code !== 0, run.stderr);
    assert(
      run.stderr.includes(
        `cannot listen on 127.0.0.1:${port}: port ${port} is already in use`,
      ),
      run.stderr,
    );
    assert(run.stderr.includes("KITE_PORT"), run.stderr);
  }));

Deno.test("deno task kontrol on a port in use exits 1 naming the port and KONTROL_PORT", () =>
  holding(async (port) => {
    const dir = await Deno.makeTempDir({ prefix: "kontrol_busy_" });
    try {
      const run = await runTask([], {
        KONTROL_PORT: String(port),
        KONTROL_IP: "127.0.0.1",
        KONTROL_DATA: dir,
      });
      assertEquals(run.code, 1, run.stderr);
      assertEquals(
        run.stderr.trim().split("\n").filter((l) => l.startsWith("kontrol:")),
        [
          `kontrol: cannot listen on 127.0.0.1:${port}: port ${port} is already in use ` +
          "by another process (another kite or Kontrol?): stop it, or choose another " +
          "port with --port or KONTROL_PORT",
        ],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("a second Kontrol on the same KV data directory is refused, naming the directory and the first one's PID", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_lock_" });
  const env = { KONTROL_IP: "127.0.0.1", KONTROL_DATA: dir };
  const first = await startTask({ ...env, KONTROL_PORT: String(freePort()) });
  try {
    const pid = (await Deno.readTextFile(`${dir}/${DATA_LOCK_FILE}`)).trim();
    assert(/^\d+$/.test(pid), pid);
    const second = await runTask([], {
      ...env,
      KONTROL_PORT: String(freePort()),
    });
    assertEquals(second.code, 1, second.stderr);
    assert(
      second.stderr.includes(
        `kontrol: another Kontrol (PID ${pid}) is using the data directory ${dir}`,
      ),
      second.stderr,
    );
    assert(second.stderr.includes("KONTROL_DATA"), second.stderr);
    assert(!second.stdout.includes("Kontrol listening"), second.stdout);
  } finally {
    assertEquals(await first.stop(), 0);
  }
  // Once the first has stopped, the directory is free again.
  const again = await startTask({ ...env, KONTROL_PORT: String(freePort()) });
  assertEquals(await again.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task demo with its port taken says so first, not a kiteKey error", () =>
  holding(async (port) => {
    const run = await runDeno(["task", "--quiet", "demo"], {
      KONTROL_PORT: String(port),
    });
    assertEquals(run.code, 1, run.stdout + run.stderr);
    const all = run.stdout + run.stderr;
    assert(
      all.includes(`demo failed: port ${port} is already in use`),
      all,
    );
    assert(all.includes(`KONTROL_PORT=${port + 1} deno task demo`), all);
    assert(!all.includes("kiteKey"), all);
  }));
