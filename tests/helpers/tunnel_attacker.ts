/**
 * A hostile caller of a kite behind a tunnel, run as its own process:
 * `deno run --allow-net tunnel_attacker.ts <public kite URL>`. It sends an
 * oversized message, broken SockJS framing, holds many idle sessions, and
 * floods calls on a connection it never reads, then reads it to its end.
 * Prints one JSON line of what it saw, then `done`.
 *
 * @module
 */

import { DeafSocket } from "../../scripts/fuzz/wire.ts";

/** Opens a socket and resolves with its close code after `send`ing `text`. */
function closeCodeAfter(url: string, text: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(text);
    ws.onerror = () => {};
    ws.onclose = (e) => resolve(e.code);
  });
}

function call(n: number): string {
  return JSON.stringify({
    method: "square",
    arguments: [{
      kite: {
        name: "attacker",
        username: "mallory",
        id: "00000000-0000-4000-8000-000000000000",
        environment: "test",
        region: "test",
        version: "1.0.0",
        hostname: "attacker",
      },
      authentication: null,
      responseCallback: "[Function]",
      withArgs: [n],
    }],
    callbacks: { [n]: [0, "responseCallback"] },
  });
}

async function main(kiteURL: string): Promise<void> {
  const ws = kiteURL.replace(/^http/, "ws");
  const seen: Record<string, unknown> = {};
  // 1. A message over the proxy's 1 MiB limit, on a raw WebSocket.
  seen.oversized = await closeCodeAfter(`${ws}/websocket`, "x".repeat(2 << 20));
  // 2. Broken SockJS framing.
  seen.broken = await closeCodeAfter(`${ws}/1/abcdefgh/websocket`, "not json[");
  // 3. Idle sessions held open.
  const idle: WebSocket[] = [];
  for (let i = 0; i < 50; i++) {
    const s = new WebSocket(`${ws}/websocket`);
    s.onerror = () => {};
    idle.push(s);
  }
  // 4. A flood of calls on a connection that never reads the replies.
  const url = new URL(`${ws}/websocket`);
  const flood = await DeafSocket.open(Number(url.port), url.pathname);
  let sent = 0;
  let floodError = "";
  try {
    for (let i = 1; i <= 200_000; i++) {
      await flood.sendText(call(i));
      sent = i;
    }
  } catch (err) {
    floodError = (err as Error).message;
  }
  seen.floodSent = sent;
  seen.floodError = floodError;
  // A proxy that closed the stream keeps its socket open (and reading)
  // until its replies are written: reading now ends it.
  seen.floodEnd = floodError === "" ? await flood.readToClose(20_000) : "";
  flood.close();
  for (const s of idle) s.close();
  console.log(JSON.stringify(seen));
  console.log("done");
}

if (import.meta.main) await main(Deno.args[0]);
