import assert from "node:assert/strict";
import { CompactSign, compactVerify } from "jose";
import {
  decodePem,
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  KeyCache,
  KeyFormatError,
  pkcs1ToPkcs8,
  publicKeyFromPrivate,
  toPkixPem,
  trimPem,
} from "./keys.ts";
import { fixtureKey } from "../../tests/fixtures/jwt.ts";

const PKCS1 = fixtureKey("kontrol_pkcs1.pem");
const PKCS8 = fixtureKey("kontrol_pkcs8.pem");
const PUBLIC = fixtureKey("kontrol_public.pem");
const CERT = fixtureKey("kontrol_cert.pem");
const PAYLOAD = new TextEncoder().encode('{"sub":"alice"}');

async function sign(key: CryptoKey): Promise<string> {
  return await new CompactSign(PAYLOAD).setProtectedHeader({ alg: "RS256" })
    .sign(key);
}

Deno.test("importPrivateKey() loads PKCS#1 and PKCS#8 forms of one key alike", async () => {
  const fromPkcs1 = await sign(await importPrivateKey(PKCS1));
  const fromPkcs8 = await sign(await importPrivateKey(PKCS8));
  // RSASSA-PKCS1-v1_5 is deterministic: same key, same signature.
  assert.equal(fromPkcs1, fromPkcs8);
  await compactVerify(fromPkcs1, await importPublicKey(PUBLIC));
});

Deno.test("pkcs1ToPkcs8() builds the same DER as openssl pkcs8 -topk8", () => {
  assert.equal(decodePem(PKCS1).label, "RSA PRIVATE KEY");
  assert.deepEqual(pkcs1ToPkcs8(decodePem(PKCS1).der), decodePem(PKCS8).der);
});

Deno.test("pkcs1ToPkcs8() uses short-form DER lengths for small inputs", () => {
  const wrapped = pkcs1ToPkcs8(new Uint8Array([0x30, 0x00]));
  assert.deepEqual(
    [...wrapped],
    [
      0x30,
      0x16,
      0x02,
      0x01,
      0x00,
      ...[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7],
      ...[
        0x0d,
        0x01,
        0x01,
        0x01,
        0x05,
        0x00,
      ],
      0x04,
      0x02,
      0x30,
      0x00,
    ],
  );
});

Deno.test("importPublicKey() reads a PKIX key and an X.509 certificate of the same key", async () => {
  const jws = await sign(await importPrivateKey(PKCS8));
  await compactVerify(jws, await importPublicKey(PUBLIC));
  await compactVerify(jws, await importPublicKey(CERT));
  assert.equal(await toPkixPem(CERT), trimPem(PUBLIC));
});

Deno.test("importPublicKey() refuses PKCS#1 public keys with a conversion hint", async () => {
  await assert.rejects(
    importPublicKey(fixtureKey("kontrol_rsa_public.pem")),
    (error: Error) =>
      error instanceof KeyFormatError && /-pubout/.test(error.message),
  );
});

Deno.test("import functions refuse the wrong kind of PEM, garbage and short keys", async () => {
  await assert.rejects(
    importPublicKey(PKCS8),
    /expected a PUBLIC KEY or CERTIFICATE/,
  );
  await assert.rejects(
    importPrivateKey(PUBLIC),
    /expected a PRIVATE KEY or RSA PRIVATE KEY/,
  );
  await assert.rejects(importPublicKey("hello"), /must be PEM encoded/);
  await assert.rejects(
    importPublicKey(
      "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ),
    /not an RSA public key/,
  );
  await assert.rejects(
    importPrivateKey(
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
    ),
    /encrypted private keys are not supported/,
  );
  await assert.rejects(
    importPrivateKey(fixtureKey("small_1024_pkcs1.pem")),
    /1024 bits; RSA keys of at least 2048 bits are required/,
  );
});

Deno.test("publicKeyFromPrivate() gives openssl's PKIX PEM for PKCS#1 and PKCS#8", async () => {
  assert.equal(await publicKeyFromPrivate(PKCS1), trimPem(PUBLIC));
  assert.equal(await publicKeyFromPrivate(PKCS8), trimPem(PUBLIC));
});

Deno.test("generateKeyPair() returns PKIX and PKCS#8 PEMs that sign and verify", async () => {
  const pair = await generateKeyPair();
  assert.match(
    pair.public,
    /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PUBLIC KEY-----$/,
  );
  assert.match(pair.private, /^-----BEGIN PRIVATE KEY-----\n/);
  const privateKey = await importPrivateKey(pair.private);
  assert.equal(
    (privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength,
    2048,
  );
  await compactVerify(
    await sign(privateKey),
    await importPublicKey(pair.public),
  );
  assert.equal(await publicKeyFromPrivate(pair.private), pair.public);
  await assert.rejects(generateKeyPair({ modulusLength: 1024 }), RangeError);
});

Deno.test("KeyCache imports a PEM once per algorithm and stays bounded", async () => {
  const cache = new KeyCache({ maxEntries: 2 });
  const a = await cache.publicKey(PUBLIC);
  assert.equal(await cache.publicKey(`\n${PUBLIC}  `), a);
  assert.notEqual(await cache.publicKey(PUBLIC, "RS512"), a);
  await cache.privateKey(PKCS8);
  assert.equal(cache.size, 2);
  assert.notEqual(await cache.publicKey(PUBLIC), a);
});

Deno.test("KeyCache does not keep failed imports", async () => {
  const cache = new KeyCache();
  await assert.rejects(cache.publicKey("nope"), KeyFormatError);
  assert.equal(cache.size, 0);
});
