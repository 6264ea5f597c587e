/**
 * `kitectl register --code` against a `deno task kontrol` process: a code
 * Kontrol printed at start gets one kite.key, once; reused, wrong or
 * someone else's codes are refused with a one-line error, exit 1 and no
 * kite.key; the operator makes more with `kitectl codes create`, and
 * nobody else can.
 *
 * @module
 */
import { decodeJwt } from "../kite/auth/jwt.ts";
import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { kitectl } from "./helpers/kitectl_cli.ts";
import { startOperatedKontrol } from "./helpers/kontrol_task.ts";
import { eventually } from "./helpers/wait.ts";

/** A line of stderr, no more: errors are one line. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0];
}

async function noKey(home: string): Promise<void> {
  const found = await Deno.stat(`${home}/kite.key`).catch(() => null);
  assertEquals(found, null, `a refused register wrote ${home}/kite.key`);
}

Deno.test("kitectl register --code: each one-time code gets one kite.key, once; the operator makes more", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kitectl_code_" });
  const { kontrol, admin } = await startOperatedKontrol(dir, {
    KONTROL_MACHINECODES: "1",
  });
  const home = (who: string) => ({ KITE_HOME: `${dir}/${who}` });
  try {
    // Printed right after the listening line.
    const CODE_LINE =
      /One-time code for `kitectl register --code` \(valid 24 h\): (\S+)/;
    await eventually(
      () => CODE_LINE.test(kontrol.output()),
      "Kontrol to print a one-time code",
    );
    const code = kontrol.output().match(CODE_LINE)![1];
    const register = (who: string, c: string, username = who) =>
      kitectl([
        "register",
        "--kontrol",
        kontrol.url,
        "--username",
        username,
        "--code",
        c,
        "--json",
      ], home(who));

    const ok = await register("alice", code);
    assertEquals(ok.code, 0, ok.stderr);
    const key = await Deno.readTextFile(`${dir}/alice/kite.key`);
    assertEquals(decodeJwt(key).claims.sub, "alice");

    const again = await register("bob", code);
    assertEquals(again.code, 1, again.stdout);
    assertMatch(oneLine(again.stderr), /already used/);
    await noKey(`${dir}/bob`);

    const wrong = await register(
      "bob",
      code.replace(/^./, (c) => c === "0" ? "1" : "0"),
    );
    assertEquals(wrong.code, 1, wrong.stdout);
    assertMatch(oneLine(wrong.stderr), /unknown or expired one-time code/);
    const junk = await register("bob", "let-me-in");
    assertEquals(junk.code, 1, junk.stdout);
    assertMatch(oneLine(junk.stderr), /not a one-time code/);
    await noKey(`${dir}/bob`);

    // Only the operator makes codes.
    const refused = await kitectl(["codes", "create"], home("alice"));
    assertEquals(refused.code, 1);
    assertMatch(oneLine(refused.stderr), /only Kontrol's own user kontrol/);

    // A code bound to carol: not for bob, not for Kontrol's own user.
    const made = await kitectl(
      ["codes", "create", "--for", "carol", "--ttl", "600", "--json"],
      admin,
    );
    assertEquals(made.code, 0, made.stderr);
    const forCarol = JSON.parse(made.stdout) as {
      code: string;
      username: string;
    };
    assertEquals(forCarol.username, "carol");
    const notBob = await register("bob", forCarol.code);
    assertEquals(notBob.code, 1);
    assertMatch(oneLine(notBob.stderr), /for user carol, not bob/);
    const own = await register("mallory", forCarol.code, "kontrol");
    assertEquals(own.code, 1);
    assertMatch(oneLine(own.stderr), /Kontrol's own user/);
    const carol = await register("carol", forCarol.code);
    assertEquals(carol.code, 0, carol.stderr);
    await noKey(`${dir}/bob`);
    await noKey(`${dir}/mallory`);

    // A secret was not configured: the secret route says what Kontrol takes.
    const secret = await kitectl([
      "register",
      "--kontrol",
      kontrol.url,
      "--username",
      "bob",
      "--secret",
      "guess",
    ], home("bob"));
    assertEquals(secret.code, 1);
    assertMatch(oneLine(secret.stderr), /authType must be "code"/);
    const both = await kitectl([
      "register",
      "--kontrol",
      kontrol.url,
      "--username",
      "bob",
      "--secret",
      "x",
      "--code",
      code,
    ], home("bob"));
    assertEquals(both.code, 2);
    assertMatch(oneLine(both.stderr), /not both/);
  } finally {
    await kontrol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
