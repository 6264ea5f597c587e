/**
 * What one user may make Kontrol hold: registrations, watchers, the size of
 * what is stored, and how long kite ids stay their owner's. Defaults live
 * here; `kontrol/settings.ts` reads the `KONTROL_*` overrides.
 *
 * @module
 */
import { KiteError } from "../kite/errors.ts";
import { type KiteIdentity, QUERY_FIELDS } from "../kite/protocol.ts";

/** Per-user quotas and sizes Kontrol enforces. */
export interface KontrolLimits {
  /** Kites one user may have registered with this Kontrol at once. @default {1000} */
  maxKitesPerUser: number;
  /** Watchers (`getKites` with a callback) one connection may hold. @default {100} */
  maxWatchersPerConnection: number;
  /** Watchers one user may hold over all connections. @default {1000} */
  maxWatchersPerUser: number;
  /** Longest identity or query field, in characters. @default {255} */
  maxFieldLength: number;
  /** Longest registered URL, in characters. @default {2048} */
  maxUrlLength: number;
  /**
   * How long a kite id stays bound to its user after its kite last
   * registered or went away; meanwhile no other user can register it.
   * @default {86400000}
   */
  idRetentionMs: number;
  /**
   * How long an HTTP registration may live on unauthenticated `/heartbeat`
   * pings alone: after this the next ping answers `registeragain`, and the
   * kite proves itself with its kite.key again. @default {600000}
   */
  httpProofMs: number;
}

/** The defaults of {@linkcode KontrolLimits}. */
export const DEFAULT_KONTROL_LIMITS: Readonly<KontrolLimits> = Object.freeze({
  maxKitesPerUser: 1000,
  maxWatchersPerConnection: 100,
  maxWatchersPerUser: 1000,
  maxFieldLength: 255,
  maxUrlLength: 2048,
  idRetentionMs: 24 * 60 * 60_000,
  httpProofMs: 10 * 60_000,
});

/** Kite ids remembered at most for {@linkcode KontrolLimits.idRetentionMs}, over all users. */
export const MAX_RETAINED_IDS = 100_000;

/**
 * Fills in defaults and checks every limit is a whole number >= 1 (0 is
 * allowed for the two durations: no retention, no proof window).
 * @throws {RangeError} naming the first bad field.
 */
export function kontrolLimits(
  overrides: Partial<KontrolLimits> = {},
): KontrolLimits {
  const limits = { ...DEFAULT_KONTROL_LIMITS, ...overrides };
  for (const [name, v] of Object.entries(limits)) {
    const min = name.endsWith("Ms") ? 0 : 1;
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(
        `Kontrol limit ${name} must be a whole number >= ${min}, got ${
          JSON.stringify(v)
        }`,
      );
    }
  }
  return limits;
}

/**
 * Refuses a field longer than `max` (an `argumentError` naming the field),
 * before it is echoed, stored or looked up.
 */
export function checkLength(what: string, value: string, max: number): void {
  if (value.length <= max) return;
  throw new KiteError(
    "argumentError",
    `${what} is too long (${value.length} characters, at most ${max})`,
  );
}

/** {@linkcode checkLength} for each of the seven identity or query fields. */
export function checkFieldLengths(
  fields: Partial<KiteIdentity>,
  max: number,
): void {
  for (const f of QUERY_FIELDS) {
    const v = fields[f];
    // The name is built only for the error: this runs on every registration.
    if (typeof v === "string" && v.length > max) {
      checkLength(`kite field ${f}`, v, max);
    }
  }
}
