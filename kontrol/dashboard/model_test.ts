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
  assertEquals([table.size, table.groups], [4, 3]);
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

Deno.test("KiteTable reuses its rows until something changes, and hides collapsed groups", () => {
  const table = new KiteTable();
  table.apply([register("m1", "math"), register("m2", "math")], 1000);
  const first = table.rows();
  assertEquals(table.rows() === first, true);
  table.toggle("alice/prod/math/1.0.0");
  assertEquals(shape(table.rows()), ["alice/prod/math/1.0.0 (2)"]);
  table.toggle("alice/prod/math/1.0.0");
  assertEquals(table.rows().length, 3);
});
