/**
 * A tunnel proxy (`proxy/tunnel/main.ts`) and tunnel math kites
 * (`examples/tunnel/math.ts`) in processes of their own, for the tunnel
 * tests and the tunnel benchmark.
 *
 * @module
 */
import { spawnDeno } from "./processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A child process started by these helpers. */
export interface Child {
  /** What its `ready` line said (groups). */
  ready: RegExpExecArray;
  /** The process id. */
  pid: number;
  /** SIGKILLs it (once) and waits for it to exit. */
  kill(): Promise<void>;
}

async function spawn(
  script: string,
  env: Record<string, string>,
  ready: RegExp,
  what: string,
): Promise<Child> {
  const { child, ready: m, drained } = await spawnDeno(
    ["run", "--allow-all", `${ROOT}${script}`],
    env,
    { cwd: ROOT, ready, what },
  );
  let killed = false;
  return {
    ready: m,
    pid: child.pid,
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

/**
 * Starts a tunnel proxy on 127.0.0.1:`port` with the kite.key in `home`
 * (registering with its Kontrol), metrics on. `ready[1]` is its kite URL.
 */
export function spawnTunnelProxy(
  home: string,
  port: number,
  extra: Record<string, string> = {},
): Promise<Child> {
  return spawn(
    "proxy/tunnel/main.ts",
    {
      KITE_HOME: home,
      KITE_IP: "127.0.0.1",
      KITE_PORT: String(port),
      KITE_ENVIRONMENT: "test",
      KITE_LOG_LEVEL: Deno.env.get("TUNNEL_TEST_LOG") ?? "ERROR",
      KITE_METRICS: "1",
      ...extra,
    },
    /^ready (\S+) public (\S+)/,
    "a tunnel proxy",
  );
}

/**
 * Starts a tunnel math kite (never listening) with the kite.key in `home`;
 * `ready[1]` is its id, `ready[2]` its public URL.
 */
export function spawnTunnelKite(
  home: string,
  extra: Record<string, string> = {},
): Promise<Child> {
  return spawn(
    "examples/tunnel/math.ts",
    {
      KITE_HOME: home,
      KITE_ENVIRONMENT: "test",
      KITE_LOG_LEVEL: Deno.env.get("TUNNEL_TEST_LOG") ?? "ERROR",
      ...extra,
    },
    /^ready (\S+) (\S+)/,
    "a tunnel math kite",
  );
}
