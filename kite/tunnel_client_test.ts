import { assertEquals } from "../tests/helpers/assert.ts";
import { testKite, waitFor } from "../tests/helpers/kite_harness.ts";
import { tunnelEndpoint } from "./tunnel_client.ts";

Deno.test("tunnelEndpoint() turns a proxy's kite URL into its /tunnel WebSocket", () => {
  assertEquals(
    tunnelEndpoint("http://10.0.0.1:3999/kite").href,
    "ws://10.0.0.1:3999/tunnel",
  );
  assertEquals(
    tunnelEndpoint("https://t.example/base/kite").href,
    "wss://t.example/base/tunnel",
  );
  assertEquals(
    tunnelEndpoint("ws://t.example:1/tunnel").href,
    "ws://t.example:1/tunnel",
  );
});

Deno.test("registerToTunnel() dials again when the proxy goes silent past three heartbeats", async () => {
  let upgrades = 0;
  const sockets: WebSocket[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      upgrades++;
      sockets.push(socket);
      // Answers the hello, promises a heartbeat every 20 ms, sends none.
      socket.onmessage = () =>
        socket.send(
          JSON.stringify({ url: "http://x/k/kite", heartbeatMs: 20 }),
        );
      return response;
    },
  );
  const kite = testKite("behind", {}, {
    kiteKey: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
  });
  try {
    const tunnel = await kite.registerToTunnel({
      url: `http://127.0.0.1:${server.addr.port}/kite`,
      register: false,
      backoff: { initialMs: 10, maxMs: 20 },
    });
    assertEquals(tunnel.url, "http://x/k/kite");
    await waitFor(
      () => upgrades >= 3,
      "the kite to dial its silent proxy again",
    );
  } finally {
    await kite.close();
    for (const s of sockets) {
      if (s.readyState === WebSocket.OPEN) s.close();
    }
    await server.shutdown();
  }
});
