/**
 * Wire-level identity and query types shared by kites, Kontrol and storage
 * (docs/protocol.md §4, §8.2, §8.4).
 *
 * @module
 */

/**
 * The seven fields that identify a kite. JSON key order is the Go order
 * (`name, username, id, environment, region, version, hostname`, docs/protocol.md §4.1).
 */
export interface KiteIdentity {
  /** Kind of service, e.g. `math`. */
  name: string;
  /** Owner of the kite. */
  username: string;
  /** Instance id, a UUID v4 generated at start. */
  id: string;
  /** Deployment environment. */
  environment: string;
  /** Location. */
  region: string;
  /** Three-part version string. */
  version: string;
  /** Host the kite runs on. */
  hostname: string;
}

/** The identity field names from general to specific (docs/protocol.md §8.4). */
export const QUERY_FIELDS = [
  "username",
  "environment",
  "name",
  "version",
  "region",
  "hostname",
  "id",
] as const;

/** One of the seven identity/query field names. */
export type QueryField = typeof QUERY_FIELDS[number];

/**
 * A Kontrol query: the seven identity fields, where an empty string means
 * "any" (docs/protocol.md §8.4).
 */
export type KontrolQuery = Record<QueryField, string>;

/** Credentials sent in the `authentication` field of a call (docs/protocol.md §6.1). */
export interface Auth {
  /** `kiteKey`, `token`, or a custom type. */
  type: string;
  /** The credential itself, e.g. a JWT. */
  key: string;
}

/**
 * How the message of a Kontrol that cannot use its storage begins (a
 * `genericError`): it refuses `register`, `getKites` and `getToken` so that
 * kites move to another Kontrol of their `kontrolURL` list at once.
 */
export const KONTROL_UNAVAILABLE = "kontrol unavailable:";

/** Result of Kontrol's `register` (docs/protocol.md §8.2). */
export interface RegisterResult {
  /** The URL Kontrol stored. */
  url: string;
  /** `0` over dnode, `10` over HTTP (docs/protocol.md §12 #14). */
  heartbeatInterval: number;
  /** New Kontrol public key after a key rotation. */
  publicKey?: string;
  /** Re-signed kite key after a key rotation. */
  kiteKey?: string;
}

/**
 * A contract a kite serves, as it registers it (docs/protocol.md §8.2, a
 * Deno-only extension: Go kites and kite.js send none).
 */
export interface ContractRef {
  /** Contract name, e.g. `math`. */
  name: string;
  /** Semver version, e.g. `1.2.0`. */
  version: string;
}

/**
 * `getKites` narrowed to kites serving a contract (Deno-only extension; a
 * Go Kontrol ignores it and answers every kite matching the query).
 */
export interface ContractQuery {
  /** Contract name. */
  name: string;
  /** A semver range the served version must satisfy, e.g. `>=1.2.0` or `^1.2.0`; empty: any. */
  version?: string;
}

/** A kite as returned by Kontrol's `getKites` (docs/protocol.md §8.2). */
export interface KiteWithToken {
  /** The kite's identity. */
  kite: KiteIdentity;
  /** The URL it registered. */
  url: string;
  /** Id of the key pair its token is signed with. */
  keyId: string;
  /** A token for calling it. */
  token: string;
  /** The contracts it registered with, when it registered any (Deno kites only). */
  contracts?: ContractRef[];
}

/** A registration event pushed to watchers (docs/protocol.md §8.6). */
export interface KiteEvent {
  /** What happened. */
  action: "REGISTER" | "DEREGISTER";
  /** The kite concerned. */
  kite: KiteIdentity;
  /** Its URL (REGISTER only). */
  url?: string;
  /** A token for calling it (REGISTER only). */
  token?: string;
}

/** Builds an identity with Go field order from a partial one. */
export function makeIdentity(fields: Partial<KiteIdentity>): KiteIdentity {
  return {
    name: fields.name ?? "",
    username: fields.username ?? "",
    id: fields.id ?? "",
    environment: fields.environment ?? "",
    region: fields.region ?? "",
    version: fields.version ?? "",
    hostname: fields.hostname ?? "",
  };
}

