/**
 * A `registerMachine` authenticator for a shared secret: Kontrol is started
 * with `KONTROL_MACHINESECRET` (or `--machinesecret`), and `kitectl register`
 * sends `{ authType: "secret", secret }`. The key is signed for the username
 * the caller's kite claims, never for Kontrol's own (its operator's) name.
 *
 * @module
 */
import type { Request } from "../kite/request.ts";
import type { MachineAuthenticate } from "./services.ts";

/** The `authType` {@linkcode secretAuthenticator} accepts. */
export const SECRET_AUTH_TYPE = "secret";

/** Longest secret compared; longer input is refused before hashing. */
const MAX_SECRET_LENGTH = 1024;

async function digest(text: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Compares digests in time independent of where they differ. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Accepts `registerMachine` callers that send `secret`, and signs the key
 * for their claimed username. `kontrolUser` (the issuer, whose kite.key is
 * the operator's) is refused: that key comes from `--initial` only.
 * @throws {TypeError} when `secret` is empty.
 */
export function secretAuthenticator(
  secret: string,
  kontrolUser: () => string,
): MachineAuthenticate {
  if (secret === "") throw new TypeError("machine secret must not be empty");
  const expected = digest(secret);
  return async (authType: string, r: Request): Promise<string> => {
    if (authType !== SECRET_AUTH_TYPE) {
      throw new Error(
        `authType must be "${SECRET_AUTH_TYPE}", got ${
          JSON.stringify(authType)
        }`,
      );
    }
    const given = r.args.one().get("secret");
    const text = given.isNull() ? "" : given.string();
    if (
      text.length > MAX_SECRET_LENGTH ||
      !sameBytes(await digest(text), await expected)
    ) {
      throw new Error("wrong secret");
    }
    const username = r.claimedUsername;
    refuseKontrolUser(username, kontrolUser());
    return username;
  };
}

/**
 * Refuses Kontrol's own user (the operator) a key through `registerMachine`.
 * @throws {Error} when `username` is `kontrolUser`.
 */
export function refuseKontrolUser(username: string, kontrolUser: string): void {
  if (username === kontrolUser) {
    throw new Error(
      `${username} is Kontrol's own user; its key comes from \`deno task kontrol --initial\``,
    );
  }
}
