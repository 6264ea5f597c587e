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

/**
 * A port on 127.0.0.1 that was free a moment ago. Another process may take
 * it before the caller binds it, so servers started on it should retry.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
