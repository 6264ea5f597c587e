/**
 * What a kite tells its user when Kontrol cannot be reached or refuses its
 * kite.key: the URL, what the error means, and what to do.
 *
 * @module
 */
import { KiteError } from "./errors.ts";

/** Kontrol did not answer any of `urls` within `timeoutMs`. */
export function unreachableError(
  urls: string[],
  timeoutMs: number,
  lastError: string | undefined,
): KiteError {
  const where = urls.length === 1
    ? `Kontrol at ${urls[0]}`
    : `any Kontrol of ${urls.join(", ")}`;
  return new KiteError(
    "timeout",
    `cannot reach ${where} within ${seconds(timeoutMs)}` +
      (lastError ? ` (${lastError})` : "") +
      ": check that Kontrol runs there and that KITE_KONTROL_URL (or the kite.key's kontrolURL) " +
      "names it; KITE_TIMEOUT (config.timeoutMs) sets this wait",
  );
}

/**
 * True for Kontrol refusing the kite.key itself (`kiteKey: not found`,
 * `kiteKey: no key pair found`, `kiteKey: kontrol key is not trusted`):
 * retrying with the same key cannot succeed.
 */
export function isKiteKeyRefusal(err: unknown): boolean {
  return err instanceof KiteError && err.type === "authenticationError" &&
    err.message.startsWith("kiteKey: ") && !(err.cause instanceof KiteError);
}

/**
 * Rewords a refused kite.key (docs/protocol.md §6.5: Kontrol trusts only kite keys
 * signed by a key pair in its storage) so the user learns what it means.
 * Other errors come back unchanged.
 */
export function explainKontrolError(err: unknown, url: string): unknown {
  if (!isKiteKeyRefusal(err)) return err;
  const e = err as KiteError;
  return new KiteError(
    "authenticationError",
    `${e.message}: Kontrol at ${url} refused this kite's kite.key, ` +
      "which was signed by a key pair this Kontrol does not know: it comes from " +
      "another Kontrol, or this Kontrol's data directory or key files changed. " +
      "Get a new kite.key from this Kontrol (`deno task kontrol --initial --username <name>` " +
      "with its KONTROL_DATA or key files), or point KITE_KONTROL_URL at the Kontrol that issued it",
    { cause: err, code: e.code, id: e.id },
  );
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
