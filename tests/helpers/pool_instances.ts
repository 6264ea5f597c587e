/**
 * Math instances in their own processes, for pool tests and benchmarks.
 *
 * @module
 */
import { within } from "./wait.ts";
import { childEnv, lines } from "./processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A math instance process (examples/pool/math.ts), registered. */
export interface Instance {
  child: Deno.ChildProcess;
  id: string;
  kill(): Promise<void>;
}

/**
 * Starts `examples/pool/math.ts` with `deno run` (so a SIGKILL reaches
 * the kite), using the kite.key in `home` and Kontrol `kontrolURL`;
 * resolves once it registered.
 */
export async function spawnInstance(
  kontrolURL: string,
  home: string,
  delayMs: number,
): Promise<Instance> {
  const env = childEnv({
    KITE_HOME: home,
    KITE_KONTROL_URL: kontrolURL,
    KITE_ENVIRONMENT: "test",
    KITE_LOG_LEVEL: "ERROR",
    MATH_DELAY_MS: String(delayMs),
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}examples/pool/math.ts`],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  let id = "";
  try {
    id = await within(
      (async () => {
        for await (const line of out) {
          const m = /^ready (\S+) /.exec(line);
          if (m) return m[1];
        }
        throw new Error("the math instance exited before it was ready");
      })(),
      "a math instance to register",
      30_000,
    );
  } catch (err) {
    child.kill("SIGKILL");
    await child.status;
    throw err;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    for await (const _ of out) { /* nothing */ }
  })();
  let killed = false;
  return {
    child,
    id,
    kill: async () => {
      if (!killed) {
        killed = true;
        try {
          child.kill("SIGKILL");
        } catch { /* exited already */ }
      }
      await child.status;
      await drained;
    },
  };
}
