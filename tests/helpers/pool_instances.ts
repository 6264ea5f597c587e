/**
 * Math instances in their own processes, for pool tests and benchmarks.
 *
 * @module
 */
import { spawnDeno } from "./processes.ts";

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
  const { child, ready, drained } = await spawnDeno(
    ["run", "--allow-all", `${ROOT}examples/pool/math.ts`],
    {
      KITE_HOME: home,
      KITE_KONTROL_URL: kontrolURL,
      KITE_ENVIRONMENT: "test",
      KITE_LOG_LEVEL: "ERROR",
      MATH_DELAY_MS: String(delayMs),
    },
    { cwd: ROOT, ready: /^ready (\S+) /, what: "a math instance" },
  );
  const id = ready[1];
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
