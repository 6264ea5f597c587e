/**
 * RSA key handling shared by the verifier and Kontrol: PEM parsing, PKCS#1 →
 * PKCS#8 wrapping, key generation, and a bounded cache of imported keys.
 *
 * Accepted forms follow the Go kite (docs/protocol.md §6.2): public keys as PKIX PEM
 * (`BEGIN PUBLIC KEY`) or inside an X.509 certificate; private keys as
 * PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`, what
 * `openssl genrsa` writes). PKCS#1 public keys (`BEGIN RSA PUBLIC KEY`) are
 * refused, as jwt-go v3.2.0 refuses them.
 *
 * @module
 */
import { importX509 } from "jose/key/import";

/** A key pair as PEM strings, trimmed. */
export interface PemKeyPair {
  /** PKIX public key (`BEGIN PUBLIC KEY`). */
  public: string;
  /** PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`). */
  private: string;
}

/** The RS* algorithm a key is imported for. */
export type RsaAlg = "RS256" | "RS384" | "RS512";

/** A PEM text that is not a usable RSA key; says what was expected. */
export class KeyFormatError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyFormatError";
  }
}

/** Smallest RSA modulus `jose` signs or verifies with. */
export const MIN_RSA_BITS = 2048;

/** Default number of imported keys a {@linkcode KeyCache} holds. */
export const DEFAULT_KEY_CACHE_SIZE = 256;

const HASH: Record<RsaAlg, string> = {
  RS256: "SHA-256",
  RS384: "SHA-384",
  RS512: "SHA-512",
};

/**
 * Removes surrounding whitespace, as Go's `strings.TrimSpace`. Kite-key trust
 * compares PEM strings byte for byte after this (docs/protocol.md §6.5, §12 #16).
 */
export function trimPem(pem: string): string {
  return pem.trim();
}

/** One decoded PEM block. */
export interface PemBlock {
  /** The label, e.g. `PUBLIC KEY`. */
  label: string;
  /** The DER bytes. */
  der: Uint8Array<ArrayBuffer>;
}

/**
 * Decodes the first PEM block of `pem`.
 * @throws {KeyFormatError} when there is no well-formed block.
 */
export function decodePem(pem: string): PemBlock {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(
    pem,
  );
  if (!match) {
    throw new KeyFormatError(
      "key must be PEM encoded (-----BEGIN …----- … -----END …-----)",
    );
  }
  const [, label, body] = match;
  if (/^[A-Za-z-]+:/m.test(body)) {
    throw new KeyFormatError(
      `encrypted or annotated ${label} blocks are not supported`,
    );
  }
  const base64 = body.replace(/\s+/g, "");
  try {
    return {
      label,
      der: Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)),
    };
  } catch (cause) {
    throw new KeyFormatError(`${label} block is not valid base64`, { cause });
  }
}

