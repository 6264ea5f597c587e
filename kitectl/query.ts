/**
 * `kitectl query`: the kites Kontrol's `getKites` finds (docs/protocol.md §8.2), as a
 * table or JSON. Tokens are left out.
 *
 * @module
 */
import { kiteToString } from "../mod.ts";
import { type Command, table } from "./cli.ts";
import {
  callerKite,
  KONTROL_FLAG,
  ownedQuery,
  QUERY_FLAGS,
  queryFrom,
} from "./session.ts";

/** The `query` subcommand. */
export const query: Command = {
  name: "query",
  usage:
    "query [/user/env/name/…] [--username U] [--environment E] [--name N] [--version RANGE] …",
  summary: "List the kites registered with Kontrol that match the query.",
  flags: [...QUERY_FLAGS, KONTROL_FLAG],
  async run(p, out) {
    const q = queryFrom(p, p.positionals[0]);
    const kite = callerKite(p);
    try {
      const found = await kite.getKites(ownedQuery(q, kite));
      for (const f of found) f.renewer.stop();
      const kites = found.map((f) => ({ kite: f.kite, url: f.url }));
      out.print(kites, () =>
        table(
          ["KITE", "URL"],
          kites.map((k) => [kiteToString(k.kite), k.url]),
        ));
      return 0;
    } finally {
      await kite.close();
    }
  },
};
