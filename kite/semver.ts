/**
 * Semantic versions (semver.org 2.0.0) and npm-style version ranges: the
 * part of the `semver` npm package that queries and contracts use — strict
 * version parsing, ordering, and `^1.2.0`, `~1.2`, `1.x`, `1.2 - 2`,
 * `>=1 <2 || 3` ranges with npm's pre-release rule. Written here because
 * loading the CommonJS package cost Kontrol about 50 ms of every start;
 * `semver_test.ts` checks it against the package over many versions and
 * ranges.
 *
 * @module
 */

/** A parsed version. Build metadata is dropped: it never affects order. */
export interface SemVer {
  /** Major number. */
  readonly major: number;
  /** Minor number. */
  readonly minor: number;
  /** Patch number. */
  readonly patch: number;
  /** Pre-release identifiers; all-digit ones as numbers. */
  readonly prerelease: readonly (string | number)[];
  /** Canonical text: `major.minor.patch[-prerelease]`. */
  readonly version: string;
}

/** Longest version text accepted (npm's limit). */
const MAX_LENGTH = 256;

const NUM = "0|[1-9]\\d*";
const PRE_ID = `(?:${NUM}|\\d*[A-Za-z-][0-9A-Za-z-]*)`;
const PRE = `(?:-(${PRE_ID}(?:\\.${PRE_ID})*))`;
const BUILD = "(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)";
const VERSION_RE = new RegExp(
  `^v?(${NUM})\\.(${NUM})\\.(${NUM})${PRE}?${BUILD}?$`,
);
const BUILD_RE = new RegExp(BUILD, "g");
const X_ID = `${NUM}|[xX*]`;
/** A partial version as ranges write it: leading `v`/`=`, parts may be x. */
const PARTIAL_RE = new RegExp(
  `^[v=]*(${X_ID})(?:\\.(${X_ID})(?:\\.(${X_ID})${PRE}?)?)?$`,
);
const PARTIAL_TEXT = `[v=]*(?:${X_ID})(?:\\.(?:${X_ID})(?:\\.(?:${X_ID})` +
  `(?:-${PRE_ID}(?:\\.${PRE_ID})*)?)?)?`;
const HYPHEN_RE = new RegExp(`^(${PARTIAL_TEXT}) - (${PARTIAL_TEXT})$`);
const OPERATOR_RE = /^(<=|>=|<|>|=|~>|~|\^)?(.*)$/s;

/** Parses a strict semantic version (surrounding space and one `v` allowed). */
export function parseSemVer(text: string): SemVer | undefined {
  if (typeof text !== "string" || text.length > MAX_LENGTH) return undefined;
  const m = VERSION_RE.exec(text.trim());
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const prerelease = m[4] === undefined ? [] : m[4].split(".").map((id) => {
    const n = Number(id);
    return /^\d+$/.test(id) && Number.isSafeInteger(n) ? n : id;
  });
  const version = `${major}.${minor}.${patch}` +
    (m[4] === undefined ? "" : `-${m[4]}`);
  return { major, minor, patch, prerelease, version };
}

/** The canonical form of `text` when it is a valid version, else `undefined`. */
export function validSemVer(text: string): string | undefined {
  return parseSemVer(text)?.version;
}

