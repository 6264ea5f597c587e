/**
 * kitectl's command-line plumbing: flag parsing, the usage error (exit 2),
 * and output in text or `--json`.
 *
 * @module
 */

/** A mistake in the command line: exit status 2, with a hint to `--help`. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A flag a subcommand accepts. */
export interface FlagSpec {
  /** Long name, without the dashes. */
  name: string;
  /** Takes a value (`--name value` / `--name=value`); else a switch. */
  value?: boolean;
  /** One line for `--help`. */
  help: string;
}

/** Parsed command line of one subcommand. */
export interface Parsed {
  /** Flag values (`"true"` for switches). */
  flags: Map<string, string>;
  /** Arguments that are not flags, in order. */
  positionals: string[];
}

/** Flags every subcommand takes. */
export const COMMON_FLAGS: FlagSpec[] = [
  { name: "json", help: "print JSON instead of text" },
  { name: "help", help: "show this help" },
  {
    name: "timeout",
    value: true,
    help: "give up after this many ms (default 15000, or KITE_TIMEOUT)",
  },
];

/**
 * Parses `args` against `specs` (plus {@linkcode COMMON_FLAGS}). A lone
 * `--` ends the flags, so later arguments may start with a dash.
 * @throws {UsageError} naming an unknown flag or a missing value.
 */
export function parseFlags(args: string[], specs: FlagSpec[]): Parsed {
  const all = new Map([...COMMON_FLAGS, ...specs].map((s) => [s.name, s]));
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg === "-h") flags.set("help", "true");
      else positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const spec = all.get(name);
    if (!spec) throw new UsageError(`unknown flag ${arg}`);
    if (!spec.value) {
      if (inline !== undefined) {
        throw new UsageError(`flag --${name} takes no value`);
      }
      flags.set(name, "true");
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) {
      throw new UsageError(`flag --${name} needs a value`);
    }
    flags.set(name, value);
  }
  return { flags, positionals };
}

/** A whole number flag, or `fallback`. @throws {UsageError} when not one. */
export function intFlag(p: Parsed, name: string, fallback: number): number {
  const v = p.flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`--${name} must be a whole number, got ${v}`);
  }
  return n;
}

/** A flag's value. @throws {UsageError} when missing. */
export function requiredFlag(p: Parsed, name: string): string {
  const v = p.flags.get(name);
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
}

/** `--help` text for a subcommand. */
export function helpFor(
  usage: string,
  summary: string,
  specs: FlagSpec[],
  more = "",
): string {
  const lines = [...specs, ...COMMON_FLAGS].map((s) =>
    `  --${(s.name + (s.value ? " <value>" : "")).padEnd(22)} ${s.help}`
  );
  return [
    `Usage: deno task kitectl ${usage}`,
    "",
    summary,
    ...(more ? ["", more] : []),
    "",
    "Flags:",
    ...lines,
  ].join("\n");
}

/** Where a subcommand writes; `json` chooses the format. */
export class Output {
  /** Print JSON (`--json`). */
  readonly json: boolean;
  readonly #write: (line: string) => void;

  /** `write` gets one line at a time (stdout by default). */
  constructor(json: boolean, write: (line: string) => void = console.log) {
    this.json = json;
    this.#write = write;
  }

  /** Prints `value` as one JSON line (`--json`), or `text()` otherwise. */
  print(value: unknown, text: () => string): void {
    this.#write(this.json ? JSON.stringify(value) : text());
  }
}

/** Renders rows as a left-aligned table with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** One subcommand. */
export interface Command {
  /** What follows `kitectl`. */
  name: string;
  /** The usage line after `kitectl`. */
  usage: string;
  /** One sentence for the command list and `--help`. */
  summary: string;
  /** Its own flags (the common ones are added). */
  flags: FlagSpec[];
  /** Further `--help` text. */
  more?: string;
  /** Runs it; resolves with the exit status. */
  run(p: Parsed, out: Output): Promise<number>;
}
