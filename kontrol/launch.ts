/**
 * `deno task kontrol` entry: works out the narrowest permissions Kontrol
 * needs for the given settings and runs `kontrol/main.ts` with exactly
 * those — net only for its listen address and storage hosts, read/write
 * only for its data directory, key files and (with `--initial`)
 * `$KITE_HOME`, env only for `KITE_*`/`KONTROL_*`. Never `-A`.
 *
 * @module
 */
import { readEnv } from "../kite/config.ts";
import { type KontrolSettings, readSettings } from "./settings.ts";

/**
 * V8 flags for the Kontrol process. A registry holds many small long-lived
 * objects and sees bursts of registrations: left alone, V8 grows its young
 * generation to its largest size in such a burst and keeps it, which cost
 * about 8 KiB of resident memory per registered kite in `deno task bench`
 * (33 → 25.6 KiB per kite at 2,000 kites on KV) with no measurable change
 * in register/s or getKites latency at 4 MiB semi-spaces.
 */
export const KONTROL_V8_FLAGS = "--max-semi-space-size=4";

/**
 * Environment added for the Kontrol process. glibc gives threads that
 * allocate arenas of their own; V8's helper threads (garbage collection,
 * compilation) and Deno KV's thread fill theirs during a burst of
 * registrations and keep the memory. In `deno task bench`'s measure that
 * was 2–7 KiB of resident memory per registered kite, different in every
 * run: one arena held 23.3–23.6 KiB per kite where the default held
 * 25.8–30.2 (four runs each, alternating, 2,000 kites on KV), at the same
 * CPU time per registration. An operator's own `MALLOC_ARENA_MAX` stays.
 */
export function kontrolEnv(
  env: (name: string) => string | undefined,
): Record<string, string> {
  return env("MALLOC_ARENA_MAX") === undefined ? { MALLOC_ARENA_MAX: "1" } : {};
}

function hostPort(url: string, defaultPort: number): string {
  const u = new URL(url.includes("://") ? url : `http://${url}`);
  return `${u.hostname}:${u.port || defaultPort}`;
}

function absolute(path: string): string {
  if (path.startsWith("/")) return path;
  return `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
}

/** The npm cache Deno reads `.proto` files from for etcd3 at run time. */
function denoCacheDir(): string {
  const dir = readEnv("DENO_DIR");
  if (dir) return dir;
  const xdg = readEnv("XDG_CACHE_HOME");
  return xdg ? `${xdg}/deno` : `${readEnv("HOME") ?? "/root"}/.cache/deno`;
}

/** The `deno run` permission flags for these settings. */
export function permissionFlags(s: KontrolSettings): string[] {
  const net = [`${s.ip || "0.0.0.0"}:${s.port}`];
  if (typeof s.metrics === "object") {
    net.push(`${s.metrics.hostname}:${s.metrics.port}`);
  }
  const read = [absolute(s.data)];
  const write = [absolute(s.data)];
  if (s.storage === "etcd" || s.storage === "postgres") {
    // main.ts loads the adapter by a computed path (so the KV Kontrol never
    // fetches the drivers), which Deno treats as a read like any other.
    read.push(new URL("../storage/", import.meta.url).pathname);
  }
  if (s.storage === "etcd") {
    net.push(...s.machines.map((m) => hostPort(m, 2379)));
    read.push(denoCacheDir());
  }
  if (s.storage === "postgres") net.push(`${s.postgresHost}:${s.postgresPort}`);
  const files = [s.publicKeyFile, s.privateKeyFile, ...s.tlsFiles, s.dashboard];
  for (const f of files) {
    if (f) read.push(absolute(f));
  }
  if (s.initial) {
    read.push(absolute(s.kiteHome));
    write.push(absolute(s.kiteHome));
  } else if (!s.username) {
    // Its own kite.key names Kontrol's issuer (kontrol/issuer.ts).
    read.push(`${absolute(s.kiteHome)}/kite.key`);
  }
  // HOME locates the kite home when KITE_HOME is not set.
  const env = ["KITE_*", "KONTROL_*", "HOME"];
  // The drivers read their own settings: grpc-js its proxy variables, postgres.js PG*.
  if (s.storage === "etcd") {
    env.push(
      "GRPC_*",
      "grpc_proxy",
      "http_proxy",
      "https_proxy",
      "no_grpc_proxy",
      "no_proxy",
    );
  }
  if (s.storage === "postgres") env.push("PG*");
  return [
    `--allow-net=${net.join(",")}`,
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-env=${env.join(",")}`,
    "--allow-sys=hostname,systemMemoryInfo",
  ];
}

if (import.meta.main) {
  let settings: KontrolSettings;
  try {
    settings = readSettings(Deno.args, readEnv);
  } catch (err) {
    console.error(`kontrol: ${(err as Error).message}`);
    Deno.exit(2);
  }
  const main = new URL("./main.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--quiet",
      "--config",
      config,
      ...permissionFlags(settings),
      `--v8-flags=${KONTROL_V8_FLAGS}`,
      main,
      ...Deno.args,
    ],
    env: kontrolEnv(readEnv),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => child.kill(signal));
  }
  const status = await child.status;
  Deno.exit(status.code);
}
