/**
 * Kontrol's key pair files: loading the PEM files an operator provides
 * (PKCS#1 or PKCS#8 private key, PKIX public key or certificate, as the Go
 * Kontrol's `-public-key-file`/`-private-key-file`), or generating a pair
 * once and keeping it, with a stable id, in a data directory (docs/protocol.md §8.7,
 * §12 #28).
 *
 * @module
 */
import type { KeyPair } from "../storage/storage.ts";
import {
  decodePem,
  generateKeyPair,
  KeyFormatError,
  type PemKeyPair,
  publicKeyFromPrivate,
  toPkixPem,
  trimPem,
} from "../kite/auth/keys.ts";

/** File names inside a key directory. */
export const KEY_FILES = {
  private: "private.pem",
  public: "public.pem",
  id: "key-id",
} as const;

/** Options for {@linkcode loadKeyPairFiles}. */
export interface LoadKeyPairFilesOptions {
  /** Path of the private key (PKCS#8 or PKCS#1 PEM). */
  privateKeyFile: string;
  /**
   * Path of the public key (PKIX PEM or X.509 certificate). When left out it
   * is derived from the private key.
   */
  publicKeyFile?: string;
}

/**
 * Reads and checks a key pair from PEM files. The public key is returned as
 * written (trimmed) when it is PKIX, so `kontrolKey` claims of kite keys
 * issued earlier stay byte-identical (docs/protocol.md §6.5); a certificate is converted
 * to PKIX.
 *
 * @throws {KeyFormatError} when a file is not a usable RSA key, or the two
 * halves do not belong together.
 */
export async function loadKeyPairFiles(
  options: LoadKeyPairFilesOptions,
): Promise<PemKeyPair> {
  const privatePem = trimPem(
    await readKeyFile(options.privateKeyFile, "private key"),
  );
  const derived = await withFile(
    options.privateKeyFile,
    publicKeyFromPrivate(privatePem),
  );
  if (options.publicKeyFile === undefined) {
    return { public: derived, private: privatePem };
  }
  const given = trimPem(await readKeyFile(options.publicKeyFile, "public key"));
  const pkix = await withFile(options.publicKeyFile, toPkixPem(given));
  if (pkix !== derived) {
    throw new KeyFormatError(
      `public key ${options.publicKeyFile} does not belong to private key ${options.privateKeyFile}`,
    );
  }
  const isPkix = decodePem(given).label === "PUBLIC KEY";
  return { public: isPkix ? given : pkix, private: privatePem };
}

/** Options for {@linkcode loadKeyPair}. */
export interface LoadKeyPairOptions {
  /** Operator's private key file; `""` or absent means "use `dataDir`". */
  privateKeyFile?: string;
  /** Operator's public key file; optional, derived when absent. */
  publicKeyFile?: string;
  /** Directory for a generated pair (see {@linkcode loadOrCreateKeyPair}). */
  dataDir: string;
}

/**
 * Kontrol's signing pair at start-up: the operator's PEM files when
 * `privateKeyFile` is set, else the pair kept in `<dataDir>/keys`
 * (generated on first use). A pair from files gets an id derived from its
 * public key, so it is the same on every start (docs/protocol.md §12 #28).
 *
 * @throws {KeyFormatError} when the files are not a usable key pair, or only
 * a public key file is given.
 */
export async function loadKeyPair(
  options: LoadKeyPairOptions,
): Promise<KeyPair> {
  if (!options.privateKeyFile) {
    if (options.publicKeyFile) {
      throw new KeyFormatError(
        `public key file ${options.publicKeyFile} given without its private key file`,
      );
    }
    return (await loadOrCreateKeyPair(generatedKeysDir(options.dataDir))).pair;
  }
  const pem = await loadKeyPairFiles({
    privateKeyFile: options.privateKeyFile,
    publicKeyFile: options.publicKeyFile || undefined,
  });
  return { id: await keyIdFor(pem.public), ...pem };
}

/** Where {@linkcode loadKeyPair} keeps a pair it generated. */
function generatedKeysDir(dataDir: string): string {
  return `${dataDir}/keys`;
}

