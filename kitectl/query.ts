/**
 * `kitectl query`: the kites Kontrol's `getKites` finds (docs/protocol.md §8.2), as a
 * table or JSON, optionally only those serving a contract. Tokens are left out.
 *
 * @module
 */
import { type ContractQuery, kiteToString } from "../mod.ts";
import { type Command, table, UsageError } from "./cli.ts";
import {
  callerKite,
  KONTROL_FLAG,
  ownedQuery,
  QUERY_FLAGS,
  queryFrom,
} from "./session.ts";

/** `--contract NAME[@RANGE]` as a getKites contract filter. */
function contractFlag(text: string | undefined): ContractQuery | undefined {
  if (text === undefined) return undefined;
  const at = text.indexOf("@");
  const name = at < 0 ? text : text.slice(0, at);
  const version = at < 0 ? "" : text.slice(at + 1);
  if (!name) {
    throw new UsageError(`--contract needs a name, as NAME or NAME@RANGE`);
  }
  return version ? { name, version } : { name };
}

/** The `query` subcommand. */
export const query: Command = {
  name: "query",
  usage:
    "query [/user/env/name/…] [--username U] [--environment E] [--name N] [--version RANGE] …",
  summary: "List the kites registered with Kontrol that match the query.",
  flags: [...QUERY_FLAGS, KONTROL_FLAG, {
    name: "contract",
    value: true,
    help:
      "only kites serving this contract: NAME or NAME@RANGE (math@^1.2, math@>=1.2.0)",
  }],
  async run(p, out) {
    const q = queryFrom(p, p.positionals[0]);
    const contract = contractFlag(p.flags.get("contract"));
    const kite = callerKite(p);
    try {
      const found = await kite.getKites(ownedQuery(q, kite), { contract });
      for (const f of found) f.renewer.stop();
      const kites = found.map((f) => ({
        kite: f.kite,
        url: f.url,
        ...(f.contracts && { contracts: f.contracts }),
      }));
      // The CONTRACTS column only when some kite registered a contract.
      const withContracts = kites.some((k) => k.contracts);
      out.print(kites, () =>
        table(
          ["KITE", "URL", ...(withContracts ? ["CONTRACTS"] : [])],
          kites.map((k) => [
            kiteToString(k.kite),
            k.url,
            ...(withContracts
              ? [
                (k.contracts ?? []).map((c) => `${c.name}@${c.version}`).join(
                  ",",
                ),
              ]
              : []),
          ]),
        ));
      return 0;
    } finally {
      await kite.close();
    }
  },
};
