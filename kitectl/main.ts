/**
 * `deno task kitectl`: operate kites and Kontrol from a shell. Exit status
 * 0 on success, 1 on failure, 2 on a usage error; errors are one line on
 * stderr.
 *
 * @module
 */
import { KiteError } from "../mod.ts";
import {
  type Command,
  helpFor,
  Output,
  parseFlags,
  UsageError,
} from "./cli.ts";
import { describe } from "./describe.ts";
import { codes } from "./codes.ts";
import { info } from "./info.ts";
import { keys } from "./keys.ts";
import { ping } from "./ping.ts";
import { query } from "./query.ts";
import { dashboard } from "./dashboard.ts";
import { register } from "./register.ts";
import { showkey } from "./showkey.ts";
import { tell } from "./tell.ts";
import { watch } from "./watch.ts";

/** Every subcommand, in `--help` order. */
export const COMMANDS: Command[] = [
  register,
  showkey,
  query,
  watch,
  tell,
  describe,
  ping,
  info,
  keys,
  dashboard,
  codes,
];

function overview(): string {
  return [
    "kitectl: operate kites and Kontrol from a shell.",
    "",
    "Usage: deno task kitectl <command> [flags]   (each command takes --help and --json)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    "",
    "Exit status: 0 ok, 1 failure, 2 usage error.",
  ].join("\n");
}

/** One line, whatever was thrown. */
function oneLine(err: unknown): string {
  const text = err instanceof KiteError
    ? `${err.type}: ${err.message}`
    : err instanceof Error
    ? err.message
    : String(err);
  return text.replace(/\s*\n\s*/g, " ");
}

/** Runs kitectl with `args`; resolves with the exit status. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(overview());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(
      `kitectl: unknown command ${name}; see deno task kitectl --help`,
    );
    return 2;
  }
  try {
    const parsed = parseFlags(rest, command.flags);
    if (parsed.flags.has("help")) {
      console.log(
        helpFor(command.usage, command.summary, command.flags, command.more),
      );
      return 0;
    }
    return await command.run(parsed, new Output(parsed.flags.has("json")));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(
        `kitectl ${name}: ${err.message}; see deno task kitectl ${name} --help`,
      );
      return 2;
    }
    console.error(`kitectl ${name}: ${oneLine(err)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
