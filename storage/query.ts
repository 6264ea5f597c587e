/**
 * Query semantics shared by every storage adapter (docs/protocol.md §8.4). Adapters call
 * {@linkcode compileQuery} once per query, use `prefix` / `idOnly` to narrow
 * what they read, and `matches` to filter what they read.
 *
 * Rules, following the Go etcd backend:
 *
 * - `username` is required (`Empty username field`), except for a query that
 *   sets only `id`.
 * - No gaps: once a field is empty every later one must be empty, else
 *   `Invalid query. Query option is not set: <field>`.
 * - `version` is either a plain version (`1.0.0`, `1.0`, `v1.2.3`), compared
 *   as a literal string, or a constraint. Constraints use hashicorp syntax
 *   (`>= 1.0, < 2.0`, `~> 1.1`, `!= 1.2.0`) or, failing that, an npm semver
 *   range (`^1.2.0`, `1.x`, `>=1 <2`).
 * - Every other field is compared for equality.
 *
 * @example
 * ```ts
 * import { compileQuery } from "./query.ts";
 * import { makeIdentity, makeQuery } from "../kite/protocol.ts";
 *
 * const q = compileQuery(makeQuery({ username: "alice", environment: "prod", name: "math", version: "^1.0.0" }));
 * q.prefix; // ["alice", "prod", "math"]
 * q.matches(makeIdentity({ username: "alice", environment: "prod", name: "math", version: "1.4.0" })); // true
 * ```
 *
 * @module
 */
import {
  type KiteIdentity,
  type KontrolQuery,
  QUERY_FIELDS,
  type QueryField,
} from "../kite/protocol.ts";
import {
  compareSemVer,
  parseSemVer,
  type SemVer,
  SemVerRange,
} from "../kite/semver.ts";