/** Encodes DER bytes as a PEM block with 64-character lines, no final newline. */
export function encodePem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----`;
}

// AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }.
const RSA_ALGORITHM_ID = Uint8Array.from(
  "300d06092a864886f70d0101010500".match(/../g)!,
  (hex) => parseInt(hex, 16),
);

/** DER length octets (short or long form). */
function derLength(length: number): Uint8Array {
  if (length < 0x80) return new Uint8Array([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}

/** A DER TLV from a tag and its content. */
function derTlv(
  tag: number,
  ...content: Uint8Array[]
): Uint8Array<ArrayBuffer> {
  const length = content.reduce((sum, c) => sum + c.length, 0);
  const head = derLength(length);
  const out = new Uint8Array(1 + head.length + length);
  out[0] = tag;
  out.set(head, 1);
  let at = 1 + head.length;
  for (const c of content) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Wraps a PKCS#1 `RSAPrivateKey` DER into a PKCS#8 `PrivateKeyInfo`
 * (`SEQUENCE { INTEGER 0, rsaEncryption, OCTET STRING pkcs1 }`), the only
 * private key form WebCrypto imports.
 */
export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const version = new Uint8Array([0x02, 0x01, 0x00]);
  return derTlv(0x30, version, RSA_ALGORITHM_ID, derTlv(0x04, pkcs1));
}

function rsaParams(alg: RsaAlg): RsaHashedImportParams {
  const hash = HASH[alg];
  if (!hash) {
    throw new TypeError(
      `unsupported algorithm ${alg}; expected RS256, RS384 or RS512`,
    );
  }
  return { name: "RSASSA-PKCS1-v1_5", hash };
}

function checkBits(key: CryptoKey, what: string): CryptoKey {
  const bits = (key.algorithm as RsaHashedKeyAlgorithm).modulusLength;
  if (bits < MIN_RSA_BITS) {
    throw new KeyFormatError(
      `${what} is ${bits} bits; RSA keys of at least ${MIN_RSA_BITS} bits are required`,
    );
  }
  return key;
}

/** Options for {@linkcode importPublicKey} and {@linkcode importPrivateKey}. */
export interface ImportKeyOptions {
  /** Algorithm the key will be used with. @default {"RS256"} */
  alg?: RsaAlg;
  /** Whether the key may be exported. @default {false} */
  extractable?: boolean;
}

/**
 * Imports an RSA public key from PKIX PEM or an X.509 certificate PEM for
 * verifying `alg` signatures. Uncached; see {@linkcode KeyCache}.
 *
 * @throws {KeyFormatError} when the PEM is not an RSA public key of at least
 * {@linkcode MIN_RSA_BITS} bits.
 */
export async function importPublicKey(
  pem: string,
  options: ImportKeyOptions = {},
): Promise<CryptoKey> {
  const { alg = "RS256", extractable = false } = options;
  const block = decodePem(pem);
  const params = rsaParams(alg);
  let key: CryptoKey;
  try {
    switch (block.label) {
      case "PUBLIC KEY":
        key = await crypto.subtle.importKey(
          "spki",
          block.der,
          params,
          extractable,
          ["verify"],
        );
        break;
      case "CERTIFICATE":
        // jose's key type is Node's when @types/node is in the graph; same object.
        key = (await importX509(trimPem(pem), alg, {
          extractable,
        })) as unknown as CryptoKey;
        break;
      case "RSA PUBLIC KEY":
        throw new KeyFormatError(
          "PKCS#1 public keys (BEGIN RSA PUBLIC KEY) are not supported; convert with " +
            "`openssl rsa -RSAPublicKey_in -pubout` to a PKIX public key (BEGIN PUBLIC KEY)",
        );
      default:
        throw new KeyFormatError(
          `expected a PUBLIC KEY or CERTIFICATE PEM block, got ${block.label}`,
        );
    }
  } catch (cause) {
    if (cause instanceof KeyFormatError) throw cause;
    throw new KeyFormatError(
      `not an RSA public key: ${(cause as Error).message}`,
      { cause },
    );
  }
  return checkBits(key, "public key");
}

/**
 * Imports an RSA private key from PKCS#8 or PKCS#1 PEM for `alg`
 * signatures. Uncached; see {@linkcode KeyCache}.
 *
 * @throws {KeyFormatError} when the PEM is not an unencrypted RSA private key
 * of at least {@linkcode MIN_RSA_BITS} bits.
 */
export async function importPrivateKey(
  pem: string,
  options: ImportKeyOptions = {},
): Promise<CryptoKey> {
  const { alg = "RS256", extractable = false } = options;
  const block = decodePem(pem);
  let der: Uint8Array<ArrayBuffer>;
  switch (block.label) {
    case "PRIVATE KEY":
      der = block.der;
      break;
    case "RSA PRIVATE KEY":
      der = pkcs1ToPkcs8(block.der);
      break;
    case "ENCRYPTED PRIVATE KEY":
      throw new KeyFormatError(
        "encrypted private keys are not supported; decrypt it first",
      );
    default:
      throw new KeyFormatError(
        `expected a PRIVATE KEY or RSA PRIVATE KEY PEM block, got ${block.label}`,
      );
  }
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "pkcs8",
      der,
      rsaParams(alg),
      extractable,
      ["sign"],
    );
  } catch (cause) {
    throw new KeyFormatError(
      `not an RSA private key: ${(cause as Error).message}`,
      { cause },
    );
  }
  return checkBits(key, "private key");
}

/**
 * The PKIX PEM of the public half of an RSA private key (PKCS#8 or PKCS#1).
 * @throws {KeyFormatError} when the PEM is not an RSA private key.
 */
export async function publicKeyFromPrivate(
  privatePem: string,
): Promise<string> {
  const key = await importPrivateKey(privatePem, { extractable: true });
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const pub = await crypto.subtle.importKey(
    "jwk",
    { kty: "RSA", n: jwk.n, e: jwk.e },
    rsaParams("RS256"),
    true,
    ["verify"],
  );
  return encodePem(
    "PUBLIC KEY",
    new Uint8Array(await crypto.subtle.exportKey("spki", pub)),
  );
}

/**
 * Rewrites a public key PEM (PKIX or X.509 certificate) as PKIX PEM, the
 * form Go peers expect in `kontrolKey` (docs/protocol.md §6.3).
 * @throws {KeyFormatError} when the PEM is not an RSA public key.
 */
export async function toPkixPem(publicPem: string): Promise<string> {
  const key = await importPublicKey(publicPem, { extractable: true });
  return encodePem(
    "PUBLIC KEY",
    new Uint8Array(await crypto.subtle.exportKey("spki", key)),
  );
}

/** Options for {@linkcode generateKeyPair}. */
export interface GenerateKeyPairOptions {
  /** Modulus length in bits. @default {2048} */
  modulusLength?: number;
}

/**
 * Generates an RSA key pair with WebCrypto: PKIX public PEM and PKCS#8
 * private PEM, both trimmed.
 *
 * @example
 * ```ts
 * import { generateKeyPair } from "./keys.ts";
 * const pair = await generateKeyPair();
 * pair.public.startsWith("-----BEGIN PUBLIC KEY-----"); // true
 * ```
 */
export async function generateKeyPair(
  options: GenerateKeyPairOptions = {},
): Promise<PemKeyPair> {
  const modulusLength = options.modulusLength ?? 2048;
  if (modulusLength < MIN_RSA_BITS) {
    throw new RangeError(
      `modulusLength must be at least ${MIN_RSA_BITS}, got ${modulusLength}`,
    );
  }
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const spki = new Uint8Array(
    await crypto.subtle.exportKey("spki", pair.publicKey),
  );
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  return {
    public: encodePem("PUBLIC KEY", spki),
    private: encodePem("PRIVATE KEY", pkcs8),
  };
}

/** Options for {@linkcode KeyCache}. */
export interface KeyCacheOptions {
  /** Most imported keys kept; the oldest is dropped first. @default {256} */
  maxEntries?: number;
}

/**
 * Imported CryptoKeys by PEM string and algorithm, so hot paths (token
 * verification, signing) do not re-import per call. Bounded: PEMs may come
 * from untrusted input. Failed imports are not cached.
 */
export class KeyCache {
  #max: number;
  #keys = new Map<string, Promise<CryptoKey>>();

  /** Creates an empty cache. */
  constructor(options: KeyCacheOptions = {}) {
    this.#max = options.maxEntries ?? DEFAULT_KEY_CACHE_SIZE;
    if (!(this.#max >= 1)) {
      throw new RangeError(`maxEntries must be >= 1, got ${this.#max}`);
    }
  }

  /** Number of keys held. */
  get size(): number {
    return this.#keys.size;
  }

  /** The public key for `pem` (trimmed) and `alg`, imported once. */
  publicKey(pem: string, alg: RsaAlg = "RS256"): Promise<CryptoKey> {
    return this.#get(
      `public\n${alg}\n${trimPem(pem)}`,
      () => importPublicKey(pem, { alg }),
    );
  }

  /** The private key for `pem` (trimmed) and `alg`, imported once. */
  privateKey(pem: string, alg: RsaAlg = "RS256"): Promise<CryptoKey> {
    return this.#get(
      `private\n${alg}\n${trimPem(pem)}`,
      () => importPrivateKey(pem, { alg }),
    );
  }

  /** Drops every key. */
  clear(): void {
    this.#keys.clear();
  }

  #get(id: string, load: () => Promise<CryptoKey>): Promise<CryptoKey> {
    const hit = this.#keys.get(id);
    if (hit) {
      // Re-insert so the most recently used key is dropped last.
      this.#keys.delete(id);
      this.#keys.set(id, hit);
      return hit;
    }
    const loading = load();
    loading.catch(() =>
      this.#keys.get(id) === loading && this.#keys.delete(id)
    );
    this.#keys.set(id, loading);
    while (this.#keys.size > this.#max) {
      this.#keys.delete(this.#keys.keys().next().value!);
    }
    return loading;
  }
}

/** A cache shared by callers that do not pass their own. */
export const sharedKeyCache: KeyCache = new KeyCache();
