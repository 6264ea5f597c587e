/**
 * The set-up step of `deno task test` (scripts/test.ts): makes sure this
 * machine has what the tests run against — etcd, PostgreSQL, Chromium,
 * promtool, openssl, faketime, `script`, git, and Node.js with the kite.js
 * peer installed in `tests/kitejs` — or stops with one line saying what is missing and how to
 * get it. Instant when everything is there.
 *
 * Missing Debian packages are installed with `apt-get` when running as root
 * (as CI does) unless `KITE_TEST_INSTALL=0`; otherwise the line gives the
 * `apt-get install` command and the exit status is 1.
 *
 * @module
 */
import { findBinary, postgresBinDirs } from "../tests/helpers/binaries.ts";
import { ensureKitejs } from "../tests/helpers/kitejs.ts";

/** Something the tests need, and the Debian package that provides it. */
export interface Requirement {
  /** What a user would call it. */
  what: string;
  /** Debian package(s). */
  packages: string[];
  /** True when this machine has it. */
  present(): boolean;
}

function onPath(name: string): () => boolean {
  return () => findBinary(name) !== undefined;
}

function hasPostgres(): boolean {
  return postgresBinDirs().some((dir) =>
    findBinary("postgres", { extraDirs: [dir] }) !== undefined &&
    findBinary("initdb", { extraDirs: [dir] }) !== undefined
  );
}

/** True when `node` is a real Node.js, not Deno's shim. */
function hasNode(): boolean {
  if (findBinary("node") === undefined || findBinary("npm") === undefined) {
    return false;
  }
  try {
    const out = new Deno.Command("node", {
      args: ["-e", "process.stdout.write(process.versions.deno ? '' : 'ok')"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return new TextDecoder().decode(out.stdout) === "ok";
  } catch {
    return false;
  }
}

/** Everything the test suite runs against. */
export const REQUIREMENTS: Requirement[] = [
  { what: "etcd", packages: ["etcd-server"], present: onPath("etcd") },
  { what: "PostgreSQL", packages: ["postgresql"], present: hasPostgres },
  { what: "Chromium", packages: ["chromium"], present: onPath("chromium") },
  { what: "promtool", packages: ["prometheus"], present: onPath("promtool") },
  { what: "openssl", packages: ["openssl"], present: onPath("openssl") },
  { what: "faketime", packages: ["faketime"], present: onPath("faketime") },
  { what: "script", packages: ["bsdutils"], present: onPath("script") },
  { what: "git", packages: ["git"], present: onPath("git") },
  { what: "Node.js with npm", packages: ["nodejs", "npm"], present: hasNode },
];

/** The one line that says what is missing and how to get it. */
export function missingLine(missing: Requirement[], root: boolean): string {
  const packages = missing.flatMap((r) => r.packages).join(" ");
  const names = missing.map((r) => r.what).join(", ");
  const command = `${root ? "" : "sudo "}apt-get install -y ${packages}`;
  return `deno task test: missing ${names}; install with \`${command}\`` +
    (root ? "" : " (as root, `deno task test` installs them itself)");
}

async function aptGet(args: string[]): Promise<boolean> {
  const status = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn().status;
  return status.success;
}

/**
 * Checks (and as root installs) everything; on a problem prints its one
 * line and returns 1, else 0.
 */
export async function setUpTestEnv(): Promise<number> {
  let missing = REQUIREMENTS.filter((r) => !r.present());
  const root = Deno.uid() === 0;
  const mayInstall = root && Deno.env.get("KITE_TEST_INSTALL") !== "0" &&
    findBinary("apt-get") !== undefined;
  if (missing.length > 0 && mayInstall) {
    const packages = missing.flatMap((r) => r.packages);
    console.error(
      `deno task test: installing ${packages.join(" ")} with apt-get`,
    );
    const ok = await aptGet(["update", "-q"]) &&
      await aptGet(["install", "-y", "-q", ...packages]);
    missing = REQUIREMENTS.filter((r) => !r.present());
    if (!ok) console.error("deno task test: apt-get failed (output above)");
  }
  if (missing.length > 0) {
    console.error(missingLine(missing, root));
    return 1;
  }
  try {
    await ensureKitejs();
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err))
      .split("\n")[0];
    console.error(`deno task test: the kite.js peer: ${first}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await setUpTestEnv());
