/**
 * Decoding JWTs the way the Go kite's jwt-go v3.2.0 does, so that failures
 * read the same on the wire (docs/protocol.md §3.3, §6.2, §6.6). Nothing here checks a
 * signature: that is done with `jose` in `verify.ts` and `kitekey.ts`.
 *
 * @module
 */

/** The `alg` values jwt-go v3.2.0 knows; any other is "unavailable". */
const KNOWN_ALGS: ReadonlySet<string> = new Set([
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "none",
]);

/** The RSA PKCS#1 v1.5 algorithms Kite accepts (docs/protocol.md §6.2). */
export const RSA_ALGS: readonly string[] = ["RS256", "RS384", "RS512"];

/** The JWT header Go writes, byte for byte (docs/protocol.md §6.2). */
export const GO_JWT_HEADER = '{"alg":"RS256","typ":"JWT"}';

/**
 * The claims of a kite token or kite.key (Go `kitekey.KiteClaims`, spec
 * §6.2). Absent, `null`, `""` and `0` all mean "not set", as in Go.
 */
export interface KiteClaims {
  /** Audience, a single string. */
  aud?: string;
  /** Expiry, Unix seconds. */
  exp?: number;
  /** Token id. */
  jti?: string;
  /** Issued at, Unix seconds. */
  iat?: number;
  /** Issuer: the Kontrol's username. */
  iss?: string;
  /** Not before, Unix seconds. */
  nbf?: number;
  /** Subject: the authenticated username. */
  sub?: string;
  /** Kontrol public key PEM (kite.key only). */
  kontrolKey?: string;
  /** Kontrol URL (kite.key only). */
  kontrolURL?: string;
  /** Any other claim, kept as sent. */
  [claim: string]: unknown;
}

/** A JWT split and decoded, not verified. */
export interface DecodedJwt {
  /** The protected header. */
  header: Record<string, unknown>;
  /** The claims with Go's field types checked. */
  claims: KiteClaims;
}

/** A JWT that cannot be decoded; `message` is jwt-go's text where known. */
export class JwtFormatError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "JwtFormatError";
  }
}

const STRING_CLAIMS = ["aud", "jti", "iss", "sub", "kontrolKey", "kontrolURL"];
const TIME_CLAIMS = ["exp", "iat", "nbf"];

/**
 * Splits and decodes a compact JWT without verifying it. Errors carry the
 * text jwt-go would produce (e.g. `not.a.jwt` →
 * `invalid character '\u009e' looking for beginning of value`, docs/protocol.md §6.6).
 *
 * @throws {JwtFormatError} when the token is not a well-formed JWT.
 */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw new JwtFormatError("token contains an invalid number of segments");
  }
  let headerBytes: Uint8Array;
  try {
    headerBytes = decodeSegment(parts[0]);
  } catch (error) {
    if (token.toLowerCase().startsWith("bearer ")) {
      throw new JwtFormatError("tokenstring should not contain 'bearer '");
    }
    throw error;
  }
  const header = parseJson(headerBytes);
  if (!isObject(header)) {
    throw new JwtFormatError(
      `json: cannot unmarshal ${
        jsonKind(header)
      } into Go value of type map[string]interface {}`,
    );
  }
  const raw = parseJson(decodeSegment(parts[1]));
  if (!isObject(raw)) {
    throw new JwtFormatError(
      `json: cannot unmarshal ${
        jsonKind(raw)
      } into Go value of type kitekey.KiteClaims`,
    );
  }
  return { header, claims: checkClaimTypes(raw) };
}

/**
 * Reads `exp` of a token without verifying anything (as the Go token renewer
 * does, docs/protocol.md §6.10). Returns Unix seconds, or `undefined` when there is none.
 *
 * @throws {JwtFormatError} when the token is not a well-formed JWT.
 */
export function readExpiry(token: string): number | undefined {
  // A getKites answer holds the same token for every kite it finds.
  if (lastExpiry?.token !== token) {
    lastExpiry = { token, exp: decodeJwt(token).claims.exp || undefined };
  }
  return lastExpiry.exp;
}

