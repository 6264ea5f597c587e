/**
 * The proxy's own answers: plain text that names the kite, the limit or
 * the cause, so a caller reading a failed request knows what to do.
 *
 * @module
 */

/** A plain-text error answer; `close` asks the caller's connection to close. */
export function proxyError(
  status: number,
  text: string,
  close = false,
): Response {
  const headers = new Headers({ "content-type": "text/plain; charset=utf-8" });
  if (close) headers.set("connection", "close");
  return new Response(text + "\n", { status, headers });
}
