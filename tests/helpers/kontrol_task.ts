/**
 * `deno task kontrol` as a child process for tests: run it to completion,
 * or start it, wait for its `Kontrol listening on` line and stop it by pid.
 *
 * @module
 */
import { freePort, GUARD_MS } from "./wait.ts";
import { commandLine, descendants } from "./processes.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const FIXTURES = new URL("../fixtures/keys/", import.meta.url).pathname;
/** A child Deno process needs more than the in-process guard to start. */
export const START_MS = 30_000;

/** The environment a child gets: the deno cache and PATH, plus `extra`. */
export function childEnv(
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

function task(
  args: string[],
  env: Record<string, string>,
  name: string,
): Deno.Command {
  return new Deno.Command("deno", {
    args: ["task", "--quiet", name, ...args],
    cwd: ROOT,
    env: childEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** A spawned `deno task kontrol`, its output, and a way to end it and its children. */
export interface Spawned {
  child: Deno.ChildProcess;
  /** stdout and stderr so far. */
  output(): { stdout: string; stderr: string };
  /** The exit status, or null if it did not exit within `ms`. */
  exited(ms: number): Promise<Deno.CommandStatus | null>;
  /** SIGKILL to the task and everything under it (by pid), then wait for the pipes. */
  kill(): Promise<void>;
}

/** Starts `deno task <name> …args` (`kontrol` unless told). */
export function spawnTask(
  args: string[],
  env: Record<string, string>,
  name = "kontrol",
): Spawned {
  const child = task(args, env, name).spawn();
  const out = { stdout: "", stderr: "" };
  const drain = (stream: ReadableStream<Uint8Array>, key: keyof typeof out) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (out[key] += chunk) }),
    );
  const drained = Promise.all([
    drain(child.stdout, "stdout"),
    drain(child.stderr, "stderr"),
  ]);
  const exited = async (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      child.status,
      new Promise<null>((r) => timer = setTimeout(() => r(null), ms)),
    ]);
    clearTimeout(timer);
    if (status) await drained;
    return status;
  };
  const kill = async () => {
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await child.status;
    await drained;
  };
  return { child, output: () => out, exited, kill };
}

/** Runs `deno task kontrol …` to completion (killed and failed after START_MS). */
export async function runTask(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = spawnTask(args, env);
  const status = await run.exited(START_MS);
  if (!status) {
    await run.kill();
    throw new Error(`deno task kontrol ${args.join(" ")} did not exit`);
  }
  return { code: status.code, ...run.output() };
}

function environmentOf(pid: number): Record<string, string> {
  const text = Deno.readTextFileSync(`/proc/${pid}/environ`);
  return Object.fromEntries(
    text.split("\0").filter((e) => e.includes("=")).map((e) => {
      const at = e.indexOf("=");
      return [e.slice(0, at), e.slice(at + 1)];
    }),
  );
}

/** A `deno task kontrol` process serving until {@linkcode RunningKontrol.stop}. */
export interface RunningKontrol {
  /** `http://127.0.0.1:<port>/kite` as it printed it. */
  url: string;
  /** The whole `Kontrol listening on …` line. */
  banner: string;
  /** Everything it printed so far, stdout then stderr. */
  output(): string;
  /** The command line of the `kontrol/main.ts` process. */
  mainArgv: string[];
  /** The environment of the `kontrol/main.ts` process. */
  mainEnv(): Record<string, string>;
  /** SIGTERM to main.ts (by pid); resolves with the task's exit code. */
  stop(): Promise<number>;
}

export async function startTask(
  env: Record<string, string>,
): Promise<RunningKontrol> {
  const run = spawnTask([], env);
  const text = () => run.output().stdout + run.output().stderr;
  let mainPid = 0;
  const stop = async (): Promise<number> => {
    const pids = mainPid ? [mainPid] : descendants(run.child.pid);
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    const status = await run.exited(GUARD_MS);
    if (!status) {
      await run.kill();
      throw new Error(`kontrol did not stop on SIGTERM:\n${text()}`);
    }
    return status.code;
  };
  const deadline = Date.now() + START_MS;
  let match: RegExpMatchArray | null = null;
  while (!(match = text().match(/Kontrol listening on (\S+)/))) {
    if (Date.now() > deadline) {
      await stop().catch(() => {});
      throw new Error(`kontrol did not start:\n${text()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const main = descendants(run.child.pid).find((pid) =>
    commandLine(pid).some((a) => a.endsWith("kontrol/main.ts"))
  );
  if (!main) {
    await stop().catch(() => {});
    throw new Error("no kontrol/main.ts process under deno task");
  }
  mainPid = main;
  return {
    url: match[1],
    banner: text().split("\n").find((l) => l.includes("Kontrol listening on"))!,
    output: text,
    mainArgv: commandLine(main),
    mainEnv: () => environmentOf(main),
    stop,
  };
}

/** A `deno task kontrol` on memory storage and its operator's KITE_HOME. */
export interface OperatedKontrol {
  kontrol: RunningKontrol;
  /** `KITE_HOME` holding the kite.key of Kontrol's own user `kontrol`. */
  admin: { KITE_HOME: string };
  /** The settings it runs with, to start it again with {@linkcode startTask}. */
  env: Record<string, string>;
}

/**
 * Writes the operator's kite.key under `dir` (`--initial --username
 * kontrol`, fixture key pair), then starts `deno task kontrol` on memory
 * storage on 127.0.0.1 with `env` over those settings.
 */
export async function startOperatedKontrol(
  dir: string,
  env: Record<string, string> = {},
): Promise<OperatedKontrol> {
  const kontrolEnv = {
    KONTROL_STORAGE: "memory",
    KONTROL_PORT: String(freePort()),
    KONTROL_IP: "127.0.0.1",
    KONTROL_DATA: `${dir}/data`,
    KONTROL_USERNAME: "kontrol",
    KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
    ...env,
  };
  const admin = { KITE_HOME: `${dir}/admin` };
  const initial = await runTask(["--initial", "--username", "kontrol"], {
    ...kontrolEnv,
    ...admin,
  });
  if (initial.code !== 0) {
    throw new Error(`kontrol --initial failed:\n${initial.stderr}`);
  }
  return { kontrol: await startTask(kontrolEnv), admin, env: kontrolEnv };
}
