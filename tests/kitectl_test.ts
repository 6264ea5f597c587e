/**
 * `deno task kitectl` end to end against a `deno task kontrol` process:
 * machine registration with the shared secret (and a wrong one refused),
 * showkey, watch, query, tell with arguments and a callback, ping, info,
 * key rotation by the operator with a kite re-issued its key, and bad input
 * giving one line and a non-zero exit.
 *
 * @module
 */
import { decodeJwt } from "../kite/auth/jwt.ts";
import { mathKite } from "../examples/math/server.ts";
import type { Kite } from "../mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { kitectl, oneLine, startKitectl } from "./helpers/kitectl_cli.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";
import { FIXTURES, runTask, startTask } from "./helpers/kontrol_task.ts";
import { eventually, freePort } from "./helpers/wait.ts";

const SECRET = "correct horse battery staple";

/** Every line of `text` parsed as JSON. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("kitectl: register, showkey, watch, query, tell, keys rotate, bad input", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "kitectl_" });
  const port = freePort();
  const kontrolEnv = {
    KONTROL_STORAGE: "memory",
    KONTROL_PORT: String(port),
    KONTROL_IP: "127.0.0.1",
    KONTROL_DATA: `${dir}/data`,
    KONTROL_USERNAME: "kontrol",
    KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
    KONTROL_MACHINESECRET: SECRET,
  };
  const admin = { KITE_HOME: `${dir}/admin` };
  const alice = { KITE_HOME: `${dir}/alice` };
  const initial = await runTask(["--initial", "--username", "kontrol"], {
    ...kontrolEnv,
    ...admin,
  });
  assertEquals(initial.code, 0, initial.stderr);
  const kontrol = await startTask(kontrolEnv);
  const kites: Kite[] = [];
  const startMath = async (): Promise<Kite> => {
    const key = await Deno.readTextFile(`${alice.KITE_HOME}/kite.key`);
    const kite = mathKite({
      env: false,
      kiteKey: key,
      logger: new MemoryLogger(),
      config: { ip: "127.0.0.1", port: 0, environment: "test" },
    });
    kites.push(kite);
    await kite.serve({ quiet: true });
    await kite.register();
    return kite;
  };
  try {
    await t.step(
      "register: a wrong secret is refused, the right one writes kite.key",
      async () => {
        const args = [
          "register",
          "--kontrol",
          kontrol.url,
          "--username",
          "alice",
        ];
        const wrong = await kitectl([...args, "--secret", "guess"], alice);
        assertEquals(wrong.code, 1, wrong.stderr);
        assertMatch(oneLine(wrong.stderr), /wrong secret/);
        const none = await Deno.stat(`${alice.KITE_HOME}/kite.key`).catch(() =>
          null
        );
        assertEquals(none, null, "a refused register wrote no kite.key");
        const ok = await kitectl([...args, "--json"], {
          ...alice,
          KITECTL_SECRET: SECRET,
        });
        assertEquals(ok.code, 0, ok.stderr);
        assertEquals(jsonLines(ok.stdout)[0].username, "alice");
        const own = await kitectl(
          [
            "register",
            "--kontrol",
            kontrol.url,
            "--username",
            "kontrol",
            "--secret",
            SECRET,
          ],
          { KITE_HOME: `${dir}/mallory` },
        );
        assertEquals(own.code, 1, "Kontrol's own user is not handed out");
      },
    );

    await t.step(
      "dashboard: the dashboard's address with a token for alice on Kontrol",
      async () => {
        const r = await kitectl(["dashboard", "--json"], alice);
        assertEquals(r.code, 0, r.stderr);
        const { url, username } = jsonLines(r.stdout)[0];
        assertEquals(username, "alice");
        const u = new URL(String(url));
        assertEquals(
          u.origin + u.pathname,
          new URL("/dashboard", kontrol.url).href,
        );
        const token = new URLSearchParams(u.hash.slice(1)).get("token") ?? "";
        const claims = JSON.parse(atob(
          token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"),
        ));
        assertEquals(claims.sub, "alice");
        assertMatch(claims.aud, /^\/kontrol\/[^/]*\/kontrol$/);
      },
    );

    await t.step("showkey: claims, Kontrol, verification", async () => {
      const r = await kitectl(["showkey", "--json"], alice);
      assertEquals(r.code, 0, r.stderr);
      const info = jsonLines(r.stdout)[0];
      assertEquals(info.username, "alice");
      assertEquals(info.issuer, "kontrol");
      assertEquals(info.kontrolURL, kontrol.url);
      assertEquals(info.verified, true);
      // A key whose signature does not match: exit 1, said why.
      const raw = await Deno.readTextFile(`${alice.KITE_HOME}/kite.key`);
      const [h, c, s] = raw.split(".");
      const forged = `${h}.${c}.${s.slice(0, -4)}AAAA`;
      await Deno.writeTextFile(`${dir}/forged.key`, forged);
      const bad = await kitectl(
        ["showkey", "--file", `${dir}/forged.key`],
        alice,
      );
      assertEquals(bad.code, 1);
      assertMatch(bad.stdout, /verifies\s+no: signature/);
    });

    let math: Kite | undefined;
    await t.step(
      "watch: REGISTER then DEREGISTER, ends after --count",
      async () => {
        const watch = startKitectl(
          ["watch", "/alice/test/math", "--count", "2", "--json"],
          alice,
        );
        await eventually(
          () => watch.output().stderr.includes("watching"),
          "kitectl watch to start",
          30_000,
        );
        const first = await startMath();
        await first.close();
        const r = await watch.done();
        assertEquals(r.code, 0, r.stderr);
        const events = jsonLines(r.stdout);
        assertEquals(events.map((e) => e.action), ["REGISTER", "DEREGISTER"]);
        assertEquals((events[0].kite as { id: string }).id, first.identity.id);
        assertEquals(events[0].url, first.registerURL);
        math = await startMath();
      },
    );

    await t.step("query: table and JSON", async () => {
      const json = await kitectl([
        "query",
        "--environment",
        "test",
        "--name",
        "math",
        "--json",
      ], alice);
      assertEquals(json.code, 0, json.stderr);
      const found = JSON.parse(json.stdout) as {
        kite: { id: string };
        url: string;
      }[];
      assertEquals(found.map((k) => k.kite.id), [math!.identity.id]);
      const text = await kitectl(
        ["query", "/alice/test/math", "--version", "^1.0"],
        alice,
      );
      assertEquals(text.code, 0, text.stderr);
      assertMatch(
        text.stdout,
        new RegExp(
          `KITE\\s+URL\\n/alice/.*/math/1\\.0\\.0/.*${math!.identity.id}`,
        ),
      );
      const none = await kitectl(
        ["query", "/alice/test/math", "--version", ">= 2"],
        alice,
      );
      assertEquals(none.stdout.trim(), "KITE  URL");
    });

    await t.step(
      "tell: by URL, by query through a pool, with a callback; ping; info",
      async () => {
        const direct = await kitectl(
          ["tell", math!.registerURL, "square", "4"],
          alice,
        );
        assertEquals(direct.code, 0, direct.stderr);
        assertEquals(JSON.parse(direct.stdout), 16);
        const echo = await kitectl(
          ["tell", "/alice/test/math", "echo", '{"a":[1,"x",null]}', "--json"],
          alice,
        );
        assertEquals(jsonLines(echo.stdout), [{
          result: { a: [1, "x", null] },
        }]);
        const cb = await kitectl(
          [
            "tell",
            "/alice/test/math",
            "squareCb",
            "3",
            '{"$fn":"done"}',
            "--callbacks",
            "1",
            "--json",
          ],
          alice,
        );
        assertEquals(cb.code, 0, cb.stderr);
        const lines = jsonLines(cb.stdout);
        assert(
          lines.some((l) =>
            l.callback === "done" && JSON.stringify(l.args) === "[9]"
          ),
          cb.stdout,
        );
        assert(lines.some((l) => l.result === 9), cb.stdout);
        const pong = await kitectl(
          ["ping", math!.registerURL, "--json"],
          alice,
        );
        assertEquals(jsonLines(pong.stdout)[0].answer, "pong");
        const info = await kitectl(
          ["info", "/alice/test/math", "--json"],
          alice,
        );
        assertEquals(info.code, 0, info.stderr);
        assert(
          "memoryTotal" in jsonLines(info.stdout)[0] ||
            "diskTotal" in jsonLines(info.stdout)[0],
          info.stdout,
        );
      },
    );

    await t.step(
      "keys: operator only; rotate, then a kite re-registers with a re-issued key",
      async () => {
        const refused = await kitectl(["keys", "list"], alice);
        assertEquals(refused.code, 1);
        assertMatch(oneLine(refused.stderr), /only Kontrol's own user kontrol/);
        const before = await kitectl(["keys", "list", "--json"], admin);
        assertEquals(before.code, 0, before.stderr);
        const [old] = JSON.parse(before.stdout) as {
          id: string;
          current: boolean;
        }[];
        assert(old.current);
        const rotated = await kitectl(["keys", "rotate", "--json"], admin);
        assertEquals(rotated.code, 0, rotated.stderr);
        const fresh = jsonLines(rotated.stdout)[0] as {
          id: string;
          public: string;
          retired: string;
        };
        assertEquals(fresh.retired, old.id);
        const after = JSON.parse(
          (await kitectl(["keys", "list", "--json"], admin)).stdout,
        ) as {
          id: string;
          deleted: boolean;
          current: boolean;
        }[];
        assertEquals(after.map((k) => [k.id, k.deleted, k.current]), [
          [old.id, true, false],
          [fresh.id, false, true],
        ]);
        const oldKey = math!.config.kiteKey;
        const result = await math!.register();
        assert(result.kiteKey, "register hands out a re-issued kite.key");
        assert(math!.config.kiteKey !== oldKey, "the kite uses it");
        assertEquals(
          decodeJwt(math!.config.kiteKey).claims.kontrolKey,
          fresh.public,
        );
        const last = await kitectl(["keys", "delete", fresh.id], admin);
        assertEquals(last.code, 1, "the last live pair cannot be retired");
        const found = await kitectl(
          ["query", "--environment", "test", "--name", "math", "--json"],
          alice,
        );
        assertEquals(JSON.parse(found.stdout).length, 1, found.stderr);
      },
    );

    await t.step("bad input: one line, non-zero exit", async () => {
      const cases: [string[], number, RegExp][] = [
        [["query", "--bogus"], 2, /unknown flag --bogus/],
        [
          ["tell", "http://127.0.0.1:1/kite", "square", "{nope"],
          2,
          /argument 1 is not JSON/,
        ],
        [["frobnicate"], 2, /unknown command frobnicate/],
        [["keys", "spin"], 2, /keys needs list, rotate or delete/],
        [
          ["ping", `http://127.0.0.1:${freePort()}/kite`, "--timeout", "3000"],
          1,
          /cannot connect to http:\/\/127\.0\.0\.1:\d+\/kite/,
        ],
        [["register", "--username", "x"], 2, /--kontrol is required/],
      ];
      for (const [args, code, text] of cases) {
        const r = await kitectl(args, alice);
        assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
        assertMatch(oneLine(r.stderr), text);
      }
      const help = await kitectl(["watch", "--help"], alice);
      assertEquals(help.code, 0);
      assertMatch(help.stdout, /Usage: deno task kitectl watch/);
    });
  } finally {
    for (const k of kites) await k.close();
    await kontrol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
