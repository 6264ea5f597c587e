/**
 * `GET /kite/metrics`: counts per method and outcome after real calls over
 * a real socket, sane histogram buckets, and output `promtool` accepts.
 */
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { settle, testKite } from "./helpers/kite_harness.ts";
import { promtoolCheck, sample } from "./helpers/prometheus.ts";
import { KiteError } from "../mod.ts";

Deno.test("/kite/metrics counts calls per method and outcome; promtool accepts it", async () => {
  const server = testKite("math", {
    disableAuthentication: true,
    metrics: true,
  });
  server.handle("square", (r) => r.args.one().number() ** 2);
  server.handle("fail", () => {
    throw new KiteError("argumentError", "no");
  });
  const caller = testKite("caller", { metrics: true });
  try {
    await server.serve({ quiet: true });
    const client = caller.newClient(server.url);
    await client.dial();
    for (let i = 0; i < 3; i++) {
      assertEquals(await client.tell("square", i), i * i);
    }
    assert(!(await settle(client.tell("nope"))).ok);
    assert(!(await settle(client.tell("alsoNope"))).ok);
    assert(!(await settle(client.tell("fail"))).ok);

    const res = await fetch(server.url + "/metrics");
    assertEquals(res.status, 200);
    assertMatch(
      res.headers.get("content-type") ?? "",
      /^text\/plain; version=0\.0\.4/,
    );
    const text = await res.text();
    const s = (series: string) => sample(text, series);
    assertEquals(
      s('kite_server_requests_total{method="square",outcome="ok"}'),
      3,
    );
    assertEquals(
      s('kite_server_requests_total{method="unknown",outcome="methodNotFound"}'),
      2,
    );
    assertEquals(
      s('kite_server_requests_total{method="fail",outcome="argumentError"}'),
      1,
    );
    // Unknown names never become labels.
    assert(!text.includes('"nope"'), text);
    assertEquals(
      s('kite_server_request_duration_seconds_count{method="square",outcome="ok"}'),
      3,
    );
    // Buckets ascend, are cumulative and end in +Inf equal to the count.
    const buckets = text.split("\n").filter((l) =>
      l.startsWith(
        'kite_server_request_duration_seconds_bucket{method="square",outcome="ok"',
      )
    );
    assert(buckets.length > 5, text);
    const counts = buckets.map((l) => Number(l.split(" ")[1]));
    const les = buckets.map((l) => l.match(/le="([^"]+)"/)![1]);
    assertEquals(les.at(-1), "+Inf");
    for (let i = 1; i < counts.length; i++) {
      assert(counts[i] >= counts[i - 1]);
      if (i < les.length - 1) assert(Number(les[i]) > Number(les[i - 1]));
    }
    assertEquals(counts.at(-1), 3);
    assert(Number(les[0]) <= 0.001 && Number(les.at(-2)) >= 5, les.join(","));
    assertEquals(
      s('kite_connections{transport="websocket",side="accepted"}'),
      1,
    );
    assert((s("kite_received_bytes_total") ?? 0) > 0);
    assert((s("kite_sent_bytes_total") ?? 0) > 0);
    await promtoolCheck(text);

    // The caller's side: per remote method, the remote's name as called.
    const callerText = caller.metrics!.registry.expose();
    assertEquals(
      sample(
        callerText,
        'kite_client_requests_total{method="square",outcome="ok"}',
      ),
      3,
    );
    assertEquals(
      sample(
        callerText,
        'kite_client_requests_total{method="nope",outcome="methodNotFound"}',
      ),
      1,
    );
    assertEquals(
      sample(
        callerText,
        'kite_client_requests_total{method="fail",outcome="argumentError"}',
      ),
      1,
    );
    assertEquals(sample(callerText, "kite_pending_calls"), 0);
    assertEquals(
      sample(
        callerText,
        'kite_connections{transport="websocket",side="dialed"}',
      ),
      1,
    );
    await promtoolCheck(callerText);
  } finally {
    await caller.close();
    await server.close();
  }
});