function compareIds(a: string | number, b: string | number): number {
  const an = typeof a === "number" || /^\d+$/.test(a);
  const bn = typeof b === "number" || /^\d+$/.test(b);
  if (an && bn) return Math.sign(Number(a) - Number(b));
  if (an !== bn) return an ? -1 : 1; // numeric identifiers sort first
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders two versions: negative, zero or positive, as semver.org §11. */
export function compareSemVer(a: SemVer, b: SemVer): number {
  const main = Math.sign(a.major - b.major) || Math.sign(a.minor - b.minor) ||
    Math.sign(a.patch - b.patch);
  if (main) return main;
  const ap = a.prerelease, bp = b.prerelease;
  // A release follows its pre-releases.
  if (!ap.length || !bp.length) return ap.length ? -1 : bp.length ? 1 : 0;
  for (let i = 0; i < Math.max(ap.length, bp.length); i++) {
    if (i >= ap.length) return -1;
    if (i >= bp.length) return 1;
    const c = compareIds(ap[i], bp[i]);
    if (c) return c;
  }
  return 0;
}

type Operator = "<" | "<=" | ">" | ">=" | "=";

/** One bound; `undefined` version: any version (npm's empty comparator). */
interface Comparator {
  op: Operator;
  version?: SemVer;
}

function passes(c: Comparator, v: SemVer): boolean {
  if (!c.version) return true;
  const d = compareSemVer(v, c.version);
  switch (c.op) {
    case "<":
      return d < 0;
    case "<=":
      return d <= 0;
    case ">":
      return d > 0;
    case ">=":
      return d >= 0;
    default:
      return d === 0;
  }
}

/** Thrown inside the parser for text that is not a range. */
class NotARange extends Error {}

function bound(
  op: Operator,
  major: number,
  minor = 0,
  patch = 0,
  pre = "",
): Comparator {
  const version = parseSemVer(`${major}.${minor}.${patch}${pre}`);
  if (!version) throw new NotARange();
  return { op, version };
}

function exact(op: Operator, text: string): Comparator {
  const version = parseSemVer(text);
  if (!version) throw new NotARange();
  return { op, version };
}

const isX = (id: string | undefined) => id === undefined || /^[xX*]$/.test(id);

interface Partial {
  major?: number;
  minor?: number;
  patch?: number;
  pre: string;
  /** No number follows an x (`1.x.3` is not a range, `^1.x.3` is `^1`). */
  ordered: boolean;
}

/** `1.2.x` → `{major: 1, minor: 2}`: the leading parts up to the first x. */
function partial(text: string): Partial | undefined {
  const m = PARTIAL_RE.exec(text);
  if (!m) return undefined;
  const ids = [m[1], m[2], m[3]];
  const firstX = ids.findIndex(isX);
  const out: Partial = {
    pre: m[4] === undefined ? "" : `-${m[4]}`,
    ordered: firstX < 0 || ids.slice(firstX).every(isX),
  };
  if (isX(m[1])) return out;
  out.major = Number(m[1]);
  if (isX(m[2])) return out;
  out.minor = Number(m[2]);
  if (isX(m[3])) return out;
  out.patch = Number(m[3]);
  return out;
}

const ANY: Comparator = { op: ">=" };
const NOTHING = (): Comparator => bound("<", 0, 0, 0, "-0");

/** `^1.2.3`: changes that keep the left-most non-zero part. */
function caret(p: Partial): Comparator[] {
  const { major: M, minor: m, patch: pt, pre } = p;
  if (M === undefined) return [ANY];
  if (m === undefined) return [bound(">=", M), bound("<", M + 1, 0, 0, "-0")];
  if (pt === undefined) {
    return [
      bound(">=", M, m),
      M === 0 ? bound("<", 0, m + 1, 0, "-0") : bound("<", M + 1, 0, 0, "-0"),
    ];
  }
  const upper = M !== 0
    ? bound("<", M + 1, 0, 0, "-0")
    : m !== 0
    ? bound("<", 0, m + 1, 0, "-0")
    : bound("<", 0, 0, pt + 1, "-0");
  return [bound(">=", M, m, pt, pre), upper];
}

/** `~1.2.3`: patch-level changes (minor-level when only the major is given). */
function tilde(p: Partial): Comparator[] {
  const { major: M, minor: m, patch: pt, pre } = p;
  if (M === undefined) return [ANY];
  if (m === undefined) return [bound(">=", M), bound("<", M + 1, 0, 0, "-0")];
  return [
    bound(">=", M, m, pt ?? 0, pt === undefined ? "" : pre),
    bound("<", M, m + 1, 0, "-0"),
  ];
}

/** `>=1.2`, `1.x`, `<=1` and plain versions. */
function primitive(op: Operator | "", rest: string): Comparator[] {
  const p = partial(rest);
  if (!p?.ordered) throw new NotARange();
  const { major: M, minor: m, patch: pt } = p;
  if (pt !== undefined) return [exact(op || "=", rest)];
  if (M === undefined) return op === "<" || op === ">" ? [NOTHING()] : [ANY];
  if (op === "" || op === "=") {
    return m === undefined
      ? [bound(">=", M), bound("<", M + 1, 0, 0, "-0")]
      : [bound(">=", M, m), bound("<", M, m + 1, 0, "-0")];
  }
  switch (op) {
    case ">":
      return [m === undefined ? bound(">=", M + 1) : bound(">=", M, m + 1)];
    case "<=":
      return [
        m === undefined
          ? bound("<", M + 1, 0, 0, "-0")
          : bound("<", M, m + 1, 0, "-0"),
      ];
    case "<":
      return [bound("<", M, m ?? 0, 0, "-0")];
    default:
      return [bound(">=", M, m ?? 0)];
  }
}

/** `1.2 - 2.3.4`: inclusive at both ends, as far as each end is written. */
function hyphen(from: string, to: string): Comparator[] {
  const f = partial(from), t = partial(to);
  if (!f || !t) throw new NotARange();
  const out: Comparator[] = [];
  if (f.major !== undefined) {
    out.push(
      f.patch === undefined
        ? bound(">=", f.major, f.minor ?? 0)
        : exact(">=", from),
    );
  }
  if (t.major !== undefined) {
    out.push(
      t.minor === undefined
        ? bound("<", t.major + 1, 0, 0, "-0")
        : t.patch === undefined
        ? bound("<", t.major, t.minor + 1, 0, "-0")
        : exact("<=", to),
    );
  }
  return out.length ? out : [ANY];
}

function comparators(token: string): Comparator[] {
  const [, op = "", rest] = OPERATOR_RE.exec(token)!;
  if (op === "^" || op === "~" || op === "~>") {
    const p = partial(rest);
    if (!p) throw new NotARange();
    return op === "^" ? caret(p) : tilde(p);
  }
  return primitive(op as Operator | "", rest);
}

const OPERATOR_ONLY = new Set(["<", ">", "<=", ">=", "=", "~", "~>", "^"]);

/** One `||` alternative: comparators that must all hold. */
function parseSet(text: string): Comparator[] {
  const s = text.replace(BUILD_RE, "").trim();
  const h = HYPHEN_RE.exec(s);
  if (h) return hyphen(h[1], h[2]);
  const tokens = s.split(" ");
  const out: Comparator[] = [];
  for (let i = 0; i < tokens.length; i++) {
    let token = tokens[i];
    // `>= 1.2` and `~ 1.2` are one comparator (npm trims the space).
    if (OPERATOR_ONLY.has(token) && i + 1 < tokens.length) {
      token += tokens[++i];
    }
    if (token === "") continue;
    out.push(...comparators(token));
  }
  const bounded = out.filter((c) => c.version && !isZero(c));
  return bounded.length ? bounded : [ANY];
}

/** `>=0.0.0` admits every release: npm treats it as no bound at all. */
function isZero(c: Comparator): boolean {
  const v = c.version!;
  return c.op === ">=" && v.major === 0 && v.minor === 0 && v.patch === 0 &&
    v.prerelease.length === 0;
}

/** A parsed npm-style range: any of its sets, each all of its comparators. */
export class SemVerRange {
  readonly #sets: Comparator[][];

  private constructor(sets: Comparator[][]) {
    this.#sets = sets;
  }

  /** Parses `text` (`^1.2.0`, `>=1 <2 || 3.x`, `1.2 - 2`), or `undefined`. */
  static parse(text: string): SemVerRange | undefined {
    if (typeof text !== "string") return undefined;
    try {
      const sets = text.trim().replace(/\s+/g, " ").split("||").map((s) =>
        parseSet(s.trim())
      );
      // One `*` alternative makes the whole range `*` (npm), which also
      // stops pre-releases the other alternatives would have admitted.
      const any = sets.find((s) => s.length === 1 && s[0] === ANY);
      return new SemVerRange(any && sets.length > 1 ? [any] : sets);
    } catch (err) {
      if (err instanceof NotARange) return undefined;
      throw err;
    }
  }

  /**
   * True when `version` is in the range. A pre-release is in it only when
   * some comparator of its set names a pre-release of the same
   * major.minor.patch (npm's rule: `^1.2.3-beta.1` admits `1.2.3-beta.2`,
   * not `1.2.4-alpha`).
   */
  test(version: string | SemVer): boolean {
    const v = typeof version === "string" ? parseSemVer(version) : version;
    if (!v) return false;
    return this.#sets.some((set) =>
      set.every((c) => passes(c, v)) &&
      (v.prerelease.length === 0 || set.some((c) =>
        c.version !== undefined && c.version.prerelease.length > 0 &&
        c.version.major === v.major && c.version.minor === v.minor &&
        c.version.patch === v.patch
      ))
    );
  }
}

/** Most distinct ranges {@linkcode satisfiesRange} keeps parsed. */
const RANGE_CACHE_LIMIT = 256;
const parsedRanges = new Map<string, SemVerRange | null>();

/**
 * True when `version` is a valid version inside the npm-style `range`
 * (false for a malformed range). Recently used ranges stay parsed: a filter
 * asks the same range of every candidate.
 */
export function satisfiesRange(version: string, range: string): boolean {
  let parsed = parsedRanges.get(range);
  if (parsed === undefined) {
    parsed = SemVerRange.parse(range) ?? null;
    if (parsedRanges.size >= RANGE_CACHE_LIMIT) {
      parsedRanges.delete(parsedRanges.keys().next().value as string);
    }
    parsedRanges.set(range, parsed);
  }
  return typeof version === "string" && (parsed?.test(version) ?? false);
}
