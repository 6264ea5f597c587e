/**
 * The `kite.key` file: where it lives, reading it (verified with the key
 * embedded in itself, as Go does) and writing it (docs/protocol.md §6.3, §6.11).
 *
 * @module
 */
import { compactVerify } from "jose/jws/compact/verify";
import { type Clock, systemClock } from "../clock.ts";
import {
  algProblem,
  decodeJwt,
  DEFAULT_CLOCK_SKEW_MS,
  timeProblem,
} from "./jwt.ts";
import { type KeyCache, type RsaAlg, sharedKeyCache } from "./keys.ts";

/** File name of the kite key inside the kite home. */
export const KITE_KEY_FILE = "kite.key";

/** What to tell a user who has no usable kite.key. */
export const KITE_KEY_HINT: string =
  "run `deno task kontrol --initial --username <name>` (or ask your Kontrol admin) " +
  "to write $KITE_HOME/kite.key";

/** Claims of a kite.key (docs/protocol.md §6.3); missing string claims are `""`. */
export interface KiteKeyClaims {
  /** Key id (UUID); Go copies it to `Config.Id`. */
  jti: string;
  /** Issued at, Unix seconds (back-dated by Kontrol's leeway). */
  iat: number;
  /** The Kontrol's username; the issuer tokens must carry (docs/protocol.md §6.6). */
  iss: string;
  /** The user this key belongs to; the kite's username. */
  sub: string;
  /** The Kontrol public key PEM, trimmed; trusted for tokens and kite keys. */
  kontrolKey: string;
  /** The Kontrol's kite URL. */
  kontrolURL: string;
}

/** A kite.key read and verified. */
export interface KiteKey {
  /** The JWT text, whitespace trimmed; sent as `kiteKey` auth. */
  raw: string;
  /** Its claims. */
  claims: KiteKeyClaims;
}

/**
 * Why a kite.key could not be used; `"permission"` when Deno was not given
 * the `--allow-env` or `--allow-read`/`--allow-write` it needs (the message
 * names the flag).
 */
export type KiteKeyProblem =
  | "missing"
  | "unreadable"
  | "malformed"
  | "permission";

/** A kite.key that is missing, unreadable or malformed; says how to get one. */
export class KiteKeyError extends Error {
  /** What went wrong. */
  readonly problem: KiteKeyProblem;
  /** The file concerned, when known. */
  readonly path?: string;

  /** Creates the error; `message` should end with {@linkcode KITE_KEY_HINT}. */
  constructor(
    problem: KiteKeyProblem,
    message: string,
    options: { path?: string; cause?: unknown } = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "KiteKeyError";
    this.problem = problem;
    this.path = options.path;
  }
}

/** The environment variables {@linkcode kiteHome} looks at. */
export interface KiteHomeEnv {
  /** Overrides the kite home. */
  KITE_HOME?: string;
  /** The user's home directory (POSIX). */
  HOME?: string;
  /** The user's home directory (Windows). */
  USERPROFILE?: string;
}

/** The `--allow-env` a kite needs for its settings and kite.key. */
export const ALLOW_ENV_HINT = "--allow-env=KITE_*,HOME";

/**
 * The kite home directory: `$KITE_HOME`, else `~/.kite` (docs/protocol.md §6.11).
 * Reads the process environment unless `env` is given.
 * @throws {KiteKeyError} when neither `KITE_HOME` nor a home directory is
 * set, or (`"permission"`) when Deno may not read them.
 */
export function kiteHome(env?: KiteHomeEnv): string {
  let denied: string[] = [];
  if (!env) ({ env, denied } = processEnv());
  // Without KITE_HOME's value, ~/.kite could be the wrong directory.
  if (env.KITE_HOME) return env.KITE_HOME;
  const home = env.HOME || env.USERPROFILE;
  if (denied.length > 0 && (!home || denied.includes("KITE_HOME"))) {
    throw new KiteKeyError(
      "permission",
      `cannot locate the kite home: no permission to read ${
        denied.join(" or ")
      }; run deno with ${ALLOW_ENV_HINT} (or --allow-env)`,
    );
  }
  if (!home) {
    throw new KiteKeyError(
      "missing",
      `cannot locate the kite home: set KITE_HOME or HOME; then ${KITE_KEY_HINT}`,
    );
  }
  return joinPath(home, ".kite");
}

/** True for the error Deno throws when a permission flag is missing. */
export function isPermissionError(err: unknown): boolean {
  return typeof Deno !== "undefined" && err instanceof Deno.errors.NotCapable;
}

function processEnv(): { env: KiteHomeEnv; denied: string[] } {
  const denied: string[] = [];
  const get = (name: string): string | undefined => {
    try {
      return Deno.env.get(name);
    } catch (err) {
      if (isPermissionError(err)) denied.push(name);
      return undefined;
    }
  };
  const env = {
    KITE_HOME: get("KITE_HOME"),
    HOME: get("HOME"),
    USERPROFILE: Deno.build.os === "windows" ? get("USERPROFILE") : undefined,
  };
  return { env, denied };
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\")
    ? dir + name
    : `${dir}/${name}`;
}