Deno.test("/kite/metrics counts auth failures and limited calls; off by default", async () => {
  const server = testKite("guarded", {
    metrics: true,
    maxConcurrentRequests: 1,
  });
  server.handle("square", (r) => r.args.one().number() ** 2);
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  server.handle("slow", () => held).disableAuthentication();
  const plain = testKite("plain", { disableAuthentication: true });
  const caller = testKite("caller");
  try {
    await server.serve({ quiet: true });
    await plain.serve({ quiet: true });
    const client = caller.newClient(server.url, { auth: null });
    await client.dial();
    assert(!(await settle(client.tell("square", 2))).ok);
    const slow = client.tell("slow");
    assert(!(await settle(client.tell("slow"))).ok);
    release();
    await slow;
    const text = await (await fetch(server.url + "/metrics")).text();
    assertEquals(
      sample(text, 'kite_auth_failures_total{reason="missing",type="other"}'),
      1,
    );
    assertEquals(
      sample(text, 'kite_limited_requests_total{limit="connection"}'),
      1,
    );
    assertEquals(
      sample(
        text,
        'kite_server_requests_total{method="square",outcome="authenticationError"}',
      ),
      1,
    );
    assertEquals(
      sample(
        text,
        'kite_server_requests_total{method="slow",outcome="requestLimitError"}',
      ),
      1,
    );
    await promtoolCheck(text);
    // Without metrics there is no route and nothing recorded.
    assertEquals(plain.metrics, undefined);
    const off = await fetch(plain.url + "/metrics");
    await off.body?.cancel();
    assert(off.status !== 200, `metrics served while off: ${off.status}`);
  } finally {
    await caller.close();
    await plain.close();
    await server.close();
  }
});

Deno.test("bytes metrics count UTF-8 bytes, not UTF-16 code units", async () => {
  const server = testKite("echo", {
    disableAuthentication: true,
    metrics: true,
  });
  server.handle("echo", (r) => r.args.one().string());
  const caller = testKite("caller", { metrics: true });
  try {
    await server.serve({ quiet: true });
    for (const transport of ["websocket", "raw-websocket"] as const) {
      const client = caller.newClient(server.url, { transport });
      await client.dial();
      const bytes = () => {
        const s = server.metrics!.registry.expose();
        const c = caller.metrics!.registry.expose();
        return [
          sample(s, "kite_received_bytes_total")!,
          sample(s, "kite_sent_bytes_total")!,
          sample(c, "kite_sent_bytes_total")!,
          sample(c, "kite_received_bytes_total")!,
        ];
      };
      // Two calls alike but for a payload of the same UTF-16 length: 40
      // code units, 40 bytes in ASCII, 90 in UTF-8 (2, 3 and 4-byte
      // characters). Callback ids stay one digit.
      const ascii = "x".repeat(40);
      const wide = "é€😀".repeat(10);
      assertEquals(wide.length, ascii.length);
      const grown = 90 - 40;
      await client.tell("echo", "warm-up");
      const b0 = bytes();
      assertEquals(await client.tell("echo", ascii), ascii);
      const b1 = bytes();
      assertEquals(await client.tell("echo", wide), wide);
      const b2 = bytes();
      const d1 = b1.map((v, i) => v - b0[i]);
      const d2 = b2.map((v, i) => v - b1[i]);
      assert(d1.every((d) => d > 40), `${transport}: ${d1}`);
      // Each side: what one sent, the other received, and the wide call
      // costs exactly its payload's extra UTF-8 bytes in each direction.
      assertEquals(d2[0], d2[2], transport);
      assertEquals(d2[1], d2[3], transport);
      assertEquals(d2.map((d, i) => d - d1[i]), [grown, grown, grown, grown]);
      client.close();
    }
  } finally {
    await caller.close();
    await server.close();
  }
});