/**
 * True when {@linkcode loadKeyPair} would generate a new pair (a first
 * start): no private key file is configured and `dataDir` holds none yet.
 */
export async function needsNewKeyPair(
  options: LoadKeyPairOptions,
): Promise<boolean> {
  if (options.privateKeyFile || options.publicKeyFile) return false;
  const dir = generatedKeysDir(options.dataDir);
  return !(await exists(`${dir}/${KEY_FILES.private}`));
}

/**
 * A stable key pair id: a UUID (version 8, RFC 9562) made from the SHA-256
 * of the trimmed public key PEM.
 */
export async function keyIdFor(publicPem: string): Promise<string> {
  const data = new TextEncoder().encode(trimPem(publicPem));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data))
    .slice(0, 16);
  hash[6] = (hash[6] & 0x0f) | 0x80;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${
    hex.slice(16, 20)
  }-${hex.slice(20)}`;
}

/** What {@linkcode loadOrCreateKeyPair} found or made. */
export interface LoadedKeyPair {
  /** The pair with its stable id. */
  pair: KeyPair;
  /** True when a new private key was generated. */
  created: boolean;
}

/**
 * The key pair kept in `dir` (`private.pem`, `public.pem`, `key-id`),
 * generating an RSA 2048 pair on first use. The id is persisted so tokens
 * stay valid for kites registered before a restart (docs/protocol.md §12 #28). A
 * `private.pem` put there by an operator is used as is; a missing public key
 * or id is filled in.
 *
 * @throws {KeyFormatError} when existing files are not a usable key pair.
 */
export async function loadOrCreateKeyPair(dir: string): Promise<LoadedKeyPair> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const privateFile = `${dir}/${KEY_FILES.private}`;
  const publicFile = `${dir}/${KEY_FILES.public}`;
  let created = false;
  if (!(await exists(privateFile))) {
    const fresh = await generateKeyPair();
    created = await writeNew(privateFile, fresh.private + "\n", 0o600);
    if (created) await writeReplacing(publicFile, fresh.public + "\n", 0o644);
  }
  if (!(await exists(publicFile))) {
    const privatePem = await readKeyFile(privateFile, "private key");
    const derived = await withFile(
      privateFile,
      publicKeyFromPrivate(privatePem),
    );
    await writeNew(publicFile, derived + "\n", 0o644);
  }
  const pem = await loadKeyPairFiles({
    privateKeyFile: privateFile,
    publicKeyFile: publicFile,
  });
  const idFile = `${dir}/${KEY_FILES.id}`;
  if (!(await exists(idFile))) {
    await writeNew(idFile, crypto.randomUUID() + "\n", 0o644);
  }
  const id = (await Deno.readTextFile(idFile)).trim();
  if (id === "") throw new KeyFormatError(`key id file ${idFile} is empty`);
  return { pair: { id, public: pem.public, private: pem.private }, created };
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    throw new KeyFormatError(
      `cannot read ${what} file ${path}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** Names the file in a key format error. */
async function withFile<T>(path: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (cause) {
    throw new KeyFormatError(`${path}: ${(cause as Error).message}`, { cause });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Creates `path`; `false` when another process created it first. */
/**
 * Creates `path` with `text` unless it exists (false then). The file appears
 * whole: written aside, then hard-linked into place, so a Kontrol starting
 * at the same moment (or `--initial`) never reads it half written.
 */
async function writeNew(
  path: string,
  text: string,
  mode: number,
): Promise<boolean> {
  const aside = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(aside, text, { mode, createNew: true });
  try {
    await Deno.link(aside, path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    // A file system without hard links: create in place, as a last resort.
    return await createInPlace(path, text, mode);
  } finally {
    await Deno.remove(aside);
  }
}

async function createInPlace(
  path: string,
  text: string,
  mode: number,
): Promise<boolean> {
  try {
    await Deno.writeTextFile(path, text, { mode, createNew: true });
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
}

async function writeReplacing(
  path: string,
  text: string,
  mode: number,
): Promise<void> {
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await writeNew(path, text, mode);
}
