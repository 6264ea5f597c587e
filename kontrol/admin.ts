/**
 * The operator's key-pair methods, callable only by Kontrol's own user (the
 * issuer, whose kite.key `deno task kontrol --initial` writes):
 *
 * - `kontrol.keys.list` → `[{ id, public, deleted, current }]`
 * - `kontrol.keys.rotate` → the new pair's `{ id, public, retired }`: a
 *   new pair signs from now on and the previous one is retired, so each
 *   kite gets a re-issued kite.key on its next `register` (docs/protocol.md §8.7)
 * - `kontrol.keys.delete` `id` → retires that pair the same way.
 *
 * Private keys never leave Kontrol. Not part of the Go Kontrol.
 *
 * @module
 */
import { generateKeyPair } from "../kite/auth/keys.ts";
import { KiteError } from "../kite/errors.ts";
import type { Kite } from "../kite/kite.ts";
import type { Request } from "../kite/request.ts";
import type { KeyPair, StoredKeyPair } from "../storage/storage.ts";

/** The Kontrol parts the key methods use (`Kontrol` is one). */
export interface KeyAdmin {
  /** Kontrol's kite, which serves the methods. */
  readonly kite: Kite;
  /** Kontrol's username: the only caller allowed. */
  readonly username: string;
  /** Every stored pair, oldest first. */
  readonly storage: { listKeys(): Promise<StoredKeyPair[]> };
  /** The signing pair. */
  currentPair(): Promise<StoredKeyPair>;
  /** Adds a pair; it becomes the signing pair. */
  addKeyPair(pair: KeyPair): Promise<KeyPair>;
  /** Retires a pair. */
  deleteKeyPair(id: string): Promise<void>;
}

/** One pair as the methods describe it (no private key). */
export interface KeyPairInfo {
  /** Key pair id. */
  id: string;
  /** PKIX PEM public key. */
  public: string;
  /** Retired: kites holding keys signed by it get new ones on `register`. */
  deleted: boolean;
  /** The pair new keys and tokens are signed with. */
  current: boolean;
}

function requireOperator(admin: KeyAdmin, r: Request): void {
  if (r.username !== admin.username) {
    throw new KiteError(
      "authenticationError",
      `only Kontrol's own user ${admin.username} may manage its key pairs, not ${
        r.username ?? "an anonymous caller"
      }`,
    );
  }
}

/** Adds the `kontrol.keys.*` methods to Kontrol's kite. */
export function addKeyAdminHandlers(admin: KeyAdmin): void {
  const kite = admin.kite;
  const list = async (): Promise<KeyPairInfo[]> => {
    const current = (await admin.currentPair()).id;
    return (await admin.storage.listKeys()).map((k) => ({
      id: k.id,
      public: k.public,
      deleted: k.deleted,
      current: k.id === current,
    }));
  };
  kite.handle("kontrol.keys.list", (r) => {
    requireOperator(admin, r);
    return list();
  });
  kite.handle("kontrol.keys.rotate", async (r) => {
    requireOperator(admin, r);
    const previous = await admin.currentPair();
    const fresh = await admin.addKeyPair({
      id: crypto.randomUUID(),
      ...await generateKeyPair(),
    });
    await admin.deleteKeyPair(previous.id);
    return { id: fresh.id, public: fresh.public, retired: previous.id };
  });
  kite.handle("kontrol.keys.delete", async (r) => {
    requireOperator(admin, r);
    const id = r.args.one().string();
    const pairs = await list();
    const pair = pairs.find((k) => k.id === id);
    if (!pair) throw new KiteError("argumentError", `no key pair ${id}`);
    if (pairs.every((k) => k.deleted || k.id === id)) {
      throw new KiteError(
        "genericError",
        `key pair ${id} is the last live one; run kontrol.keys.rotate instead`,
      );
    }
    await admin.deleteKeyPair(id);
    return null;
  });
}
