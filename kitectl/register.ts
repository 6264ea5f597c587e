/**
 * `kitectl register`: gets a kite.key from Kontrol's `registerMachine`,
 * proving a shared secret (Kontrol's `KONTROL_MACHINESECRET`) or a
 * one-time code (`deno task kontrol --machinecodes N`, `kitectl codes
 * create`), and writes it to `$KITE_HOME/kite.key`.
 *
 * @module
 */
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { type Command, requiredFlag, UsageError } from "./cli.ts";
import { callerKite } from "./session.ts";

/** The `register` subcommand. */
export const register: Command = {
  name: "register",
  usage: "register --kontrol URL --username USER [--secret S | --code C]",
  summary:
    "Get a kite.key for USER from Kontrol (registerMachine) and write it to $KITE_HOME/kite.key.",
  flags: [
    { name: "kontrol", value: true, help: "Kontrol URL (required)" },
    {
      name: "username",
      value: true,
      help: "the user the key is for (required)",
    },
    {
      name: "secret",
      value: true,
      help:
        "Kontrol's machine secret (default: KITECTL_SECRET, kept off the process list)",
    },
    {
      name: "code",
      value: true,
      help: "a one-time code from Kontrol's operator, instead of the secret",
    },
  ],
  more: [
    "With --secret, Kontrol must run with KONTROL_MACHINESECRET (or",
    "--machinesecret) set to the same secret. A --code is printed by",
    "`deno task kontrol --machinecodes N` or made by `kitectl codes create`;",
    "it gets one kite.key, once.",
  ].join("\n"),
  async run(p, out) {
    const url = requiredFlag(p, "kontrol");
    const username = requiredFlag(p, "username");
    const code = p.flags.get("code");
    const secret = p.flags.get("secret") ??
      (code === undefined ? Deno.env.get("KITECTL_SECRET") : undefined);
    if (code !== undefined && secret !== undefined) {
      throw new UsageError("give --secret or --code, not both");
    }
    if (!secret && !code) {
      throw new UsageError(
        "--secret (or KITECTL_SECRET) or --code is required",
      );
    }
    const proof = code
      ? { authType: "code", code }
      : { authType: "secret", secret };
    const kite = callerKite(p, { kiteKey: false, config: { username } });
    try {
      const client = kite.newClient(url, { auth: null });
      await client.dial();
      const key = await client.tellWithTimeout(
        "registerMachine",
        kite.config.timeoutMs,
        proof,
      );
      if (typeof key !== "string") {
        throw new Error(
          `Kontrol ${url} answered registerMachine without a key`,
        );
      }
      const path = await writeKiteKey(key);
      out.print(
        { path, username, kontrol: url },
        () => `wrote ${path} for user ${username} (Kontrol ${url})`,
      );
      return 0;
    } finally {
      await kite.close();
    }
  },
};
