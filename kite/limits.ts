/**
 * Resource limits of a kite and the errors that report them. The values
 * live in the kite config (`DEFAULT_CONFIG` in `config.ts`); this module
 * checks them and words the errors, so that every limit fails the same way
 * wherever it is hit.
 *
 * @module
 */
import { KiteError } from "./errors.ts";

/** The config fields that bound what one peer can make a kite hold. */
export interface KiteLimits {
  /** Largest incoming message or `xhr_send` body, in bytes. */
  maxMessageBytes: number;
  /** Largest incoming frame on a connection the kite dialed, in bytes. */
  maxDialedMessageBytes: number;
  /** Deepest nesting of arrays and objects in an incoming dnode message. */
  maxJsonDepth: number;
  /** Local callbacks one connection may hold (response callbacks included). */
  maxCallbacks: number;
  /** Calls one connection may have waiting for a reply. */
  maxPendingCalls: number;
  /** Requests of one connection being served at the same time. */
  maxConcurrentRequests: number;
  /** Requests a kite serves at the same time, over every connection. */
  maxKiteRequests: number;
  /** Sessions a kite accepts at once, over every transport. */
  maxConnections: number;
  /** XHR sessions a kite keeps at once (a subset of the connections). */
  maxXhrSessions: number;
  /** Bytes queued for a peer that does not read before its session is closed. */
  maxBufferedBytes: number;
  /** Connections one remote address (IPv6: one /64) may hold. */
  maxConnectionsPerAddress: number;
  /** XHR sessions one remote address (IPv6: one /64) may hold. */
  maxXhrSessionsPerAddress: number;
  /** How long a session may stay silent after opening, ms; 0 turns it off. */
  idleSessionMs: number;
}

/** Names of the {@linkcode KiteLimits} fields, for validation and docs. */
export const LIMIT_NAMES: readonly (keyof KiteLimits)[] = [
  "maxMessageBytes",
  "maxDialedMessageBytes",
  "maxJsonDepth",
  "maxCallbacks",
  "maxPendingCalls",
  "maxConcurrentRequests",
  "maxKiteRequests",
  "maxConnections",
  "maxXhrSessions",
  "maxBufferedBytes",
  "maxConnectionsPerAddress",
  "maxXhrSessionsPerAddress",
  "idleSessionMs",
];

/** Limits where 0 means "off" rather than "nothing allowed". */
const ZERO_TURNS_OFF: ReadonlySet<keyof KiteLimits> = new Set([
  "idleSessionMs",
]);

/**
 * Checks that every limit is a whole number of at least 1 (at least 0 for
 * those 0 turns off). A per-address limit above its total is allowed: the
 * total then binds first.
 * @throws {RangeError} naming the first bad field.
 */
export function checkLimits(limits: KiteLimits): void {
  for (const name of LIMIT_NAMES) {
    const v = limits[name];
    const min = ZERO_TURNS_OFF.has(name) ? 0 : 1;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new RangeError(
        `kite config ${name} must be a whole number >= ${min}, got ${
          JSON.stringify(v)
        }`,
      );
    }
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * True when the JSON text nests arrays and objects more than `maxDepth`
 * levels deep. Scans the text without parsing it, jumping over strings, so
 * it can run before `JSON.parse` on every message. Text that is not JSON
 * gives an arbitrary answer; the parser reports it afterwards.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  // Each level needs two characters, so short texts cannot be too deep.
  if (text.length <= maxDepth * 2) return false;
  // Nor can texts with few opening brackets, in strings or not. Counting
  // them with indexOf is cheap; a typical call has seven.
  let opens = 0;
  for (let i = text.indexOf("["); i >= 0; i = text.indexOf("[", i + 1)) {
    if (++opens > maxDepth) break;
  }
  for (let i = text.indexOf("{"); i >= 0 && opens <= maxDepth;) {
    opens++;
    i = text.indexOf("{", i + 1);
  }
  if (opens <= maxDepth) return false;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Jump to the closing quote: one not preceded by an odd run of backslashes.
      for (;;) {
        const end = text.indexOf('"', i + 1);
        if (end < 0) return false; // unterminated: JSON.parse will say so
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
        i = end;
        if ((slashes & 1) === 0) break;
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** Why a too-deep message closes its connection (close code 3400 with this reason). */
export function tooDeepReason(maxDepth: number): string {
  return `invalid message: nesting deeper than ${maxDepth} levels`;
}

/** A call refused because the connection holds `max` local callbacks. */
export function tooManyCallbacks(max: number): KiteError {
  return new KiteError(
    "sendError",
    `can't send, the connection holds ${max} callbacks (limit maxCallbacks); release callbacks that are no longer needed`,
  );
}

/** A call refused because `max` calls already wait for replies. */
export function tooManyPendingCalls(max: number): KiteError {
  return new KiteError(
    "sendError",
    `can't send, ${max} calls are already waiting for replies on this connection (limit maxPendingCalls)`,
  );
}

/** The reply to a request beyond the per-connection in-flight limit. */
export function tooManyRequests(max: number): KiteError {
  return new KiteError(
    "requestLimitError",
    `Too many requests in flight on this connection: limit is ${max} (maxConcurrentRequests)`,
  );
}

/** The error a kite serving `max` requests already answers a new one with. */
export function tooManyKiteRequests(max: number): KiteError {
  return new KiteError(
    "requestLimitError",
    `Too many requests in flight on this kite: limit is ${max} (maxKiteRequests); try another instance`,
  );
}