/** Options for {@linkcode readKiteKey}. */
export interface ReadKiteKeyOptions {
  /** Time source for the `iat` check. @default {systemClock} */
  clock?: Clock;
  /** Clock skew tolerated on `iat`. @default {300000} */
  clockSkewMs?: number;
  /** Where the embedded Kontrol key is imported. @default {sharedKeyCache} */
  keyCache?: KeyCache;
}

/**
 * Reads and checks a kite.key (default `$KITE_HOME/kite.key`). Like Go's
 * `kitekey.Parse`, the signature is checked with the `kontrolKey` embedded
 * in the key itself, and the time claims must hold (docs/protocol.md §6.3). This proves
 * the file is intact; it does not make the embedded key trusted by anyone
 * else.
 *
 * @throws {KiteKeyError} when the file is missing, unreadable or malformed.
 */
export async function readKiteKey(
  path?: string,
  options: ReadKiteKeyOptions = {},
): Promise<KiteKey> {
  const file = path ?? joinPath(kiteHome(), KITE_KEY_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (cause) {
    if (isPermissionError(cause)) {
      throw new KiteKeyError(
        "permission",
        `no permission to read the kite.key at ${file}: run deno with --allow-read=${file}`,
        { path: file, cause },
      );
    }
    if (cause instanceof Deno.errors.NotFound) {
      throw new KiteKeyError(
        "missing",
        `no kite.key at ${file}: ${KITE_KEY_HINT}`,
        {
          path: file,
          cause,
        },
      );
    }
    throw new KiteKeyError(
      "unreadable",
      `cannot read kite.key at ${file} (${
        (cause as Error).message
      }): ${KITE_KEY_HINT}`,
      { path: file, cause },
    );
  }
  const raw = text.trim();
  try {
    return { raw, claims: await verifyKiteKey(raw, options) };
  } catch (cause) {
    throw new KiteKeyError(
      "malformed",
      `kite.key at ${file} is not valid (${
        (cause as Error).message
      }): ${KITE_KEY_HINT}`,
      { path: file, cause },
    );
  }
}

/**
 * Checks a kite.key JWT against the Kontrol key embedded in it and returns
 * its claims. Throws a plain Error describing the problem.
 */
export async function verifyKiteKey(
  raw: string,
  options: ReadKiteKeyOptions = {},
): Promise<KiteKeyClaims> {
  const { header, claims } = decodeJwt(raw);
  const bad = algProblem(header);
  if (bad) throw new Error(bad);
  if (!claims.kontrolKey) throw new Error("no kontrol key found");
  if (!claims.sub) throw new Error("token has no username");
  const alg = header.alg as RsaAlg;
  const key = await (options.keyCache ?? sharedKeyCache).publicKey(
    claims.kontrolKey,
    alg,
  );
  try {
    await compactVerify(raw, key, { algorithms: [alg] });
  } catch (cause) {
    throw new Error("signature does not match the embedded kontrolKey", {
      cause,
    });
  }
  const late = timeProblem(
    claims,
    Math.floor((options.clock ?? systemClock).now() / 1000),
    Math.floor((options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS) / 1000),
  );
  if (late) throw new Error(late);
  return {
    jti: claims.jti ?? "",
    iat: claims.iat ?? 0,
    iss: claims.iss ?? "",
    sub: claims.sub,
    kontrolKey: claims.kontrolKey,
    kontrolURL: claims.kontrolURL ?? "",
  };
}

/**
 * Writes `jwt` as `<home>/kite.key` (default {@linkcode kiteHome}) with
 * directory mode 0700 and file mode 0400, replacing an existing key, as
 * Go's `kitekey.Write` (docs/protocol.md §6.11). The key is written to a
 * temporary file beside it and renamed over it, so a reader, or a crash,
 * finds the old key or the new one, never none or half of one. Returns
 * the file path.
 *
 * @throws {TypeError} when `jwt` does not look like a JWT.
 */
export async function writeKiteKey(
  jwt: string,
  home?: string,
): Promise<string> {
  const key = jwt.trim();
  if (key.split(".").length !== 3) {
    throw new TypeError(
      "kite key must be a JWT (three dot-separated segments)",
    );
  }
  const dir = home ?? kiteHome();
  const file = joinPath(dir, KITE_KEY_FILE);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = joinPath(dir, `.${KITE_KEY_FILE}.${crypto.randomUUID()}.tmp`);
    try {
      await Deno.writeTextFile(temp, key, { mode: 0o400, createNew: true });
      await Deno.rename(temp, file);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
  } catch (cause) {
    if (!isPermissionError(cause)) throw cause;
    throw new KiteKeyError(
      "permission",
      `no permission to write the kite.key at ${file}: run deno with --allow-read=${dir} --allow-write=${dir}`,
      { path: file, cause },
    );
  }
  return file;
}