/** The last token {@linkcode readExpiry} read, with its `exp`. */
let lastExpiry: { token: string; exp: number | undefined } | undefined;

/**
 * The `alg` problem jwt-go reports before any key is looked at, or
 * `undefined` when the algorithm is one of {@linkcode RSA_ALGS}. Other
 * algorithms jwt-go knows (`none`, `HS256`, `PS256`…) are refused as
 * `invalid signing method`, like Go's key functions do (docs/protocol.md §6.6 step 1).
 */
export function algProblem(
  header: Record<string, unknown>,
): string | undefined {
  const alg = header.alg;
  if (typeof alg !== "string") return "signing method (alg) is unspecified.";
  if (!KNOWN_ALGS.has(alg)) return "signing method (alg) is unavailable.";
  if (!RSA_ALGS.includes(alg)) return "invalid signing method";
  return undefined;
}

/**
 * How far in the future `iat`/`nbf` may be when a token or kite key is
 * checked: the clock skew tolerated between the signing Kontrol and the
 * verifier, on top of the 5 minutes Kontrol back-dates them (Go's
 * `TokenLeeway`). `exp` gets no extra leeway (Kontrol extends it already).
 */
export const DEFAULT_CLOCK_SKEW_MS = 300_000;

/**
 * jwt-go's `StandardClaims.Valid` (docs/protocol.md §6.2), with `skewSeconds` of
 * tolerance on `iat` and `nbf` (0: none, as jwt-go): returns the failure
 * text, or `undefined` when the time claims hold at `nowSeconds`. Like
 * jwt-go, a later failing check overwrites an earlier one.
 */
export function timeProblem(
  claims: KiteClaims,
  nowSeconds: number,
  skewSeconds = 0,
): string | undefined {
  let problem: string | undefined;
  if (claims.exp && nowSeconds > claims.exp) {
    problem = `token is expired by ${goDuration(nowSeconds - claims.exp)}`;
  }
  const late = nowSeconds + skewSeconds;
  if (claims.iat && late < claims.iat) problem = "Token used before issued";
  if (claims.nbf && late < claims.nbf) problem = "token is not valid yet";
  return problem;
}

/** Go's `time.Duration.String()` for a whole number of seconds. */
export function goDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  const sign = seconds < 0 ? "-" : "";
  let rest = Math.abs(seconds);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  if (h > 0) return `${sign}${h}h${m}m${s}s`;
  if (m > 0) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}

/** Unpadded base64url, as JWT segments are written (docs/protocol.md §6.2). */
export function base64UrlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

const ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DECODE_TABLE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

const URL_ALPHABET_ONLY = /^[A-Za-z0-9_-]*$/;
/** Newer runtimes have it; older ones take the loop below. */
const hasFromBase64 = typeof Uint8Array.fromBase64 === "function";

/**
 * jwt-go's `DecodeSegment`: pads to a multiple of 4 and decodes with Go's
 * non-strict URL alphabet, reporting `illegal base64 data at input byte N`.
 */
function decodeSegment(segment: string): Uint8Array {
  // The usual segment holds nothing but the URL alphabet: decoded natively.
  // Like Go's decoder, "loose" drops the bits after the last whole byte; a
  // length Go refuses fails here too, and gets Go's message below.
  if (hasFromBase64 && URL_ALPHABET_ONLY.test(segment)) {
    try {
      return Uint8Array.fromBase64(segment, { alphabet: "base64url" });
    } catch {
      // Go's error text below.
    }
  }
  const clean = segment.replace(/[\r\n]/g, "");
  const padded = clean + "=".repeat((4 - (clean.length % 4)) % 4);
  const out: number[] = [];
  for (let i = 0; i < padded.length; i += 4) {
    const values: number[] = [];
    for (let j = 0; j < 4; j++) {
      const at = i + j;
      const code = padded.charCodeAt(at);
      if (code === 0x3d /* = */) {
        const last = i + 4 === padded.length;
        const tailOk = j === 3 ||
          (j === 2 && padded.charCodeAt(at + 1) === 0x3d);
        if (j < 2 || !last || !tailOk) throw illegalBase64(at);
        break;
      }
      const value = code < 128 ? DECODE_TABLE[code] : -1;
      if (value < 0) throw illegalBase64(at);
      values.push(value);
    }
    const n = (values[0] << 18) | (values[1] << 12) | ((values[2] ?? 0) << 6) |
      (values[3] ?? 0);
    out.push((n >> 16) & 0xff);
    if (values.length > 2) out.push((n >> 8) & 0xff);
    if (values.length > 3) out.push(n & 0xff);
  }
  return new Uint8Array(out);
}

