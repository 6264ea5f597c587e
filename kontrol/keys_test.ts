import assert from "node:assert/strict";
import {
  KEY_FILES,
  keyIdFor,
  loadKeyPair,
  loadKeyPairFiles,
  loadOrCreateKeyPair,
} from "./keys.ts";
import { KeyFormatError, publicKeyFromPrivate } from "../kite/auth/keys.ts";

const FIXTURES = new URL("../tests/fixtures/keys/", import.meta.url).pathname;
const fixture = (name: string) => FIXTURES + name;
const read = (name: string) => Deno.readTextFileSync(fixture(name));

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_keys_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadKeyPairFiles() loads a PKCS#1 private key with its public key", async () => {
  const pair = await loadKeyPairFiles({
    privateKeyFile: fixture("kontrol_pkcs1.pem"),
    publicKeyFile: fixture("kontrol_public.pem"),
  });
  assert.equal(pair.private, read("kontrol_pkcs1.pem").trim());
  assert.equal(pair.public, read("kontrol_public.pem").trim());
});

Deno.test("loadKeyPairFiles() derives the public key of a PKCS#8 private key", async () => {
  const pair = await loadKeyPairFiles({
    privateKeyFile: fixture("kontrol_pkcs8.pem"),
  });
  assert.equal(pair.public, read("kontrol_public.pem").trim());
});

Deno.test("loadKeyPairFiles() keeps the public PEM as written and converts certificates", async () => {
  await withTempDir(async (dir) => {
    // Same key, different line wrapping: kept byte for byte (kite.key trust).
    const body = read("kontrol_public.pem").split("\n").slice(1, -2).join("");
    const wrapped = `-----BEGIN PUBLIC KEY-----\n${
      body.match(/.{1,76}/g)!.join("\n")
    }\n-----END PUBLIC KEY-----\n`;
    await Deno.writeTextFile(`${dir}/pub.pem`, wrapped);
    const pair = await loadKeyPairFiles({
      privateKeyFile: fixture("kontrol_pkcs8.pem"),
      publicKeyFile: `${dir}/pub.pem`,
    });
    assert.equal(pair.public, wrapped.trim());
  });
  const fromCert = await loadKeyPairFiles({
    privateKeyFile: fixture("kontrol_pkcs1.pem"),
    publicKeyFile: fixture("kontrol_cert.pem"),
  });
  assert.equal(fromCert.public, read("kontrol_public.pem").trim());
});

Deno.test("loadKeyPairFiles() refuses halves of different pairs and bad files", async () => {
  await assert.rejects(
    loadKeyPairFiles({
      privateKeyFile: fixture("kontrol_pkcs1.pem"),
      publicKeyFile: fixture("foreign_public.pem"),
    }),
    (e: Error) =>
      e instanceof KeyFormatError &&
      /does not belong to private key/.test(e.message),
  );
  await assert.rejects(
    loadKeyPairFiles({ privateKeyFile: fixture("kontrol_public.pem") }),
    (e: Error) =>
      e instanceof KeyFormatError && e.message.includes("kontrol_public.pem"),
  );
  await assert.rejects(
    loadKeyPairFiles({ privateKeyFile: fixture("no-such.pem") }),
    /cannot read private key file/,
  );
});

Deno.test("loadOrCreateKeyPair() generates once and keeps the id across loads", async () => {
  await withTempDir(async (dir) => {
    const keys = `${dir}/data/keys`;
    const first = await loadOrCreateKeyPair(keys);
    assert.equal(first.created, true);
    assert.match(first.pair.public, /^-----BEGIN PUBLIC KEY-----/);
    assert.match(first.pair.private, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal((await Deno.stat(keys)).mode! & 0o777, 0o700);
    assert.equal(
      (await Deno.stat(`${keys}/${KEY_FILES.private}`)).mode! & 0o077,
      0,
    );
    const second = await loadOrCreateKeyPair(keys);
    assert.equal(second.created, false);
    assert.deepEqual(second.pair, first.pair);
  });
});

Deno.test("loadOrCreateKeyPair() started four times at once agrees on one pair, files whole", async () => {
  await withTempDir(async (dir) => {
    const keys = `${dir}/keys`;
    const loads = await Promise.all(
      Array.from({ length: 4 }, () => loadOrCreateKeyPair(keys)),
    );
    assert.equal(loads.filter((l) => l.created).length, 1);
    for (const l of loads) assert.deepEqual(l.pair, loads[0].pair);
    const names = [];
    for await (const e of Deno.readDir(keys)) names.push(e.name);
    assert.deepEqual(names.sort(), Object.values(KEY_FILES).sort());
    assert.equal(
      (await Deno.stat(`${keys}/${KEY_FILES.private}`)).mode! & 0o077,
      0,
    );
  });
});

Deno.test("loadOrCreateKeyPair() uses an operator's PKCS#1 key and fills in the rest", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/${KEY_FILES.private}`,
      read("kontrol_pkcs1.pem"),
    );
    const { pair, created } = await loadOrCreateKeyPair(dir);
    assert.equal(created, false);
    assert.equal(pair.private, read("kontrol_pkcs1.pem").trim());
    assert.equal(
      pair.public,
      await publicKeyFromPrivate(read("kontrol_pkcs1.pem")),
    );
    assert.equal(
      pair.id,
      (await Deno.readTextFile(`${dir}/${KEY_FILES.id}`)).trim(),
    );
  });
});

Deno.test("loadKeyPair() uses operator files with an id stable across starts", async () => {
  await withTempDir(async (dir) => {
    const options = {
      privateKeyFile: fixture("kontrol_pkcs1.pem"),
      publicKeyFile: "",
      dataDir: dir,
    };
    const a = await loadKeyPair(options);
    const b = await loadKeyPair({
      ...options,
      privateKeyFile: fixture("kontrol_pkcs8.pem"),
    });
    assert.equal(a.public, read("kontrol_public.pem").trim());
    assert.equal(a.id, b.id);
    assert.equal(a.id, await keyIdFor(`${read("kontrol_public.pem")}\n`));
    assert.match(
      a.id,
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.notEqual(a.id, await keyIdFor(read("foreign_public.pem")));
    // Nothing was generated in the data directory.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("loadKeyPair() falls back to a generated pair in <dataDir>/keys", async () => {
  await withTempDir(async (dir) => {
    const a = await loadKeyPair({
      dataDir: dir,
      privateKeyFile: "",
      publicKeyFile: "",
    });
    const b = await loadKeyPair({ dataDir: dir });
    assert.deepEqual(a, b);
    assert.ok(Deno.statSync(`${dir}/keys/${KEY_FILES.private}`).isFile);
    await assert.rejects(
      loadKeyPair({
        dataDir: dir,
        publicKeyFile: fixture("kontrol_public.pem"),
      }),
      /without its private key file/,
    );
  });
});
