/**
 * `deno task example:pool`: Kontrol, three math instances and a caller
 * that uses a pool; a few seconds in one instance is killed (SIGKILL)
 * and the caller carries on without a failed call. Everything lives in a
 * temporary directory and stops at the end.
 *
 * @module
 */
const root = new URL("../../", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "kite-pool-example-" });
const port = Number(Deno.env.get("KONTROL_PORT") ?? 4100);
const env = {
  KITE_HOME: `${tmp}/home`,
  KONTROL_DATA: `${tmp}/kontrol`,
  KONTROL_PORT: String(port),
  KITE_ENVIRONMENT: "pool-example",
  KITE_LOG_LEVEL: "ERROR",
};
const started: Deno.ChildProcess[] = [];

/**
 * Runs `deno <args>`, its output lines prefixed with `label`. Kites run
 * with `deno run`, not `deno task`: a SIGKILL must reach the kite itself.
 */
function run(label: string, ...args: string[]): Deno.ChildProcess {
  const child = new Deno.Command("deno", {
    args,
    cwd: root,
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  started.push(child);
  void child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write: (text) => {
        for (const line of text.split("\n")) {
          if (line) console.log(`[${label}] ${line}`);
        }
      },
    }),
  );
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let code = 1;
try {
  const initial = await new Deno.Command("deno", {
    args: ["task", "--quiet", "kontrol", "--initial", "--username", "demo"],
    cwd: root,
    env,
  }).output();
  if (!initial.success) {
    throw new Error(new TextDecoder().decode(initial.stderr));
  }
  run("kontrol", "task", "--quiet", "kontrol");
  for (let i = 0; i < 150; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/kite`)
      .then(async (r) => (await r.body?.cancel(), r.ok), () => false);
    if (up) break;
    await sleep(100);
  }
  const perms = ["--allow-net", "--allow-env", "--allow-sys", "--allow-read"];
  const math = [1, 2, 3].map((i) =>
    run(`math${i}`, "run", ...perms, "examples/pool/math.ts")
  );
  await sleep(2_000);
  const caller = run(
    "caller",
    "run",
    ...perms,
    "examples/pool/caller.ts",
    "7",
  );
  await sleep(4_500);
  console.log("[example] killing math2 (SIGKILL)");
  math[1].kill("SIGKILL");
  code = (await caller.status).code;
  console.log(
    code === 0
      ? "[example] the caller carried on: no call failed"
      : "[example] some calls failed",
  );
} finally {
  for (const child of started) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  }
  await Deno.remove(tmp, { recursive: true });
}
Deno.exit(code);
