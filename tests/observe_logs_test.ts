/**
 * Structured logs: with the JSON format every line parses, and lines
 * logged for a request (the handler's `r.log`, the kite's own failure
 * line) carry its request id, method, caller and the trace id of the
 * `traceparent` it arrived with, on both the full decode and the
 * template path. Nothing is logged per call at INFO.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  goCall,
  RawSocket,
  sockjsMessages,
  sockjsSend,
  testKite,
} from "./helpers/kite_harness.ts";
import { createLogger } from "../kite/log.ts";
import { configFromEnv } from "../kite/config.ts";

function traced(call: string, traceparent: string): string {
  const at = call.lastIndexOf('}],"callbacks"');
  return call.slice(0, at) + `,"traceparent":"${traceparent}"` + call.slice(at);
}

const trace = (n: number) => `${n.toString(16).padStart(32, "a")}`;

Deno.test("JSON log lines parse and carry the trace id of their request", async () => {
  const lines: string[] = [];
  const logger = createLogger("logged", "DEBUG", {
    format: "json",
    write: (l) => lines.push(l),
  });
  const server = testKite("logged", { disableAuthentication: true }, {
    logger,
  });
  server.handle("greet", (r) => {
    r.log.info("greeting", { who: r.args.one().string() });
    return "hi";
  });
  server.handle("fail", () => {
    throw new Error("boom");
  });
  await server.serve({ quiet: true });
  const raw = await RawSocket.sockjs(server.url);
  try {
    // Three calls of one method: the third takes the template path.
    for (let i = 1; i <= 3; i++) {
      sockjsSend(
        raw,
        traced(
          goCall("greet", ["ann"], i),
          `00-${trace(i)}-00f067aa0ba902b7-01`,
        ),
      );
      const [reply] = sockjsMessages(await raw.next());
      assertEquals(reply.method, i);
    }
    sockjsSend(
      raw,
      traced(goCall("fail", [], 9), `00-${trace(9)}-00f067aa0ba902b7-01`),
    );
    sockjsMessages(await raw.next());
    const parsed = lines.map((l) => JSON.parse(l));
    const greetings = parsed.filter((o) => o.msg === "greeting");
    assertEquals(greetings.map((o) => o.traceId), [
      trace(1),
      trace(2),
      trace(3),
    ]);
    for (const g of greetings) {
      assertEquals(g.level, "info");
      assertEquals(g.kite, "logged");
      assertEquals(g.method, "greet");
      assertEquals(
        g.caller,
        "unknown/kiteclient/942541e5-0ebd-4a1c-b2c8-3039aff227a1",
      );
      assert(/^[0-9a-f]{16}$/.test(g.requestId), g.requestId);
      assertEquals(g.data, [{ who: "ann" }]);
      assert(!Number.isNaN(Date.parse(g.time)));
    }
    const failed = parsed.filter((o) => o.method === "fail");
    assertEquals(failed.length, 1, lines.join("\n"));
    assertEquals(failed[0].level, "debug");
    assertEquals(failed[0].traceId, trace(9));
    // Besides the handler's own lines, nothing per call at INFO.
    assertEquals(
      parsed.filter((o) => o.level !== "debug" && o.msg !== "greeting"),
      [],
    );
  } finally {
    await raw.close();
    await server.close();
  }
});

Deno.test("text log lines carry fields as key=value; KITE_LOG_FORMAT picks the format", () => {
  const lines: string[] = [];
  const log = createLogger("k", "INFO", { write: (l) => lines.push(l) })
    .child!({ requestId: "abc", traceId: undefined, method: "m x" });
  log.debug("hidden");
  log.warning("careful");
  assertEquals(lines, ['[k] WARNING careful requestId=abc method="m x"']);
  assertEquals(
    configFromEnv((n) => n === "KITE_LOG_FORMAT" ? "json" : undefined),
    {
      logFormat: "json",
    },
  );
});
