/**
 * `kitectl ping`: calls `kite.ping` and expects `pong`.
 *
 * @module
 */
import { type Command, UsageError } from "./cli.ts";
import { KONTROL_FLAG, QUERY_FLAGS } from "./session.ts";
import { withTarget } from "./target.ts";

/** The `ping` subcommand. */
export const ping: Command = {
  name: "ping",
  usage: "ping URL|/user/env/name/…",
  summary: "Call kite.ping on a kite; prints pong.",
  flags: [...QUERY_FLAGS, KONTROL_FLAG],
  async run(p, out) {
    const target = p.positionals[0];
    if (!target) throw new UsageError("ping needs a URL or a query");
    return await withTarget(p, target, async (tell) => {
      const started = performance.now();
      const answer = await tell("kite.ping");
      const ms = Math.round(performance.now() - started);
      out.print({ answer, ms }, () => `${answer} (${ms} ms)`);
      return answer === "pong" ? 0 : 1;
    });
  },
};
