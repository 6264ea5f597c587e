import assert from "node:assert/strict";
import {
  algProblem,
  base64UrlEncode,
  decodeJwt,
  goDuration,
  JwtFormatError,
  readExpiry,
  timeProblem,
} from "./jwt.ts";
import {
  POSTGRES_TOKEN,
  TRUSTED_KITE_KEY,
} from "../../tests/fixtures/go_kite_auth.ts";
import { b64url, forgeJwt } from "../../tests/fixtures/jwt.ts";

function decodeError(token: string): string {
  try {
    decodeJwt(token);
  } catch (error) {
    assert.ok(error instanceof JwtFormatError);
    return error.message;
  }
  throw new Error(`decodeJwt(${token}) did not throw`);
}

function bytes(...values: number[]): string {
  return base64UrlEncode(new Uint8Array(values));
}

Deno.test("decodeJwt() reads the recorded Go token and kite.key claims", () => {
  const token = decodeJwt(POSTGRES_TOKEN);
  assert.deepEqual(token.header, { alg: "RS256", typ: "JWT" });
  assert.deepEqual(Object.keys(token.claims), [
    "aud",
    "exp",
    "jti",
    "iat",
    "iss",
    "nbf",
    "sub",
  ]);
  assert.equal(token.claims.exp! - token.claims.iat!, 173400);
  const kiteKey = decodeJwt(TRUSTED_KITE_KEY).claims;
  assert.deepEqual(Object.keys(kiteKey), [
    "jti",
    "iat",
    "iss",
    "sub",
    "kontrolKey",
    "kontrolURL",
  ]);
  assert.equal(kiteKey.kontrolURL, "http://127.0.0.1:14000/kite");
});

Deno.test("decodeJwt() gives encoding/json's text for an invalid first byte", () => {
  assert.equal(
    decodeError("not.a.jwt"),
    "invalid character '\\u009e' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0x01)}.x.y`),
    "invalid character '\\x01' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0x0a, 0x27)}.x.y`),
    "invalid character '\\'' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0x5c)}.x.y`),
    "invalid character '\\\\' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0x41)}.x.y`),
    "invalid character 'A' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0xe9)}.x.y`),
    "invalid character 'é' looking for beginning of value",
  );
  assert.equal(
    decodeError(`${bytes(0x20)}.x.y`),
    "unexpected end of JSON input",
  );
});

Deno.test("decodeJwt() reports bad base64 at Go's byte offset", () => {
  assert.equal(decodeError("ab!c.x.y"), "illegal base64 data at input byte 2");
  assert.equal(decodeError("abcde.x.y"), "illegal base64 data at input byte 5");
  assert.equal(decodeError("a=bc.x.y"), "illegal base64 data at input byte 1");
});

Deno.test("decodeJwt() accepts padded segments as jwt-go does", () => {
  const header = btoa('{"alg":"RS256" }');
  assert.ok(header.endsWith("="));
  assert.equal(decodeJwt(`${header}.${b64url("{}")}.x`).header.alg, "RS256");
});

Deno.test("decodeJwt() reads every segment length, and extra bits, as Go does", () => {
  // Go's non-strict decoder drops the bits after the last whole byte and
  // strips CR and LF: 'R' differs from 'Q' only there.
  assert.equal(b64url('{"a":1}'), "eyJhIjoxfQ");
  for (const header of ["eyJhIjoxfQ", "eyJhIjoxfR", "eyJhIjox\r\nfQ"]) {
    assert.deepEqual(decodeJwt(`${header}.e30.x`).header, { a: 1 });
  }
  for (let n = 0; n < 40; n++) {
    const json = JSON.stringify({ s: "é✓😀".repeat(n % 3) + "x".repeat(n) });
    assert.deepEqual(
      decodeJwt(`${b64url(json)}.e30.x`).header,
      JSON.parse(json),
    );
  }
});

Deno.test("decodeJwt() treats null claims as unset", () => {
  const { claims } = decodeJwt(
    forgeJwt({ alg: "RS256" }, { aud: null, exp: null, sub: "x" }),
  );
  assert.deepEqual(claims, { sub: "x" });
});

Deno.test("algProblem() accepts only RS256/384/512", () => {
  for (const alg of ["RS256", "RS384", "RS512"]) {
    assert.equal(algProblem({ alg }), undefined);
  }
  for (const alg of ["none", "HS256", "PS256", "ES256"]) {
    assert.equal(algProblem({ alg }), "invalid signing method", alg);
  }
  assert.equal(
    algProblem({ alg: "EdDSA" }),
    "signing method (alg) is unavailable.",
  );
  assert.equal(algProblem({ alg: 1 }), "signing method (alg) is unspecified.");
});

Deno.test("timeProblem() applies exp, iat, nbf like jwt-go, last failure winning", () => {
  assert.equal(timeProblem({ exp: 100, iat: 50, nbf: 50 }, 100), undefined);
  assert.equal(timeProblem({ exp: 100 }, 101), "token is expired by 1s");
  assert.equal(timeProblem({ iat: 101 }, 100), "Token used before issued");
  assert.equal(
    timeProblem({ iat: 101, nbf: 101 }, 100),
    "token is not valid yet",
  );
  assert.equal(timeProblem({ exp: 0, iat: 0, nbf: 0 }, 100), undefined);
});

Deno.test("goDuration() formats like Go's Duration.String", () => {
  assert.equal(goDuration(0), "0s");
  assert.equal(goDuration(59), "59s");
  assert.equal(goDuration(60), "1m0s");
  assert.equal(goDuration(3600), "1h0m0s");
  assert.equal(goDuration(173400), "48h10m0s");
});

Deno.test("readExpiry() reads exp without verifying", () => {
  assert.equal(readExpiry(POSTGRES_TOKEN), 1795413210);
  assert.equal(readExpiry(TRUSTED_KITE_KEY), undefined);
  assert.throws(() => readExpiry("garbage"), JwtFormatError);
  // The same token again is answered from memory; others still are read.
  assert.equal(readExpiry(POSTGRES_TOKEN), 1795413210);
  assert.throws(() => readExpiry(""), JwtFormatError);
  assert.equal(readExpiry(TRUSTED_KITE_KEY), undefined);
  assert.equal(readExpiry(TRUSTED_KITE_KEY), undefined);
  assert.equal(readExpiry(POSTGRES_TOKEN), 1795413210);
});
