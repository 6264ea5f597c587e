/**
 * Conformance cases for {@linkcode CodeStorage}, the one-time codes of
 * `registerMachine`: run by `storage/conformance.ts` against every adapter
 * that has the code methods, with a peer (a second "Kontrol" on the same
 * data) where the engine has one.
 *
 * @module
 */
import { sha256Hex } from "./hash.ts";
import {
  assert,
  assertEquals,
  AssertionError,
  assertRejects,
} from "./conformance_assert.ts";
import type { CodeClaim, CodeStorage, Storage } from "./storage.ts";

/** What a code case needs of a conformance target. */
export interface CodeTarget {
  /** The adapter under test, empty. */
  storage: Storage;
  /** A second handle on the same data, when the engine has one. */
  openPeer?: () => Promise<Storage>;
}

/** One code case; `needsPeer` cases run only where there is a peer. */
export interface CodeCase {
  /** The step's name. */
  name: string;
  /** Left out where the target has no `openPeer`. */
  needsPeer?: boolean;
  /** The check. */
  fn: (target: CodeTarget) => Promise<void>;
}

/** The target's storage as a {@linkcode CodeStorage}; fails when it has none. */
function codes(storage: Storage): CodeStorage {
  const { addCode, claimCode, deleteExpiredCodes } = storage;
  if (!addCode || !claimCode || !deleteExpiredCodes) {
    throw new AssertionError(
      `${storage.engine} storage has no addCode/claimCode/deleteExpiredCodes`,
    );
  }
  return storage as CodeStorage;
}

/** A fresh digest, as Kontrol makes them (SHA-256 of a random code). */
function digest(): Promise<string> {
  return sha256Hex(crypto.randomUUID());
}

/** Now, in whole ms, as Kontrol's clocks give it. */
const T0 = Date.now();
const MINUTE = 60_000;

async function withPeer(
  target: CodeTarget,
  fn: (peer: CodeStorage) => Promise<void>,
): Promise<void> {
  const peer = await target.openPeer!();
  try {
    await fn(codes(peer));
  } finally {
    await peer.close();
  }
}

/** Every code case. */
export const CODE_CASES: CodeCase[] = [
  {
    name:
      "claimCode() takes a code once, for its bound user only, until it expires",
    fn: async ({ storage }) => {
      const s = codes(storage);
      const [any, bound, never] = [
        await digest(),
        await digest(),
        "0".repeat(64),
      ];
      assert(
        await s.addCode({ digest: any, expiresAt: T0 + MINUTE }, 10),
        "an unbound code is stored",
      );
      assert(
        await s.addCode(
          { digest: bound, expiresAt: T0 + MINUTE, username: "carol" },
          10,
        ),
        "a bound code is stored",
      );
      await assertRejects(
        () => s.addCode({ digest: any, expiresAt: T0 + MINUTE }, 10),
        "adding a stored digest again",
      );
      const claim = (d: string, user: string, at = T0): Promise<CodeClaim> =>
        s.claimCode(d, user, at);
      assertEquals(await claim(any, "alice"), { result: "claimed" }, "first");
      assertEquals(await claim(any, "alice"), { result: "used" }, "again");
      assertEquals(await claim(any, "bob"), { result: "used" }, "by another");
      assertEquals(
        await claim(bound, "bob"),
        { result: "otherUser", username: "carol" },
        "someone else's code",
      );
      assertEquals(
        await claim(bound, "carol", T0 + MINUTE),
        { result: "unknown" },
        "expired at expiresAt",
      );
      assertEquals(
        await claim(bound, "carol", T0 + MINUTE - 1),
        { result: "claimed" },
        "its user, 1 ms before it expires (the refusals wrote nothing)",
      );
      assertEquals(await claim(never, "alice"), { result: "unknown" }, "never");
      const bad = await assertRejects(
        () => claim("../kites/x", "alice"),
        "a digest that is not 64 hex digits",
      );
      assert(bad instanceof TypeError, `a TypeError, got ${bad}`);
    },
  },
  {
    name:
      "addCode() holds at most max codes, used ones too, until deleteExpiredCodes() sweeps",
    fn: async ({ storage }) => {
      const s = codes(storage);
      const d = [
        await digest(),
        await digest(),
        await digest(),
        await digest(),
      ];
      const expiries = [T0 + 10, T0 + 20, T0 + MINUTE];
      for (let i = 0; i < 3; i++) {
        assert(
          await s.addCode({ digest: d[i], expiresAt: expiries[i] }, 3),
          `code ${i} fits`,
        );
      }
      assertEquals(
        await s.claimCode(d[1], "alice", T0),
        { result: "claimed" },
        "claim one",
      );
      assertEquals(
        await s.addCode({ digest: d[3], expiresAt: T0 + MINUTE }, 3),
        false,
        "a fourth is refused at max 3",
      );
      assertEquals(await s.deleteExpiredCodes(T0 + 9), 0, "none expired yet");
      assertEquals(
        await s.deleteExpiredCodes(T0 + 20),
        2,
        "the unused and the used one expired at T0+20 go",
      );
      assertEquals(
        await s.addCode({ digest: d[3], expiresAt: T0 + MINUTE }, 3),
        true,
        "room again",
      );
      assertEquals(
        await s.claimCode(d[0], "alice", T0),
        { result: "unknown" },
        "a swept code is unknown, even before its time on another clock",
      );
      assertEquals(
        await s.claimCode(d[2], "alice", T0),
        { result: "claimed" },
        "the unexpired one stays",
      );
      assertEquals(await s.deleteExpiredCodes(T0 + 2 * MINUTE), 2, "all go");
    },
  },
  {
    name: "claimCode() racing on one code: exactly one of 12 claims wins",
    fn: async (target) => {
      const s = codes(target.storage);
      const peer = target.openPeer ? await target.openPeer() : undefined;
      try {
        const handles = [s, peer ? codes(peer) : s];
        for (let round = 0; round < 3; round++) {
          const d = await digest();
          assert(
            await s.addCode({ digest: d, expiresAt: T0 + MINUTE }, 100),
            "",
          );
          const claims = await Promise.all(
            Array.from(
              { length: 12 },
              (_, i) => handles[i % 2].claimCode(d, `user${i}`, T0),
            ),
          );
          assertEquals(
            claims.map((c) => c.result).sort(),
            ["claimed", ...Array(11).fill("used")].sort(),
            `round ${round}: one claimed, the rest see it used`,
          );
        }
      } finally {
        await peer?.close();
      }
    },
  },
  {
    name:
      "a code added through one handle is claimed once through another, and outlives the first",
    needsPeer: true,
    fn: async (target) => {
      const s = codes(target.storage);
      const [d, kept] = [await digest(), await digest()];
      await s.addCode({ digest: d, expiresAt: T0 + MINUTE }, 10);
      await s.addCode({ digest: kept, expiresAt: T0 + MINUTE }, 10);
      await withPeer(target, async (peer) => {
        assertEquals(
          await peer.claimCode(d, "alice", T0),
          { result: "claimed" },
          "the peer takes it",
        );
      });
      assertEquals(
        await s.claimCode(d, "alice", T0),
        { result: "used" },
        "then the first handle refuses it",
      );
      // The handle that made `kept` goes away (a Kontrol restarts).
      await target.storage.close();
      await withPeer(target, async (peer) => {
        assertEquals(
          await peer.claimCode(kept, "bob", T0),
          { result: "claimed" },
          "an unused code outlives its handle",
        );
      });
    },
  },
];
