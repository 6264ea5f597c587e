import assert from "node:assert/strict";
import {
  KITE_KEY_HINT,
  kiteHome,
  KiteKeyError,
  type KiteKeyProblem,
  readKiteKey,
  writeKiteKey,
} from "./kitekey.ts";
import { ManualClock } from "../clock.ts";
import {
  CAPTURE_TIME_MS,
  KONTROL_PUBLIC_KEY,
  TRUSTED_KITE_KEY,
  UNTRUSTED_KITE_KEY,
} from "../../tests/fixtures/go_kite_auth.ts";
import { b64url, fixtureKey, signJwt } from "../../tests/fixtures/jwt.ts";

const clock = new ManualClock(CAPTURE_TIME_MS);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kitekey_test_" });
  try {
    await fn(dir);
  } finally {
    // Files are written read-only; make them removable again.
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile) await Deno.chmod(`${dir}/${entry.name}`, 0o600);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

async function readFails(
  path: string,
  problem: KiteKeyProblem,
  detail: RegExp,
): Promise<void> {
  await assert.rejects(readKiteKey(path, { clock }), (error: unknown) => {
    assert.ok(error instanceof KiteKeyError);
    assert.equal(error.problem, problem);
    assert.equal(error.path, path);
    assert.match(error.message, detail);
    assert.ok(error.message.endsWith(KITE_KEY_HINT), error.message);
    return true;
  });
}

Deno.test("kiteHome() prefers KITE_HOME, then ~/.kite", () => {
  assert.equal(
    kiteHome({ KITE_HOME: "/srv/kite", HOME: "/home/a" }),
    "/srv/kite",
  );
  assert.equal(kiteHome({ HOME: "/home/a" }), "/home/a/.kite");
  assert.equal(kiteHome({ HOME: "/home/a/" }), "/home/a/.kite");
  assert.equal(kiteHome({ USERPROFILE: "C:\\Users\\a" }), "C:\\Users\\a/.kite");
  assert.throws(() => kiteHome({}), KiteKeyError);
});

Deno.test("readKiteKey() reads and verifies the recorded Go kite.key", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/kite.key`, `\n  ${TRUSTED_KITE_KEY}\n\n`);
    const key = await readKiteKey(`${dir}/kite.key`, { clock });
    assert.equal(key.raw, TRUSTED_KITE_KEY);
    assert.deepEqual(key.claims, {
      jti: "abfe4d70-9e05-49df-93dc-13174a5b453d",
      iat: 1795239620,
      iss: "testuser",
      sub: "testuser",
      kontrolKey: KONTROL_PUBLIC_KEY.trim(),
      kontrolURL: "http://127.0.0.1:14000/kite",
    });
  });
});

Deno.test("readKiteKey() also accepts a kite.key of another Kontrol (self-verified)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/kite.key`, UNTRUSTED_KITE_KEY);
    assert.equal(
      (await readKiteKey(`${dir}/kite.key`, { clock })).claims.sub,
      "testuser",
    );
  });
});

Deno.test("readKiteKey() explains a missing file and how to get a key", async () => {
  await withTempDir(async (dir) => {
    await readFails(`${dir}/kite.key`, "missing", /^no kite\.key at /);
  });
});

Deno.test("readKiteKey() explains an unreadable file", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/kite.key`);
    await readFails(
      `${dir}/kite.key`,
      "unreadable",
      /^cannot read kite\.key at /,
    );
  });
});

Deno.test("readKiteKey() explains a malformed or tampered key", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/kite.key`;
    await Deno.writeTextFile(path, "not a jwt");
    await readFails(path, "malformed", /invalid number of segments/);
    const [h, p, s] = TRUSTED_KITE_KEY.split(".");
    const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")));
    await Deno.writeTextFile(
      path,
      `${h}.${b64url(JSON.stringify({ ...claims, sub: "root" }))}.${s}`,
    );
    await readFails(
      path,
      "malformed",
      /signature does not match the embedded kontrolKey/,
    );
  });
});

Deno.test("readKiteKey() refuses a key issued in the future, as Go does", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/kite.key`;
    await Deno.writeTextFile(path, TRUSTED_KITE_KEY);
    // One second more than the tolerated skew before `iat`.
    const early = new ManualClock((1795239620 - 301) * 1000);
    await assert.rejects(
      readKiteKey(path, { clock: early }),
      /Token used before issued/,
    );
  });
});

Deno.test("readKiteKey() refuses a key without a kontrolKey", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/kite.key`;
    const jwt = await signJwt(
      { sub: "alice", iat: 1 },
      fixtureKey("kontrol_pkcs8.pem"),
    );
    await Deno.writeTextFile(path, jwt);
    await readFails(path, "malformed", /no kontrol key found/);
  });
});

Deno.test("writeKiteKey() writes mode 0400 in a 0700 directory and replaces a key", async () => {
  await withTempDir(async (dir) => {
    const home = `${dir}/home/.kite`;
    const path = await writeKiteKey(`${UNTRUSTED_KITE_KEY}\n`, home);
    assert.equal(path, `${home}/kite.key`);
    assert.equal((await Deno.stat(home)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    await writeKiteKey(TRUSTED_KITE_KEY, home);
    assert.equal(await Deno.readTextFile(path), TRUSTED_KITE_KEY);
    assert.equal(
      (await readKiteKey(path, { clock })).claims.jti,
      "abfe4d70-9e05-49df-93dc-13174a5b453d",
    );
    await assert.rejects(writeKiteKey("nope", home), TypeError);
    await Deno.chmod(home, 0o700);
    await Deno.chmod(path, 0o600);
    await Deno.remove(`${dir}/home`, { recursive: true });
  });
});
