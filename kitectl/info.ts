/**
 * `kitectl info`: a kite's `kite.systemInfo` (disk, memory, OS, user).
 *
 * @module
 */
import { type Command, table, UsageError } from "./cli.ts";
import { KONTROL_FLAG, QUERY_FLAGS } from "./session.ts";
import { withTarget } from "./target.ts";

/** The `info` subcommand. */
export const info: Command = {
  name: "info",
  usage: "info URL|/user/env/name/…",
  summary: "Show a kite's kite.systemInfo.",
  flags: [...QUERY_FLAGS, KONTROL_FLAG],
  async run(p, out) {
    const target = p.positionals[0];
    if (!target) throw new UsageError("info needs a URL or a query");
    return await withTarget(p, target, async (tell) => {
      const sys = await tell("kite.systemInfo") as Record<string, unknown>;
      out.print(sys, () =>
        table(
          ["FIELD", "VALUE"],
          Object.entries(sys ?? {}).map(([k, v]) => [k, String(v)]),
        ));
      return 0;
    });
  },
};
