/**
 * `kitectl codes create`: a one-time code for `kitectl register --code`,
 * from Kontrol's operator (the kite.key of Kontrol's own user). The code
 * lives in the memory of the Kontrol that made it.
 *
 * @module
 */
import { type Command, intFlag, UsageError } from "./cli.ts";
import { callerKite, KONTROL_FLAG } from "./session.ts";

/** The `codes` subcommand. */
export const codes: Command = {
  name: "codes",
  usage: "codes create [--for USER] [--ttl SECONDS]",
  summary:
    "Make a one-time code for `kitectl register --code` (Kontrol's own user only).",
  flags: [
    KONTROL_FLAG,
    {
      name: "for",
      value: true,
      help:
        "the only user the code gets a key for (default: any but Kontrol's own)",
    },
    {
      name: "ttl",
      value: true,
      help: "seconds the code stays valid (default 86400, at most 30 days)",
    },
  ],
  more: [
    "The code gets one kite.key, once, from any Kontrol on the storage of",
    "the one that made it; unused codes outlive a restart (not on memory",
    "storage).",
  ].join("\n"),
  async run(p, out) {
    const [action] = p.positionals;
    if (action !== "create") throw new UsageError("codes needs create");
    const ttl = p.flags.has("ttl") ? intFlag(p, "ttl", 0) : undefined;
    if (ttl !== undefined && ttl < 1) {
      throw new UsageError("--ttl must be at least 1 second");
    }
    const kite = callerKite(p);
    try {
      const kontrol = await kite.kontrol.connection();
      const r = await kontrol.tellWithTimeout(
        "kontrol.machineCodes.create",
        kite.config.timeoutMs,
        { ttl: ttl ?? null, username: p.flags.get("for") ?? null },
      ) as { code: string; expiresAt: string; username: string | null };
      out.print(
        r,
        () =>
          `${r.code}  (one kite.key${
            r.username ? ` for ${r.username}` : ""
          }, valid until ${r.expiresAt})`,
      );
      return 0;
    } finally {
      await kite.close();
    }
  },
};