function illegalBase64(at: number): JwtFormatError {
  return new JwtFormatError(`illegal base64 data at input byte ${at}`);
}

const utf8 = new TextDecoder();
const JSON_WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const JSON_VALUE_START = new Set(
  [...'{["-0123456789tfn'].map((c) => c.charCodeAt(0)),
);

/** `JSON.parse` with Go's `encoding/json` text for the common failures. */
function parseJson(bytes: Uint8Array): unknown {
  const first = bytes.find((b) => !JSON_WHITESPACE.has(b));
  if (first === undefined) {
    throw new JwtFormatError("unexpected end of JSON input");
  }
  if (!JSON_VALUE_START.has(first)) {
    throw new JwtFormatError(
      `invalid character ${goQuoteChar(first)} looking for beginning of value`,
    );
  }
  const text = utf8.decode(bytes);
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /at position (\d+)/.exec(message);
    if (
      /end of JSON input/i.test(message) ||
      (at && Number(at[1]) >= text.trimEnd().length)
    ) {
      throw new JwtFormatError("unexpected end of JSON input");
    }
    throw new JwtFormatError(`malformed JSON: ${message}`);
  }
}

/** Go's `encoding/json` `quoteChar` of one byte (as a rune U+0000–U+00FF). */
function goQuoteChar(byte: number): string {
  if (byte === 0x27) return "'\\''";
  if (byte === 0x22) return "'\"'";
  const named: Record<number, string> = {
    0x07: "\\a",
    0x08: "\\b",
    0x0c: "\\f",
    0x0a: "\\n",
    0x0d: "\\r",
    0x09: "\\t",
    0x0b: "\\v",
    0x5c: "\\\\",
  };
  if (named[byte]) return `'${named[byte]}'`;
  if (byte < 0x20 || byte === 0x7f) {
    return `'\\x${byte.toString(16).padStart(2, "0")}'`;
  }
  // U+0080–U+00A0 and the soft hyphen are not printable for strconv.Quote.
  if ((byte >= 0x80 && byte <= 0xa0) || byte === 0xad) {
    return `'\\u${byte.toString(16).padStart(4, "0")}'`;
  }
  return `'${String.fromCharCode(byte)}'`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value;
}

/**
 * Applies Go's struct typing to the claims: string claims must be strings,
 * time claims integers; `null` leaves a claim unset (docs/protocol.md §6.2).
 */
function checkClaimTypes(raw: Record<string, unknown>): KiteClaims {
  const claims: KiteClaims = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === null) continue;
    if (STRING_CLAIMS.includes(name) && typeof value !== "string") {
      throw claimTypeError(name, jsonKind(value), "string");
    }
    if (TIME_CLAIMS.includes(name)) {
      if (typeof value !== "number") {
        throw claimTypeError(name, jsonKind(value), "int64");
      }
      if (!Number.isSafeInteger(value)) {
        throw claimTypeError(name, `number ${value}`, "int64");
      }
    }
    claims[name] = value;
  }
  return claims;
}

function claimTypeError(
  field: string,
  got: string,
  goType: string,
): JwtFormatError {
  return new JwtFormatError(
    `json: cannot unmarshal ${got} into Go struct field KiteClaims.${field} of type ${goType}`,
  );
}
