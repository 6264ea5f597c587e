import {
  type KontrolQuery,
  makeIdentity,
  makeQuery,
} from "../kite/protocol.ts";
import { assert, assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { compileQuery, QueryError } from "./query.ts";

const PROD_MATH = { username: "alice", environment: "prod", name: "math" };

/** Versions from `candidates` a query with `version` accepts. */
function accepted(version: string, candidates: string[]): string[] {
  const q = compileQuery(makeQuery({ ...PROD_MATH, version }));
  return candidates.filter((v) =>
    q.matches(makeIdentity({ ...PROD_MATH, version: v }))
  );
}

function queryError(query: Partial<KontrolQuery>): string {
  return assertThrows(() => compileQuery(makeQuery(query)), QueryError)
    .message;
}

Deno.test("compileQuery() prefix holds the leading exact fields", () => {
  assertEquals(compileQuery(makeQuery({ username: "alice" })).prefix, [
    "alice",
  ]);
  assertEquals(
    compileQuery(makeQuery({ ...PROD_MATH, version: "1.0.0", region: "eu" }))
      .prefix,
    ["alice", "prod", "math", "1.0.0", "eu"],
  );
  const full = makeIdentity({
    ...PROD_MATH,
    version: "1.0.0",
    region: "eu",
    hostname: "h",
    id: "x",
  });
  assertEquals(compileQuery(full).prefix, [
    "alice",
    "prod",
    "math",
    "1.0.0",
    "eu",
    "h",
    "x",
  ]);
});

Deno.test("compileQuery() prefix stops before a version range", () => {
  const q = compileQuery(
    makeQuery({ ...PROD_MATH, version: "^1.0.0", region: "eu" }),
  );
  assertEquals(q.prefix, ["alice", "prod", "math"]);
  assertEquals(q.idOnly, false);
  const kite = makeIdentity({ ...PROD_MATH, version: "1.3.0", region: "eu" });
  assert(q.matches(kite));
  assert(!q.matches({ ...kite, region: "us" }), "region still filters");
  assert(!q.matches({ ...kite, version: "2.0.0" }), "range still filters");
});

Deno.test("compileQuery() recognises an id-only query", () => {
  const q = compileQuery(makeQuery({ id: "abc" }));
  assertEquals([q.idOnly, q.prefix], [true, []]);
  assert(q.matches(makeIdentity({ username: "anyone", id: "abc" })));
  assert(!q.matches(makeIdentity({ username: "anyone", id: "abcd" })));
  const full = makeIdentity({
    ...PROD_MATH,
    version: "1.0.0",
    region: "eu",
    hostname: "h",
    id: "abc",
  });
  assertEquals(compileQuery(full).idOnly, false, "a full query is not id-only");
});

Deno.test("compileQuery() requires a username except for id-only", () => {
  assertEquals(queryError({}), "Empty username field");
  assertEquals(queryError({ name: "math" }), "Empty username field");
  assertEquals(queryError({ name: "math", id: "x" }), "Empty username field");
});

Deno.test("compileQuery() rejects gaps, naming the field Go names", () => {
  const prefix = "Invalid query. Query option is not set: ";
  assertEquals(
    queryError({ username: "a", name: "n" }),
    prefix + "environment",
  );
  // Go keeps the last empty field seen before the offending one.
  assertEquals(
    queryError({ username: "a", version: "1.0.0" }),
    prefix + "name",
  );
  assertEquals(queryError({ username: "a", id: "x" }), prefix + "hostname");
  assertEquals(
    queryError({ ...PROD_MATH, version: ">= 1.0", hostname: "h" }),
    prefix + "region",
    "gaps after a range are rejected too",
  );
});

Deno.test("compileQuery() compares other fields exactly, not as prefixes", () => {
  const q = compileQuery(
    makeQuery({ ...PROD_MATH, version: "1.0.0", region: "eu" }),
  );
  const kite = makeIdentity({ ...PROD_MATH, version: "1.0.0", region: "eu" });
  assert(q.matches(kite));
  assert(!q.matches({ ...kite, region: "eu-west" }));
  assert(!q.matches({ ...kite, username: "alice2" }));
  assert(!q.matches({ ...kite, name: "mat" }));
});

Deno.test("compileQuery() treats a plain version as a literal string", () => {
  const versions = ["1.0.0", "1.0", "v1.0.0", "1.0.0-beta", "1"];
  assertEquals(accepted("1.0.0", versions), ["1.0.0"]);
  assertEquals(accepted("1.0", versions), ["1.0"]);
  assertEquals(accepted("v1.0.0", versions), ["v1.0.0"]);
  assertEquals(accepted("1", versions), ["1"]);
  assertEquals(accepted("1.0.0beta", ["1.0.0beta", "1.0.0-beta"]), [
    "1.0.0beta",
  ]);
});

Deno.test("compileQuery() evaluates Go (hashicorp) constraints", () => {
  const vs = ["0.9.0", "1.0.0", "1.0", "1.1.0", "1.1.7", "1.2.0", "2.0.0"];
  assertEquals(accepted(">= 1.0, < 2.0", vs), [
    "1.0.0",
    "1.0",
    "1.1.0",
    "1.1.7",
    "1.2.0",
  ]);
  // `> 1` is `> 1.0.0` in Go; npm would read it as `>= 2.0.0`.
  assertEquals(accepted("> 1", vs), ["1.1.0", "1.1.7", "1.2.0", "2.0.0"]);
  assertEquals(accepted("~> 1.1", vs), ["1.1.0", "1.1.7", "1.2.0"]);
  assertEquals(accepted("~> 1.1.0", vs), ["1.1.0", "1.1.7"]);
  assertEquals(accepted("~> 1", vs), vs.slice(1), "lower bound only");
  assertEquals(accepted("!= 1.1.0", vs), vs.filter((v) => v !== "1.1.0"));
  assertEquals(accepted("= 1.0", vs), ["1.0.0", "1.0"]);
  assertEquals(accepted("<=1.0.0,>0.9", vs), ["1.0.0", "1.0"]);
});

Deno.test("compileQuery() evaluates npm semver ranges", () => {
  const vs = ["0.9.0", "1.0.0", "1.2.0", "1.2.9", "1.3.0", "2.0.0"];
  assertEquals(accepted("^1.2.0", vs), ["1.2.0", "1.2.9", "1.3.0"]);
  assertEquals(accepted("~1.2", vs), ["1.2.0", "1.2.9"]);
  assertEquals(accepted("1.x", vs), ["1.0.0", "1.2.0", "1.2.9", "1.3.0"]);
  assertEquals(accepted(">=1 <2", vs), ["1.0.0", "1.2.0", "1.2.9", "1.3.0"]);
  assertEquals(accepted("1.2 - 1.3", vs), ["1.2.0", "1.2.9", "1.3.0"]);
  assertEquals(accepted("<1 || >=2", vs), ["0.9.0", "2.0.0"]);
});

Deno.test("compileQuery() never matches a range against a non-version", () => {
  assertEquals(accepted(">= 0.0.0", ["junk", "1.2.3.4", "", "1.0.0"]), [
    "1.0.0",
  ]);
});

Deno.test("compileQuery() reports a malformed constraint, every time", () => {
  for (const v of ["latest", ">>1", ">=", "1.0,", "1.0.0 -"]) {
    assertEquals(
      queryError({ ...PROD_MATH, version: v }),
      `Malformed constraint: ${v}`,
    );
    // The second call hits the cache and must still throw.
    assertEquals(
      queryError({ ...PROD_MATH, version: v }),
      `Malformed constraint: ${v}`,
    );
  }
});

Deno.test("compileQuery() gives the same answers from its cache", () => {
  const vs = ["1.0.0", "1.5.0", "2.0.0"];
  const first = accepted(">= 1.1, < 2.0", vs);
  for (let i = 0; i < 1_000; i++) {
    // Push the first constraint out of the bounded cache.
    accepted(`>= 0.${i}.0`, vs);
  }
  assertEquals(accepted(">= 1.1, < 2.0", vs), first);
  assertEquals(first, ["1.5.0"]);
});

Deno.test("compileQuery() rejects a field that is not a string", () => {
  const query = { ...makeQuery(PROD_MATH), version: 1 } as unknown;
  const error = assertThrows(
    () => compileQuery(query as KontrolQuery),
    QueryError,
  );
  assertEquals(error.message, "Invalid query field: version must be a string");
});

Deno.test("compileQuery() fills missing fields with empty strings", () => {
  const q = compileQuery({ username: "alice" } as KontrolQuery);
  assertEquals(q.query, makeQuery({ username: "alice" }));
  assertEquals(q.prefix, ["alice"]);
});
