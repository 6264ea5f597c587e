/**
 * `kitectl keys list|rotate|delete`: Kontrol's key pairs, for its operator
 * (the kite.key of Kontrol's own user, from `deno task kontrol --initial`).
 * After a rotation or delete, kites holding keys of the retired pair get a
 * re-issued kite.key from Kontrol on their next `register`.
 *
 * @module
 */
import { type Command, table, UsageError } from "./cli.ts";
import { callerKite, KONTROL_FLAG } from "./session.ts";

interface PairInfo {
  id: string;
  public: string;
  deleted: boolean;
  current: boolean;
}

/** The `keys` subcommand. */
export const keys: Command = {
  name: "keys",
  usage: "keys list | keys rotate | keys delete ID",
  summary:
    "List, rotate or retire Kontrol's key pairs (Kontrol's own user only).",
  flags: [KONTROL_FLAG],
  more: [
    "rotate: a new pair signs from now on; the previous one is retired.",
    "delete ID: retires that pair. Kites with keys of a retired pair still",
    "authenticate, and get a re-issued kite.key when they next register.",
  ].join("\n"),
  async run(p, out) {
    const [action, id] = p.positionals;
    if (!["list", "rotate", "delete"].includes(action ?? "")) {
      throw new UsageError("keys needs list, rotate or delete");
    }
    if (action === "delete" && !id) {
      throw new UsageError("keys delete needs an ID");
    }
    const kite = callerKite(p);
    try {
      const kontrol = await kite.kontrol.connection();
      const ms = kite.config.timeoutMs;
      if (action === "list") {
        const pairs = await kontrol.tellWithTimeout(
          "kontrol.keys.list",
          ms,
        ) as PairInfo[];
        out.print(pairs, () =>
          table(
            ["ID", "STATE"],
            pairs.map((k) => [
              k.id,
              k.current ? "current" : k.deleted ? "retired" : "live",
            ]),
          ));
      } else if (action === "rotate") {
        const r = await kontrol.tellWithTimeout("kontrol.keys.rotate", ms) as {
          id: string;
          retired: string;
        };
        out.print(r, () => `new key pair ${r.id}; retired ${r.retired}`);
      } else {
        await kontrol.tellWithTimeout("kontrol.keys.delete", ms, id);
        out.print({ retired: id }, () => `retired ${id}`);
      }
      return 0;
    } finally {
      await kite.close();
    }
  },
};