/** An invalid query; `message` is the text shown to the caller (docs/protocol.md §8.4). */
export class QueryError extends Error {
  /** Creates a query error with the user-facing `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QueryError";
  }
}

/** A validated query, ready to be run against a store. */
export interface CompiledQuery {
  /** The query as given (missing fields filled with `""`). */
  query: KontrolQuery;
  /** Leading non-empty fields matched exactly (stops before a version range), usable as a key prefix. */
  prefix: string[];
  /** Only `id` is set. */
  idOnly: boolean;
  /** True when the kite matches every non-empty field. */
  matches(kite: KiteIdentity): boolean;
}

/** Most distinct version constraints / kite versions kept compiled. */
const CACHE_LIMIT = 512;

type VersionTest = (version: string) => boolean;

/**
 * Validates `query` and compiles it.
 * @throws {QueryError} for a missing username, a gap, or a malformed version
 * constraint.
 */
export function compileQuery(query: KontrolQuery): CompiledQuery {
  const q = normalize(query);
  const filled = QUERY_FIELDS.filter((f) => q[f] !== "");

  if (filled.length === 1 && filled[0] === "id") {
    const id = q.id;
    return { query: q, prefix: [], idOnly: true, matches: (k) => k.id === id };
  }
  if (q.username === "") throw new QueryError("Empty username field");

  // Go reports the empty field just before the first non-empty one that
  // follows a gap (kontrol/etcd.go GetQueryKey), so `{username, version}`
  // names `name`, not `environment`.
  let lastEmpty: QueryField | undefined;
  for (const f of QUERY_FIELDS) {
    if (q[f] === "") lastEmpty = f;
    else if (lastEmpty) {
      throw new QueryError(
        `Invalid query. Query option is not set: ${lastEmpty}`,
      );
    }
  }

  const versionTest = q.version !== "" && !isPlainVersion(q.version)
    ? constraintTest(q.version)
    : undefined;

  const prefix: string[] = [];
  for (const f of filled) {
    if (f === "version" && versionTest) break;
    prefix.push(q[f]);
  }

  // Deliberately exact equality for region/hostname/id: Go's constraint path
  // compares "/region/hostname/id" as a string prefix, so region `eu` matched
  // `eu-west` there (docs/protocol.md §8.4); we do not reproduce that.
  const exact = filled.filter((f) => !(f === "version" && versionTest));
  const matches = (kite: KiteIdentity): boolean => {
    for (const f of exact) if (kite[f] !== q[f]) return false;
    return versionTest ? versionTest(kite.version) : true;
  };
  return { query: q, prefix, idOnly: false, matches };
}

function normalize(query: KontrolQuery): KontrolQuery {
  const out = {} as KontrolQuery;
  for (const f of QUERY_FIELDS) {
    const v: unknown = query?.[f] ?? "";
    if (typeof v !== "string") {
      throw new QueryError(`Invalid query field: ${f} must be a string`);
    }
    out[f] = v;
  }
  return out;
}

// A version as hashicorp/go-version accepts it: optional `v`, dot-separated
// numbers, an optional pre-release (after `-`, or letters straight after the
// numbers) and optional `+build` metadata.
const PART = "[0-9A-Za-z~-]+";
const VERSION_SOURCE = `v?(\\d+(?:\\.\\d+)*)` +
  `(?:-(${PART}(?:\\.${PART})*)|([A-Za-z~-][0-9A-Za-z~-]*(?:\\.${PART})*))?` +
  `(?:\\+(${PART}(?:\\.${PART})*))?`;
const VERSION_RE = new RegExp(`^${VERSION_SOURCE}$`);
const CONSTRAINT_RE = new RegExp(
  `^\\s*(~>|>=|<=|!=|=|>|<)?\\s*(${VERSION_SOURCE})\\s*$`,
);

/** True when `text` is a plain version in go-version's grammar (docs/protocol.md §8.4). */
function isPlainVersion(text: string): boolean {
  return VERSION_RE.test(text);
}

interface ParsedVersion {
  /** As a semantic version (three numeric parts). */
  semver: SemVer;
  /** Numeric segments as written (before padding). */
  segments: number[];
}

/** Parses a go-version style version into semver form, or `undefined`. */
function parseVersion(text: string): ParsedVersion | undefined {
  const m = VERSION_RE.exec(text);
  if (!m) return undefined;
  const segments = m[1].split(".").map(Number);
  if (segments.length > 3 || !segments.every(Number.isSafeInteger)) {
    return undefined;
  }
  const padded = [...segments, 0, 0].slice(0, 3).join(".");
  const pre = m[2] ?? m[3];
  const parsed = parseSemVer(
    padded + (pre ? `-${pre}` : "") + (m[4] ? `+${m[4]}` : ""),
  );
  return parsed ? { semver: parsed, segments } : undefined;
}

const kiteVersions = new Map<string, SemVer | null>();

/** A kite's version in semver form, cached; `undefined` when not a version. */
function kiteSemver(version: string): SemVer | undefined {
  let v = kiteVersions.get(version);
  if (v === undefined) {
    v = parseVersion(version)?.semver ?? null;
    remember(kiteVersions, version, v);
  }
  return v ?? undefined;
}

const constraints = new Map<string, VersionTest | QueryError>();

/** The compiled test for a version constraint, cached. */
function constraintTest(text: string): VersionTest {
  let test = constraints.get(text);
  if (test === undefined) {
    test = parseHashicorp(text) ?? parseNpm(text) ??
      new QueryError(`Malformed constraint: ${text}`);
    remember(constraints, text, test);
  }
  if (test instanceof QueryError) throw new QueryError(test.message);
  return test;
}

/** Parses `>= 1.0, < 2.0` style constraints (comma = AND), or `undefined`. */
function parseHashicorp(text: string): VersionTest | undefined {
  const comparators: string[] = [];
  const excluded: SemVer[] = [];
  for (const part of text.split(",")) {
    const m = CONSTRAINT_RE.exec(part);
    if (!m) return undefined;
    const op = m[1] ?? "=";
    const v = parseVersion(m[2]);
    if (!v) return undefined;
    if (op === "!=") excluded.push(v.semver);
    else if (op === "~>") comparators.push(pessimistic(v));
    else comparators.push(`${op}${v.semver.version}`);
  }
  // Only `!=` parts: no range, so pre-releases are not excluded (go-version
  // applies its pre-release rule to ordering operators only).
  const range = comparators.length
    ? SemVerRange.parse(comparators.join(" "))
    : undefined;
  if (comparators.length && !range) return undefined;
  return (version) => {
    const v = kiteSemver(version);
    if (v === undefined || (range && !range.test(v))) return false;
    return excluded.every((x) => compareSemVer(v, x) !== 0);
  };
}

/**
 * `~> 1.2` allows 1.2 up to (not including) 2.0; `~> 1.2.3` up to 1.3.0;
 * `~> 1` only sets the lower bound, as go-version does.
 */
function pessimistic(v: ParsedVersion): string {
  const [major, minor] = v.segments;
  const text = v.semver.version;
  switch (v.segments.length) {
    case 1:
      return `>=${text}`;
    case 2:
      return `>=${text} <${major + 1}.0.0-0`;
    default:
      return `>=${text} <${major}.${minor + 1}.0-0`;
  }
}

/** Parses an npm semver range (`^1.2.0`, `1.x`, `>=1 <2`), or `undefined`. */
function parseNpm(text: string): VersionTest | undefined {
  const range = SemVerRange.parse(text);
  if (!range) return undefined; // not a range in this syntax either: caller reports it
  return (version) => {
    const v = kiteSemver(version);
    return v !== undefined && range.test(v);
  };
}

/** Stores into a bounded cache, dropping the oldest entry when full. */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) {
    cache.delete(cache.keys().next().value as string);
  }
  cache.set(key, value);
}
