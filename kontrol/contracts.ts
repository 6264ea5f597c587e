/**
 * The contracts a kite registers with and `getKites`' contract filter
 * (docs/protocol.md §8.2, a Deno-only extension: Go kites and kite.js send
 * neither, and register and query exactly as before).
 *
 * @module
 */
import { satisfiesRange, SemVerRange, validSemVer } from "../kite/semver.ts";
import { KiteError } from "../kite/errors.ts";
import type { ContractQuery, ContractRef } from "../kite/protocol.ts";
import type { StoredKite } from "../storage/storage.ts";

/** Most contracts one registration may name. */
export const MAX_CONTRACTS = 16;

function field(v: unknown, what: string, maxLength: number): string {
  if (typeof v !== "string" || v === "") {
    throw new KiteError("argumentError", `${what} must be a non-empty string`);
  }
  if (v.length > maxLength) {
    throw new KiteError(
      "argumentError",
      `${what} is longer than ${maxLength} characters`,
    );
  }
  return v;
}

/**
 * Reads `register`'s optional `contracts` from untrusted input: absent
 * (`undefined`/`null`) stays absent; anything else must be a short list
 * of `{name, version}` with semver versions.
 * @throws {KiteError} `argumentError` naming the bad entry.
 */
export function contractsFromArgs(
  value: unknown,
  maxLength: number,
): ContractRef[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    throw new KiteError(
      "argumentError",
      "contracts must be a list of {name, version}",
    );
  }
  if (value.length > MAX_CONTRACTS) {
    throw new KiteError(
      "argumentError",
      `a kite may register at most ${MAX_CONTRACTS} contracts, got ${value.length}`,
    );
  }
  if (value.length === 0) return undefined;
  return value.map((c: unknown, i) => {
    const o = (c !== null && typeof c === "object" ? c : {}) as Record<
      string,
      unknown
    >;
    const name = field(o.name, `contracts[${i}].name`, maxLength);
    const version = field(o.version, `contracts[${i}].version`, maxLength);
    if (validSemVer(version) === undefined) {
      throw new KiteError(
        "argumentError",
        `contracts[${i}].version must be semver like 1.2.0, got ${version}`,
      );
    }
    return { name, version };
  });
}

/**
 * Reads `getKites`' optional `contract` filter from untrusted input.
 * @throws {KiteError} `argumentError` for a missing name or a version that
 * is not a semver range.
 */
export function contractQueryFromArgs(
  value: unknown,
  maxLength: number,
): ContractQuery | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new KiteError(
      "argumentError",
      "contract must be an object {name, version?}",
    );
  }
  const o = value as Record<string, unknown>;
  const name = field(o.name, "contract.name", maxLength);
  if (o.version === undefined || o.version === null || o.version === "") {
    return { name };
  }
  const version = field(o.version, "contract.version", maxLength);
  if (SemVerRange.parse(version) === undefined) {
    throw new KiteError(
      "argumentError",
      `contract.version must be a semver range like >=1.2.0 or ^1.2.0, got ${version}`,
    );
  }
  return { name, version };
}

/** True when `kite` registered a contract `query` accepts. */
export function servesContract(
  kite: Pick<StoredKite, "contracts">,
  query: ContractQuery,
): boolean {
  return (kite.contracts ?? []).some((c) =>
    c.name === query.name &&
    (!query.version || satisfiesRange(c.version, query.version))
  );
}
