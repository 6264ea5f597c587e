/**
 * `kitectl dashboard`: the address of the Kontrol dashboard (Kontrol run
 * with `--dashboard`) with a token for the kite.key's user in its
 * fragment, which the page reads and drops from the address bar. The
 * token lets the page list and watch kites as that user; it cannot get
 * another token for Kontrol (only a kite.key can).
 *
 * @module
 */
import type { Command } from "./cli.ts";
import { callerKite, KONTROL_FLAG } from "./session.ts";

/** The `dashboard` subcommand. */
export const dashboard: Command = {
  name: "dashboard",
  usage: "dashboard [--kontrol URL]",
  summary:
    "Print the Kontrol dashboard's address with a token for your kite.key's user.",
  flags: [KONTROL_FLAG],
  async run(p, out) {
    const kite = callerKite(p);
    try {
      const token = await kite.kontrol.getToken({
        username: kite.config.kontrolUser || "kontrol",
        name: "kontrol",
      });
      const url = new URL("/dashboard", kite.kontrol.url);
      url.hash = `token=${token}`;
      out.print(
        { url: url.href, username: kite.config.username },
        () => url.href,
      );
      return 0;
    } finally {
      await kite.close();
    }
  },
};
