/**
 * `kitectl describe`: the contracts a kite serves (`kite.describe`, README
 * "Typed contracts"): per method its arguments and result as short type
 * text, or the whole JSON Schema document with `--json`.
 *
 * @module
 */
import { type Command, UsageError } from "./cli.ts";
import { KONTROL_FLAG, QUERY_FLAGS } from "./session.ts";
import { withTarget } from "./target.ts";
import { describeOf, methodText } from "./contract_args.ts";
import { DESCRIBE_METHOD } from "../kite/contract/mod.ts";

/** The `describe` subcommand. */
export const describe: Command = {
  name: "describe",
  usage: "describe URL|/user/env/name/…",
  summary:
    "Show the contracts a kite serves: methods, argument and result schemas.",
  flags: [...QUERY_FLAGS, KONTROL_FLAG],
  more: [
    "Text: one line per method, `name(args) -> result  [idempotent, no auth]  description`.",
    "--json prints the kite.describe document (JSON Schema draft 2020-12).",
  ].join("\n"),
  async run(p, out) {
    const target = p.positionals[0];
    if (!target) throw new UsageError("describe needs a URL or a query");
    return await withTarget(p, target, async (tell) => {
      const d = await describeOf(tell);
      if (!d) {
        throw new Error(
          `the kite does not answer ${DESCRIBE_METHOD}: it serves no typed contract (a Go kite, kite.js, or a kite without implement())`,
        );
      }
      out.print(d, () => {
        const lines = [`kite ${d.kite?.name} ${d.kite?.version}`];
        for (const c of d.contracts ?? []) {
          lines.push(`contract ${c.name} ${c.version}`);
          for (const [name, m] of Object.entries(c.methods ?? {})) {
            lines.push(`  ${methodText(name, m)}`);
          }
        }
        if (!d.contracts?.length) lines.push("(no contracts)");
        return lines.join("\n");
      });
      return 0;
    });
  },
};
