/**
 * `deno task demo`: the main job on a fresh machine. Starts Kontrol (Deno
 * KV in a temporary data dir), writes a kite.key for user `demo` into a
 * temporary KITE_HOME, starts the watch example, the math kite (which
 * registers), finds and calls it from the query example, then stops the
 * math kite so the watcher sees it go.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "kite-demo-" });
const port = Number(Deno.env.get("KONTROL_PORT") ?? 4000);
const env = {
  KITE_HOME: `${tmp}/kite-home`,
  KONTROL_DATA: `${tmp}/kontrol`,
  KONTROL_PORT: String(port),
  KITE_ENVIRONMENT: "demo",
  KITE_LOG_LEVEL: "WARNING",
};
const children: Deno.ChildProcess[] = [];

function task(name: string, ...args: string[]): Deno.ChildProcess {
  const child = new Deno.Command("deno", {
    args: ["task", "--quiet", name, ...args],
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.push(child);
  for (
    const [stream, label] of [[child.stdout, name], [
      child.stderr,
      `${name}!`,
    ]] as const
  ) {
    void stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          for (const line of chunk.split("\n")) {
            if (line) console.log(`[${label}] ${line}`);
          }
        },
      }),
    );
  }
  return child;
}

const up = () =>
  fetch(`http://127.0.0.1:${port}/kite`).then(async (
    r,
  ) => (await r.text(), r.ok));
/** Fails at once, naming the port, when something already listens on it. */
function checkPortFree(): void {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    throw new Error(
      `port ${port} is already in use (another Kontrol, or a demo still running?): ` +
        `stop that process, or run the demo on another port: KONTROL_PORT=${
          port + 1
        } deno task demo`,
    );
  }
}

/** Waits for Kontrol to answer, failing at once if its process ends first. */
async function kontrolUp(kontrol: Deno.ChildProcess): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  kontrol.status.then((status) => exited = status);
  const end = Date.now() + 15_000;
  while (!exited && Date.now() < end) {
    if (await up().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let its last lines (the reason) reach the console before ours.
  await new Promise((r) => setTimeout(r, 200));
  throw new Error(
    exited
      ? `Kontrol exited with code ${exited.code} before serving on port ${port} (its error is above)`
      : `Kontrol did not answer on port ${port} within 15 s`,
  );
}

let code = 0;
try {
  checkPortFree();
  const initial = await new Deno.Command("deno", {
    args: ["task", "--quiet", "kontrol", "--initial", "--username", "demo"],
    cwd: root,
    env,
  }).output();
  console.log(new TextDecoder().decode(initial.stdout).trim());
  if (!initial.success) {
    throw new Error(new TextDecoder().decode(initial.stderr));
  }
  await kontrolUp(task("kontrol"));
  task("example:watch");
  await new Promise((r) => setTimeout(r, 1500));
  const math = task("math:register");
  await new Promise((r) => setTimeout(r, 1500));
  const query = await new Deno.Command("deno", {
    args: ["task", "--quiet", "example:query"],
    cwd: root,
    env,
  })
    .output();
  console.log(
    `[example:query] ${new TextDecoder().decode(query.stdout).trim()}`,
  );
  if (!query.success) throw new Error(new TextDecoder().decode(query.stderr));
  math.kill("SIGTERM");
  await math.status;
  await new Promise((r) => setTimeout(r, 1500));
  console.log("demo done: Kontrol registered, found and watched the math kite");
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  code = 1;
} finally {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.status;
  }
  await Deno.remove(tmp, { recursive: true });
}
Deno.exit(code);
