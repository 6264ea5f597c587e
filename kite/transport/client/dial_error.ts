/**
 * Error text shared by the client transports.
 *
 * @module
 */

/**
 * A one-line text for any thrown value or error event, with the causes it
 * wraps (`fetch` says only "fetch failed" and keeps the reason in `cause`).
 */
export function describeError(error: unknown): string {
  if (error instanceof ErrorEvent) return error.message || "connection error";
  if (!(error instanceof Error)) return String(error);
  let text = error.message || error.name;
  let cause = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    if (cause.message) text += `: ${cause.message}`;
    cause = cause.cause;
  }
  return text;
}

/** The error a failed dial rejects with: it names the URL and the cause. */
export function dialError(url: string, cause: unknown): Error {
  const text = typeof cause === "string" ? cause : describeError(cause);
  return new Error(`dial ${url}: ${text}`, { cause });
}
