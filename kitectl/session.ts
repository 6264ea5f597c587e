/**
 * What kitectl's subcommands share: the kite kitectl calls from, the
 * query flags, and turning a `/user/env/name/…` string into a query.
 *
 * @module
 */
import {
  Kite,
  type KiteConfig,
  kiteFromString,
  type KontrolQuery,
  makeQuery,
  QUERY_FIELDS,
} from "../mod.ts";
import denoJson from "../deno.json" with { type: "json" };
import { type FlagSpec, intFlag, type Parsed, UsageError } from "./cli.ts";

/** kitectl's version: the package's. */
export const KITECTL_VERSION: string = denoJson.version;

/** `--kontrol URL`: overrides the kite.key's `kontrolURL` and `KITE_KONTROL_URL`. */
export const KONTROL_FLAG: FlagSpec = {
  name: "kontrol",
  value: true,
  help: "Kontrol URL (default: the kite.key's kontrolURL, or KITE_KONTROL_URL)",
};

/** One flag per query field (`--username`, `--environment`, …). */
export const QUERY_FLAGS: FlagSpec[] = QUERY_FIELDS.map((f) => ({
  name: f,
  value: true,
  help: f === "version"
    ? "version or range (`1.0.0`, `^1.2`, `>= 1.0, < 2.0`)"
    : `match kites whose ${f} is this`,
}));

/**
 * The query of the command line: `/user/env/name/…` (a prefix of
 * docs/protocol.md §4.2) when `text` is given, then the field flags over it.
 * @throws {UsageError} when the string is malformed.
 */
export function queryFrom(p: Parsed, text?: string): KontrolQuery {
  let base: Partial<KontrolQuery> = {};
  if (text !== undefined) {
    try {
      base = kiteFromString(text.startsWith("/") ? text : `/${text}`);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const fields: Partial<KontrolQuery> = { ...base };
  for (const f of QUERY_FIELDS) {
    const v = p.flags.get(f);
    if (v !== undefined) fields[f] = v;
  }
  return makeQuery(fields);
}

/**
 * `query` with the caller's own username when it names none: Kontrol
 * requires one (docs/protocol.md §8.2).
 */
export function ownedQuery(query: KontrolQuery, kite: Kite): KontrolQuery {
  return query.username ? query : { ...query, username: kite.config.username };
}

/**
 * The kite kitectl calls from (it never serves). Logs only errors, so
 * stdout stays for the command's output.
 */
export function callerKite(
  p: Parsed,
  extra: { kiteKey?: false; config?: Partial<KiteConfig> } = {},
): Kite {
  const config: Partial<KiteConfig> = { logLevel: "ERROR", ...extra.config };
  const kontrol = p.flags.get("kontrol");
  if (kontrol) config.kontrolURL = kontrol;
  const timeout = intFlag(p, "timeout", 0);
  if (timeout > 0) config.timeoutMs = timeout;
  return new Kite("kitectl", KITECTL_VERSION, {
    config,
    ...(extra.kiteKey === false ? { kiteKey: false } : {}),
  });
}

/** True when `target` is a kite URL rather than a query. */
export function isURL(target: string): boolean {
  return /^(https?|wss?):\/\//i.test(target);
}
