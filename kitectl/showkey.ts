/**
 * `kitectl showkey`: the claims of a kite.key, its expiry, the Kontrol that
 * issued it, and whether its signature verifies against the Kontrol public
 * key it carries (as a kite checks it, docs/protocol.md §6.3).
 *
 * @module
 */
import { decodeJwt } from "../kite/auth/jwt.ts";
import {
  KITE_KEY_FILE,
  kiteHome,
  verifyKiteKey,
} from "../kite/auth/kitekey.ts";
import { type Command, table } from "./cli.ts";

function date(seconds: unknown): string {
  return typeof seconds === "number" && seconds > 0
    ? new Date(seconds * 1000).toISOString()
    : "never";
}

/** SHA-256 of the public key PEM, hex: short enough to compare by eye. */
async function fingerprint(pem: string): Promise<string> {
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(pem.trim()),
  );
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0"))
    .join("").slice(0, 32);
}

/** The `showkey` subcommand. */
export const showkey: Command = {
  name: "showkey",
  usage: "showkey [--file PATH]",
  summary:
    "Show the kite.key's claims, expiry, Kontrol, and whether it verifies (exit 1 when not).",
  flags: [
    {
      name: "file",
      value: true,
      help: "the kite.key to read (default $KITE_HOME/kite.key)",
    },
  ],
  async run(p, out) {
    const file = p.flags.get("file") ?? `${kiteHome()}/${KITE_KEY_FILE}`;
    let raw: string;
    try {
      raw = (await Deno.readTextFile(file)).trim();
    } catch (err) {
      throw new Error(
        `cannot read kite.key ${file}: ${(err as Error).message}`,
      );
    }
    let claims;
    try {
      claims = decodeJwt(raw).claims;
    } catch (err) {
      throw new Error(`${file} is not a JWT: ${(err as Error).message}`);
    }
    let problem = "";
    try {
      await verifyKiteKey(raw);
    } catch (err) {
      problem = (err as Error).message;
    }
    const kontrolKey = typeof claims.kontrolKey === "string"
      ? claims.kontrolKey
      : "";
    const info = {
      file,
      username: claims.sub ?? "",
      issuer: claims.iss ?? "",
      id: claims.jti ?? "",
      issuedAt: date(claims.iat),
      expires: date(claims.exp),
      kontrolURL: claims.kontrolURL ?? "",
      kontrolKeyFingerprint: kontrolKey ? await fingerprint(kontrolKey) : "",
      verified: problem === "",
      ...(problem ? { problem } : {}),
      claims,
    };
    out.print(info, () =>
      table(
        ["FIELD", "VALUE"],
        [
          ["file", file],
          ["username (sub)", info.username],
          ["issuer (iss)", info.issuer],
          ["key id (jti)", info.id],
          ["issued", info.issuedAt],
          ["expires", info.expires],
          ["kontrol", info.kontrolURL],
          ["kontrol key sha256", info.kontrolKeyFingerprint],
          [
            "verifies",
            problem ? `no: ${problem}` : "yes (embedded kontrolKey)",
          ],
        ],
      ));
    return problem ? 1 : 0;
  },
};
