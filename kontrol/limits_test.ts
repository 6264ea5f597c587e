import assert from "node:assert/strict";
import { KiteError } from "../kite/errors.ts";
import {
  checkFieldLengths,
  DEFAULT_KONTROL_LIMITS,
  kontrolLimits,
} from "./limits.ts";
import { readSettings } from "./settings.ts";

Deno.test("readSettings() reads Kontrol's quotas from KONTROL_* and flags, durations in seconds", () => {
  const env = (name: string) =>
    ({ KONTROL_MAXKITESPERUSER: "5", KONTROL_HTTPPROOF: "60" })[name];
  const s = readSettings(["--maxurllength", "100", "--idretention=0"], env);
  assert.deepEqual(s.limits, {
    ...DEFAULT_KONTROL_LIMITS,
    maxKitesPerUser: 5,
    maxUrlLength: 100,
    idRetentionMs: 0,
    httpProofMs: 60_000,
  });
  assert.deepEqual(readSettings([], () => undefined).limits, {
    ...DEFAULT_KONTROL_LIMITS,
  });
  assert.throws(
    () => readSettings(["--maxwatchersperuser", "0"], () => undefined),
    /Kontrol limit maxWatchersPerUser must be a whole number >= 1, got 0/,
  );
});

Deno.test("readSettings() reads the connection caps of Kontrol's kite", () => {
  const env = (name: string) =>
    ({ KONTROL_MAXCONNECTIONSPERADDRESS: "5000" })[name];
  assert.deepEqual(readSettings(["--maxconnections=20000"], env).connections, {
    maxConnections: 20_000,
    maxConnectionsPerAddress: 5_000,
  });
  assert.deepEqual(readSettings([], () => undefined).connections, {
    maxConnections: 10_000,
    maxConnectionsPerAddress: 1_000,
  });
  assert.throws(
    () => readSettings(["--maxconnectionsperaddress", "0"], () => undefined),
    /maxConnectionsPerAddress must be a whole number >= 1, got 0/,
  );
});

Deno.test("kontrolLimits() refuses what is not a whole number", () => {
  assert.throws(() => kontrolLimits({ maxFieldLength: 1.5 }), RangeError);
  assert.throws(() => kontrolLimits({ httpProofMs: -1 }), RangeError);
  assert.equal(kontrolLimits({ httpProofMs: 0 }).httpProofMs, 0);
});

Deno.test("checkFieldLengths() names the first field that is too long", () => {
  checkFieldLengths({ name: "x".repeat(10) }, 10);
  assert.throws(
    () => checkFieldLengths({ name: "ok", region: "r".repeat(11) }, 10),
    (err: unknown) =>
      err instanceof KiteError && err.type === "argumentError" &&
      err.message ===
        "kite field region is too long (11 characters, at most 10)",
  );
});
