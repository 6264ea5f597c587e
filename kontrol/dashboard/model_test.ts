import { assertEquals } from "../../tests/helpers/assert.ts";
import { type KiteEvent, makeIdentity } from "../../kite/protocol.ts";
import { KiteTable, type Row } from "./model.ts";

function register(id: string, name: string, version = "1.0.0"): KiteEvent {
  return {
    action: "REGISTER",
    kite: makeIdentity({
      id,
      name,
      version,
      username: "alice",
      environment: "prod",
    }),
    url: `http://h/${id}`,
  };
}

function deregister(id: string): KiteEvent {
  return { action: "DEREGISTER", kite: makeIdentity({ id }) };
}

function shape(rows: readonly Row[]): string[] {
  return rows.map((r) =>
    r.type === "group" ? `${r.key} (${r.count})` : `  ${r.entry.kite.id}`
  );
}

Deno.test("KiteTable groups kites by username/environment/name/version, in name order", () => {
  const table = new KiteTable();
  table.apply([
    register("m1", "math"),
    register("a1", "auth"),
    register("m2", "math"),
    register("m3", "math", "2.0.0"),
  ], 1000);
  assertEquals(shape(table.rows()), [
    "alice/prod/auth/1.0.0 (1)",
    "  a1",
    "alice/prod/math/1.0.0 (2)",
    "  m1",
    "  m2",
    "alice/prod/math/2.0.0 (1)",
    "  m3",
  ]);
  assertEquals([table.size, table.groups, table.rowCount], [4, 3, 7]);
});

Deno.test("KiteTable removes kites and empty groups, and a batch's last word wins", () => {
  const table = new KiteTable();
  table.apply([register("m1", "math"), register("a1", "auth")], 1000, true);
  table.apply([
    deregister("a1"),
    deregister("unknown"),
    register("m2", "math"),
    deregister("m2"),
  ], 2000);
  assertEquals(shape(table.rows()), ["alice/prod/math/1.0.0 (1)", "  m1"]);
  assertEquals(table.get("m1")?.before, true);
  assertEquals(table.get("a1"), undefined);
});

Deno.test("KiteTable.rows(first, last) is the same window of the whole list, folded groups too", () => {
  const table = new KiteTable();
  const events: KiteEvent[] = [];
  for (let i = 0; i < 40; i++) events.push(register(`k${i}`, `s${i % 4}`));
  table.apply(events, 1000);
  table.toggle("alice/prod/s1/1.0.0");
  const all = shape(table.rows());
  assertEquals(all.length, table.rowCount);
  assertEquals(all.length, 4 + 30);
  for (const [first, last] of [[0, 5], [3, 17], [10, 11], [20, 60], [33, 34]]) {
    assertEquals(shape(table.rows(first, last)), all.slice(first, last));
  }
  table.toggle("alice/prod/s1/1.0.0");
  assertEquals(table.rowCount, 44);
});
