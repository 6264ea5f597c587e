import { assert, assertEquals } from "../tests/helpers/assert.ts";
import semver from "semver";
import {
  compareSemVer,
  parseSemVer,
  satisfiesRange,
  SemVerRange,
  validSemVer,
} from "./semver.ts";

// The npm package is the reference: every case below is also asked of it,
// so a divergence in parsing, ordering or range membership fails here.

const PRERELEASES = [
  "",
  "-0",
  "-1",
  "-alpha",
  "-alpha.1",
  "-alpha.beta",
  "-beta",
  "-beta.2",
  "-beta.11",
  "-rc.1",
  "-x.7.z.92",
  "-0a",
  "--",
];

/** Valid versions around the bounds ranges produce. */
function versions(): string[] {
  const out: string[] = [];
  for (const major of [0, 1, 2, 3, 10]) {
    for (const minor of [0, 1, 2, 3]) {
      for (const patch of [0, 1, 2, 3, 4]) {
        for (const pre of PRERELEASES) {
          out.push(`${major}.${minor}.${patch}${pre}`);
        }
      }
    }
  }
  return out;
}

const ODD_VERSIONS = [
  "",
  " 1.2.3 ",
  "\t1.2.3\n",
  "v1.2.3",
  "vv1.2.3",
  "=1.2.3",
  "V1.2.3",
  "1.2",
  "1",
  "1.2.3.4",
  "01.2.3",
  "1.02.3",
  "1.2.03",
  "1.2.3-01",
  "1.2.3-00",
  "1.2.3-0",
  "1.2.3-",
  "1.2.3-alpha..1",
  "1.2.3-al_pha",
  "1.2.3+",
  "1.2.3+build",
  "1.2.3+build.1.x-y",
  "1.2.3-beta+exp.sha.5114f85",
  "1.0.0+20130313144700",
  "1.2.3-beta+",
  "a.b.c",
  "1.2.x",
  "-1.2.3",
  "1.2.3 4",
  "9007199254740991.0.0",
  "9007199254740992.0.0",
  "1.2.3-9007199254740993",
  "1.2.3-99999999999999999999",
  `1.2.3-${"a".repeat(250)}`,
  `1.2.3-${"a".repeat(251)}`,
  `1.2.3+${"b".repeat(250)}`,
];

const PARTIALS = [
  "*",
  "x",
  "X",
  "1",
  "1.x",
  "1.X",
  "1.*",
  "1.x.x",
  "1.2",
  "1.2.x",
  "1.2.*",
  "1.2.3",
  "1.2.4",
  "2",
  "2.0",
  "2.0.0",
  "0",
  "0.0",
  "0.0.x",
  "0.x",
  "0.1",
  "0.0.1",
  "0.1.2",
  "0.0.0",
  "10.2",
  "1.2.3-beta",
  "1.2.3-beta.2",
  "0.0.3-beta",
  "0.2.3-0",
  "2.0.0-alpha",
  "v1.2.3",
  "v1.2",
  "=1.2",
  "1.2.3+build",
  "1.2.x-beta",
  "x.1",
  "1.x.3",
  "*.1",
  "01.2",
  "1.2.3.4",
  "",
];

const OPERATORS = ["", "=", "<", "<=", ">", ">=", "~", "~>", "^"];

function ranges(): string[] {
  const single: string[] = [];
  for (const op of OPERATORS) {
    for (const p of PARTIALS) {
      single.push(op + p);
      if (op && p) single.push(`${op} ${p}`);
    }
  }
  const out = [...single];
  // Every pair would be 500k cases; a fixed stride covers each operator
  // against the others.
  for (let i = 0; i < single.length; i += 7) {
    for (let j = 3; j < single.length; j += 29) {
      out.push(`${single[i]} ${single[j]}`, `${single[i]} || ${single[j]}`);
    }
  }
  const ends = [
    "1",
    "1.2",
    "1.2.3",
    "1.2.x",
    "*",
    "x",
    "0.0.1",
    "1.2.3-beta",
    "2.3.4",
    "v1.2.3",
    "2",
    "2.3",
  ];
  for (const a of ends) for (const b of ends) out.push(`${a} - ${b}`);
  out.push(
    "^",
    "~",
    "~>",
    ">=",
    "<",
    "foo",
    "||",
    "1 || || 2",
    "1.2.3 -",
    "- 1.2.3",
    "1.2.3 - 2 - 3",
    "1.2.3 -2",
    "1.2.3- 2",
    ">= >= 1",
    "=>1",
    ">=1.2.3 <",
    "1.2.3junk",
    "  >=1.2.3   <2.0.0  ",
    ">=1.2.3\t<2",
    "1.x || >=2.5.0 || 5.0.0 - 7.2.3",
    ">=1.0.0-beta || *",
    "* || >=1.0.0-beta",
    "<0.0.0-0 || 1.2.3",
    ">1.2.3-alpha <1.2.3-beta",
    ">=1.2.3-beta.1 <1.2.4",
    ">=0.0.0",
    ">=0.0.0 || 1.2.3-beta",
    ">=0.0.0-0",
    "^0.0.x",
    "^0.x",
    "~0",
    "9007199254740991",
    "<=9007199254740991",
    "^9007199254740991",
    "99999999999999999999.x",
    "1.2.3 1.2.4",
    "1.2.3 || 1.2.3",
  );
  return out;
}

