import assert from "node:assert/strict";
import { IdOwners } from "./owners.ts";

Deno.test("IdOwners keeps an id its owner's for the retention period", () => {
  const owners = new IdOwners({
    retentionMs: 1000,
    maxIds: 10,
    maxIdsPerUser: 10,
  });
  owners.claim("k1", "bob", 0);
  assert.equal(owners.owner("k1", 999), "bob");
  assert.equal(owners.owner("k1", 1000), undefined);
  assert.equal(owners.size, 0);
});

Deno.test("IdOwners bounds ids per user and overall, oldest first", () => {
  const owners = new IdOwners({
    retentionMs: 1000,
    maxIds: 3,
    maxIdsPerUser: 2,
  });
  owners.claim("a1", "alice", 0);
  owners.claim("a2", "alice", 0);
  owners.claim("b1", "bob", 0);
  // Alice's third id pushes out her own oldest, not bob's.
  owners.claim("a3", "alice", 0);
  assert.deepEqual(
    ["a1", "a2", "a3", "b1"].map((id) => owners.owner(id, 1)),
    [undefined, "alice", "alice", "bob"],
  );
  // A claim again moves the id to the back.
  owners.claim("b1", "bob", 1);
  owners.claim("c1", "carol", 1);
  assert.equal(owners.size, 3);
  assert.equal(owners.owner("b1", 2), "bob");
  assert.equal(owners.owner("a2", 2), undefined);
});
