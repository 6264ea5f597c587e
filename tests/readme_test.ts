/**
 * The README's programs run as shown. Every `ts` block in README.md is a
 * file under `examples/readme/` (marked `<!-- examples/readme/x.ts -->`
 * above it); the blocks type-check (`deno check --doc-only README.md`), the
 * files run against a real Kontrol, and the documented way to use a local
 * checkout (`"links"` or an import map in the user's deno.json) works in a
 * project directory outside the repository.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestKontrol } from "./helpers/kontrol_harness.ts";
import { writeKiteKey } from "../kite/auth/kitekey.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const README = `${ROOT}README.md`;
/** Permissions the README tells users to run its programs with. */
const KITE_FLAGS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
];
/** A child Deno process may need a while to start on a loaded machine. */
const RUN_MS = 90_000;

interface Block {
  lang: string;
  /** The marker comment just above the block, if any. */
  file: string | undefined;
  code: string;
}

/** The fenced code blocks of README.md, in order. */
async function readmeBlocks(): Promise<Block[]> {
  const text = await Deno.readTextFile(README);
  const blocks: Block[] = [];
  const re = /(?:<!-- (\S+) -->\n\n)?```(\w*)\n([\s\S]*?)```/g;
  for (const m of text.matchAll(re)) {
    blocks.push({ file: m[1], lang: m[2], code: m[3] });
  }
  return blocks;
}

/** `deno <args>` in `cwd` with only `env` (plus PATH, HOME, Deno's cache). */
async function deno(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; out: string; err: string }> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? ROOT,
    clearEnv: true,
    env: { ...env, ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_MS);
  const output = await child.output();
  clearTimeout(timer);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: output.code,
    out: text(output.stdout),
    err: text(output.stderr),
  };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_readme_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("every ts block of the README is a file under examples/readme", async () => {
  const ts = (await readmeBlocks()).filter((b) => b.lang === "ts");
  assert(ts.length >= 2, "README has no ts blocks");
  for (const block of ts) {
    assert(
      block.file?.startsWith("examples/readme/"),
      `a ts block has no <!-- examples/readme/… --> marker:\n${block.code}`,
    );
    const file = await Deno.readTextFile(`${ROOT}${block.file}`);
    assertEquals(block.code, file, `README block ≠ ${block.file}`);
  }
});

Deno.test("the README's ts blocks type-check (deno check --doc-only)", async () => {
  const r = await deno(["check", "--quiet", "--doc-only", "README.md"]);
  assertEquals(r.code, 0, r.err);
});

Deno.test("the README's API program runs and prints what it says", async () => {
  await withTempDir(async (home) => {
    const r = await deno(
      ["run", ...KITE_FLAGS, "examples/readme/api.ts"],
      { env: { KITE_HOME: home } },
    );
    const why = `exit ${r.code}\n${r.out}\n${r.err}`;
    assertEquals(r.code, 0, why);
    const lines = r.out.trim().split("\n");
    assert(
      /^math kite at http:\/\/127\.0\.0\.1:\d+\/kite$/.test(lines[0]),
      why,
    );
    assertEquals(lines.slice(1), [
      "square(4) = 16",
      "called back 25",
      "9",
      "timeout",
      "argumentError withArgs[0]: expected a number, got string",
    ], why);
  });
});

Deno.test("the README's Kontrol program registers, finds, calls and watches", async () => {
  const tk = await startTestKontrol();
  try {
    await withTempDir(async (home) => {
      await writeKiteKey(await tk.kiteKey("alice"), home);
      const r = await deno(
        ["run", ...KITE_FLAGS, "examples/readme/kontrol.ts"],
        { env: { KITE_HOME: home, KITE_LOG_LEVEL: "WARNING" } },
      );
      const why = `exit ${r.code}\n${r.out}\n${r.err}`;
      assertEquals(r.code, 0, why);
      assert(/^watch: REGISTER math [0-9a-f-]{36}$/m.test(r.out), why);
      assert(/^found http:\/\/\S+\/kite square\(4\) = 16$/m.test(r.out), why);
      assert(/^watch: DEREGISTER math [0-9a-f-]{36}$/m.test(r.out), why);
    });
  } finally {
    await tk.close();
  }
});

Deno.test("a project beside a checkout imports jsr:@kite/core as the README says", async () => {
  const json = (await readmeBlocks()).filter((b) => b.lang === "json");
  const links = json.find((b) => b.code.includes('"links"'));
  const importMap = json.find((b) => b.code.includes('"@kite/core"'));
  assert(links && importMap, "README lacks the links / import map blocks");
  const api = await Deno.readTextFile(`${ROOT}examples/readme/api.ts`);
  await withTempDir(async (dir) => {
    // The layout the README assumes: the checkout in ../kite.
    await Deno.symlink(ROOT, `${dir}/kite`);
    await Deno.mkdir(`${dir}/home`);

    await Deno.mkdir(`${dir}/app`);
    await Deno.writeTextFile(`${dir}/app/deno.json`, links.code);
    await Deno.writeTextFile(`${dir}/app/api.ts`, api);
    await Deno.writeTextFile(
      `${dir}/app/kontrol.ts`,
      'import { Kontrol } from "jsr:@kite/core/kontrol";\n' +
        'import { MemoryStorage } from "jsr:@kite/core/storage";\n' +
        "console.log(new Kontrol({ storage: new MemoryStorage() }).username);\n",
    );
    const app = { cwd: `${dir}/app`, env: { KITE_HOME: `${dir}/home` } };
    let r = await deno(["check", "--quiet", "api.ts", "kontrol.ts"], app);
    assertEquals(r.code, 0, r.err);
    r = await deno(["run", ...KITE_FLAGS, "api.ts"], app);
    assertEquals(r.code, 0, r.err);
    assert(r.out.includes("square(4) = 16"), r.out);

    await Deno.mkdir(`${dir}/mapped`);
    await Deno.writeTextFile(`${dir}/mapped/deno.json`, importMap.code);
    await Deno.writeTextFile(
      `${dir}/mapped/api.ts`,
      api.replace('"jsr:@kite/core"', '"@kite/core"'),
    );
    const mapped = { cwd: `${dir}/mapped`, env: app.env };
    r = await deno(["check", "--quiet", "api.ts"], mapped);
    assertEquals(r.code, 0, r.err);
    r = await deno(["run", ...KITE_FLAGS, "api.ts"], mapped);
    assertEquals(r.code, 0, r.err);
    assert(r.out.includes("square(4) = 16"), r.out);
  });
});
