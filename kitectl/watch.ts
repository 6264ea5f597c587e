/**
 * `kitectl watch`: register and deregister events of the kites matching a
 * query, live, one line each, until Ctrl-C or `--count` events.
 *
 * @module
 */
import { type KiteEvent, kiteToString } from "../mod.ts";
import { type Command, intFlag } from "./cli.ts";
import {
  callerKite,
  KONTROL_FLAG,
  ownedQuery,
  QUERY_FLAGS,
  queryFrom,
} from "./session.ts";

/** The `watch` subcommand. */
export const watch: Command = {
  name: "watch",
  usage: "watch [/user/env/name/…] [--name N] … [--count N]",
  summary:
    "Print REGISTER/DEREGISTER events of matching kites as they happen (kites already there are not listed).",
  flags: [
    ...QUERY_FLAGS,
    KONTROL_FLAG,
    { name: "count", value: true, help: "exit after this many events" },
  ],
  more:
    "`watching …` goes to stderr once Kontrol accepted the watch; Ctrl-C ends it (exit 0).",
  async run(p, out) {
    const q = queryFrom(p, p.positionals[0]);
    const count = intFlag(p, "count", 0);
    const kite = callerKite(p);
    let seen = 0;
    const { promise: done, resolve } = Promise.withResolvers<void>();
    const onEvent = (e: KiteEvent) => {
      if (count > 0 && seen >= count) return;
      seen++;
      out.print(
        { action: e.action, kite: e.kite, url: e.url ?? "" },
        () => `${e.action} ${kiteToString(e.kite)} ${e.url ?? ""}`.trimEnd(),
      );
      if (count > 0 && seen >= count) resolve();
    };
    const stop = () => resolve();
    try {
      const cancel = await kite.kontrol.watchKites(
        ownedQuery(q, kite),
        onEvent,
      );
      Deno.addSignalListener("SIGINT", stop);
      console.error(`watching ${kiteToString(q)}`);
      const client = await kite.kontrol.connection();
      const off = client.onDisconnect(() => resolve());
      await done;
      off();
      Deno.removeSignalListener("SIGINT", stop);
      if (!client.connected && (count === 0 || seen < count)) {
        throw new Error(`lost the connection to Kontrol ${kite.kontrol.url}`);
      }
      await cancel();
      return 0;
    } finally {
      await kite.close();
    }
  },
};