Deno.test("parseSemVer() and validSemVer() accept exactly what npm semver accepts", () => {
  for (const v of [...versions(), ...ODD_VERSIONS]) {
    assertEquals(
      validSemVer(v),
      semver.valid(v) ?? undefined,
      JSON.stringify(v),
    );
    assertEquals(
      parseSemVer(v)?.prerelease,
      semver.parse(v)?.prerelease,
      JSON.stringify(v),
    );
  }
});

Deno.test("compareSemVer() orders versions as npm semver does", () => {
  const all = [
    ...versions(),
    "1.2.3-99999999999999999999",
    "1.2.3-9007199254740993",
  ];
  const parsed = all.map((v) => parseSemVer(v)!);
  for (let i = 0; i < all.length; i += 3) {
    for (let j = 0; j < all.length; j += 5) {
      assertEquals(
        compareSemVer(parsed[i], parsed[j]),
        semver.compare(all[i], all[j]),
        `${all[i]} vs ${all[j]}`,
      );
    }
  }
});

Deno.test("SemVerRange agrees with npm semver on validity and membership", () => {
  const vs = [...versions(), ...ODD_VERSIONS];
  let checked = 0;
  for (const text of ranges()) {
    const ours = SemVerRange.parse(text);
    assertEquals(
      ours !== undefined,
      semver.validRange(text) !== null,
      `validity of ${JSON.stringify(text)}`,
    );
    if (!ours) continue;
    const theirs = new semver.Range(text);
    for (const v of vs) {
      if (ours.test(v) !== theirs.test(v)) {
        throw new Error(
          `${JSON.stringify(v)} in ${JSON.stringify(text)}: ours ${
            ours.test(v)
          }, npm ${theirs.test(v)}`,
        );
      }
      checked++;
    }
  }
  assert(checked > 500_000, `only ${checked} cases checked`);
});

Deno.test("SemVerRange follows the documented npm range forms", () => {
  const cases: [string, string[], string[]][] = [
    ["^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2", "1.3.0-beta"]],
    ["^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]],
    ["^0.0.3", ["0.0.3"], ["0.0.4"]],
    ["~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]],
    ["1.x", ["1.0.0", "1.9.9"], ["2.0.0", "2.0.0-0"]],
    ["1.2 - 2.3.4", ["1.2.0", "2.3.4"], ["2.3.5", "1.1.9"]],
    ["1.2.3 - 2", ["2.9.9"], ["3.0.0"]],
    [">=1 <2 || 3", ["1.5.0", "3.1.0"], ["2.0.0", "4.0.0"]],
    ["^1.2.3-beta.1", ["1.2.3-beta.2", "1.2.3"], ["1.2.4-alpha"]],
    ["*", ["0.0.0", "7.1.1"], ["1.0.0-rc.1"]],
    [">1.2", ["1.3.0"], ["1.2.9"]],
    ["<=1.2", ["1.2.9"], ["1.3.0", "1.3.0-0"]],
  ];
  for (const [range, inside, outside] of cases) {
    for (const v of inside) {
      assert(satisfiesRange(v, range), `${v} in ${range}`);
    }
    for (const v of outside) {
      assert(!satisfiesRange(v, range), `${v} not in ${range}`);
    }
  }
  assertEquals(SemVerRange.parse("1.x.3"), undefined);
  assertEquals(SemVerRange.parse("not a range"), undefined);
  assert(!satisfiesRange("1.2", "*"), "a version must be complete");
});