/** Builds a query with all seven keys from a partial one. */
export function makeQuery(fields: Partial<KontrolQuery>): KontrolQuery {
  return {
    username: fields.username ?? "",
    environment: fields.environment ?? "",
    name: fields.name ?? "",
    version: fields.version ?? "",
    region: fields.region ?? "",
    hostname: fields.hostname ?? "",
    id: fields.id ?? "",
  };
}

/** `/username/environment/name/version/region/hostname/id` (docs/protocol.md §4.2). */
export function kiteToString(kite: KiteIdentity | KontrolQuery): string {
  return "/" + QUERY_FIELDS.map((f) => kite[f]).join("/");
}

/**
 * Parses the string form of docs/protocol.md §4.2. Missing trailing parts are empty.
 * @throws {TypeError} when the string does not start with `/` or has more
 * than seven parts.
 */
export function kiteFromString(text: string): KiteIdentity {
  if (!text.startsWith("/")) {
    throw new TypeError(`kite string must start with "/": ${text}`);
  }
  const parts = text.slice(1).split("/");
  if (parts.length > 7) {
    throw new TypeError(`kite string has more than 7 fields: ${text}`);
  }
  const fields: Partial<KiteIdentity> = {};
  QUERY_FIELDS.forEach((f, i) => fields[f] = parts[i] ?? "");
  return makeIdentity(fields);
}

/**
 * Returns a description of the first invalid field (empty or containing `/`),
 * or `undefined` when all seven fields are valid (docs/protocol.md §8.2 `validateKiteKey`).
 */
export function identityProblem(kite: KiteIdentity): string | undefined {
  for (const f of QUERY_FIELDS) {
    const v = kite[f];
    if (typeof v !== "string" || v === "") return `Empty Kite field: ${f}`;
    if (v.includes("/")) return `Field "${f}" must not contain '/'`;
  }
  return undefined;
}

/** Reads an identity from untrusted JSON, or `undefined` if it is not one. */
export function identityFromJSON(value: unknown): KiteIdentity | undefined {
  if (value === null || typeof value !== "object") return undefined;
  // Field by field rather than a loop over QUERY_FIELDS: this runs for
  // every incoming call.
  const v = value as Record<string, unknown>;
  const name = v.name, username = v.username, id = v.id;
  const environment = v.environment, region = v.region;
  const version = v.version, hostname = v.hostname;
  if (
    !isField(name) || !isField(username) || !isField(id) ||
    !isField(environment) || !isField(region) || !isField(version) ||
    !isField(hostname)
  ) return undefined;
  return {
    name: name ?? "",
    username: username ?? "",
    id: id ?? "",
    environment: environment ?? "",
    region: region ?? "",
    version: version ?? "",
    hostname: hostname ?? "",
  };
}

/** A string, or absent (`undefined`/`null`, read as ""). */
function isField(x: unknown): x is string | undefined | null {
  return x === undefined || x === null || typeof x === "string";
}

/** The id of a call's response callback (path `[0, "responseCallback"]`, docs/protocol.md §3.1). */
export function responseCallbackId(
  callbacks: Record<string, readonly (string | number)[]>,
): number | undefined {
  for (const id in callbacks) {
    const p = callbacks[id];
    if (
      p.length === 2 && String(p[0]) === "0" && p[1] === "responseCallback"
    ) return Number(id);
  }
  return undefined;
}

/**
 * Checks a kite's name and version as `new Kite()` takes them.
 * @throws {TypeError} for an empty name or a version that is not `x.y.z`.
 */
export function checkNameAndVersion(name: string, version: string): void {
  if (!name) throw new TypeError("kite name must not be empty");
  if (typeof version !== "string" || version.split(".").length !== 3) {
    throw new TypeError(
      `kite version must have three parts like "1.0.0", got ${
        JSON.stringify(version)
      }`,
    );
  }
}
