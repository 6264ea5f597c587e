/**
 * Bounded waiting and free ports for tests: every wait fails with a message
 * instead of hanging, and timers are cleared so sanitizers stay quiet.
 *
 * @module
 */

/** Default bound for a single wait in tests. */
export const GUARD_MS = 5_000;

/** Rejects after `ms` with `what` in the message; the timer is cleared when `p` settles. */
export function within<T>(
  p: Promise<T>,
  what: string,
  ms = GUARD_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`gave up waiting for ${what} after ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Polls `condition` (sync or async) every few ms until it holds; fails after `ms`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms = GUARD_MS,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Ports below Linux's ephemeral range (32768–60999), so no outgoing connection takes one. */
const PORT_LOW = 20_000;
const PORT_SPAN = 12_000;
const handedOut = new Set<number>();

/**
 * A port on 127.0.0.1 that was free a moment ago. It is drawn at random below
 * the ephemeral range: a port the OS picks for `port: 0` is one it also gives
 * to outgoing connections, and under load one of the tests' own clients took
 * it between the check and the server's bind. Another process may still take
 * it before the caller binds it, so servers started on it should retry.
 */
export function freePort(): number {
  for (let i = 0; i < 100; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * PORT_SPAN);
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
