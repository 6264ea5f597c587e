/**
 * The reverse proxy's connection to a kite for a spliced WebSocket: TCP,
 * or TLS for an `https:`/`wss:` kite URL (trusting what Deno trusts, e.g.
 * `DENO_CERT`), within a deadline.
 *
 * @module
 */

/** Connects to the kite at `url` (TLS for `https:`/`wss:`) within `timeoutMs`. */
export async function dial(url: URL, timeoutMs: number): Promise<Deno.Conn> {
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  const port = Number(url.port || (secure ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const signal = AbortSignal.timeout(timeoutMs);
  const connecting = secure
    ? Deno.connectTls({ hostname, port })
    : Deno.connect({ hostname, port, signal } as Deno.ConnectOptions);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no connection within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const conn = await Promise.race([connecting, late]);
    if (!secure) (conn as Deno.TcpConn).setNoDelay(true);
    return conn;
  } catch (err) {
    // A connection that comes after the deadline is closed, unused.
    connecting.then((c) => c.close(), () => {});
    throw signal.aborted
      ? new Error(`no connection within ${timeoutMs} ms`)
      : err;
  } finally {
    clearTimeout(timer);
  }
}
