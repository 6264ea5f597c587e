/**
 * `kitectl tell`: calls a method with JSON arguments. An argument (or any
 * value nested in one) written `{"$fn":"label"}` is sent as a function; when
 * the kite calls it back, kitectl prints `callback label [args…]` (with
 * `--json`: `{"callback":"label","args":[…]}`). `--callbacks N` waits, after
 * the result, until callbacks were called N times in all. When the kite
 * describes its contracts (`kite.describe`), the arguments are checked
 * against the method's schema before anything is sent (`--no-check`: not).
 *
 * @module
 */
import { type Command, intFlag, type Output, UsageError } from "./cli.ts";
import { KONTROL_FLAG, QUERY_FLAGS } from "./session.ts";
import { withTarget } from "./target.ts";
import { CALLBACK_MARKER, checkTellArgs } from "./contract_args.ts";

export { CALLBACK_MARKER };

/** Counts callback calls and lets a caller wait for a number of them. */
class Callbacks {
  calls = 0;
  #waiters: { n: number; resolve: () => void }[] = [];
  constructor(readonly out: Output) {}

  make(label: string): (...args: unknown[]) => void {
    return (...args: unknown[]) => {
      this.calls++;
      this.out.print(
        { callback: label, args },
        () => `callback ${label} ${JSON.stringify(args)}`,
      );
      for (const w of this.#waiters) if (this.calls >= w.n) w.resolve();
    };
  }

  until(n: number): Promise<void> {
    if (this.calls >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}

/** Replaces every `{"$fn": label}` in `value` with a callback. */
function withCallbacks(value: unknown, callbacks: Callbacks): unknown {
  if (Array.isArray(value)) {
    return value.map((v) => withCallbacks(v, callbacks));
  }
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === CALLBACK_MARKER) {
    return callbacks.make(String(o[CALLBACK_MARKER]));
  }
  return Object.fromEntries(
    keys.map((k) => [k, withCallbacks(o[k], callbacks)]),
  );
}

/** Parses each argument as JSON. @throws {UsageError} naming the bad one. */
export function parseArgs(texts: string[]): unknown[] {
  return texts.map((text, i) => {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new UsageError(
        `argument ${i + 1} is not JSON (${
          (err as Error).message
        }): ${text}; quote strings as '"text"'`,
      );
    }
  });
}

/** The `tell` subcommand. */
export const tell: Command = {
  name: "tell",
  usage: "tell URL|/user/env/name/… METHOD [ARG-as-JSON …]",
  summary:
    "Call METHOD on the kite at URL, or on one of the kites matching the query (through a pool).",
  flags: [
    ...QUERY_FLAGS,
    KONTROL_FLAG,
    {
      name: "callbacks",
      value: true,
      help:
        "after the result, wait until callbacks were called this many times",
    },
    {
      name: "no-check",
      help:
        "send the arguments unchecked, even when the kite describes its contract",
    },
  ],
  more: [
    'Each ARG is JSON: 4, \'"text"\', \'{"a":1}\'. Write {"$fn":"label"} where the method',
    "expects a function: kitectl prints `callback label [args]` each time it is called.",
    "When the kite serves a contract (kite.describe), the arguments are checked against",
    "it first: a bad one is a one-line error naming the method and path, and nothing is sent.",
    "Example: deno task kitectl tell http://127.0.0.1:3636/kite square 4",
  ].join("\n"),
  async run(p, out) {
    const [target, method, ...texts] = p.positionals;
    if (!target || !method) {
      throw new UsageError("tell needs a target and a METHOD");
    }
    const wanted = intFlag(p, "callbacks", 0);
    const callbacks = new Callbacks(out);
    const parsed = parseArgs(texts);
    const args = parsed.map((a) => withCallbacks(a, callbacks));
    return await withTarget(p, target, async (call, kite) => {
      if (!p.flags.has("no-check")) await checkTellArgs(call, method, parsed);
      const result = await call(method, ...args);
      out.print({ result }, () => JSON.stringify(result, null, 2));
      if (wanted > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `only ${callbacks.calls} of ${wanted} callbacks came within ${kite.config.timeoutMs} ms`,
                ),
              ),
            kite.config.timeoutMs,
          );
        });
        try {
          await Promise.race([callbacks.until(wanted), late]);
        } finally {
          clearTimeout(timer);
        }
      }
      return 0;
    });
  },
};
