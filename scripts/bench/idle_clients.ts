/**
 * Child process of the capacity benchmark: opens `N` SockJS websocket
 * sessions to the kite at `PORT`, makes one `kite.ping` call on each (so
 * every session is fully set up, its caller known to the kite), prints
 * `{"open":n,"failed":m}` and holds them until stdin closes.
 *
 *     deno run --allow-net=127.0.0.1 idle_clients.ts N PORT
 *
 * Deno's built-in WebSocket keeps this side light; the memory measured is
 * the server's.
 *
 * @module
 */

const n = Number(Deno.args[0]);
const port = Number(Deno.args[1]);
const CONCURRENCY = 64;

const identity = {
  name: "idle",
  username: "bench",
  id: "",
  environment: "bench",
  region: "local",
  version: "1.0.0",
  hostname: "localhost",
};

function ping(id: string): string {
  const msg = {
    method: "kite.ping",
    arguments: [{
      kite: { ...identity, id },
      authentication: null,
      responseCallback: "[Function]",
      withArgs: [],
    }],
    callbacks: { "0": [0, "responseCallback"] },
  };
  return JSON.stringify([JSON.stringify(msg)]);
}

/** Opens one session and waits for the ping's reply. */
function open(i: number): Promise<WebSocket> {
  const session = crypto.randomUUID().replaceAll("-", "");
  const ws = new WebSocket(
    `ws://127.0.0.1:${port}/kite/${i % 1000}/${session}/websocket`,
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), 30_000);
    ws.onmessage = (ev) => {
      const frame = String(ev.data);
      if (frame === "o") ws.send(ping(session));
      else if (frame.startsWith("a")) {
        clearTimeout(timer);
        ws.onmessage = null;
        resolve(ws);
      }
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("connection failed"));
    };
  });
}

const sockets: WebSocket[] = [];
let failed = 0;
let next = 0;
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < n) {
    const i = next++;
    try {
      sockets.push(await open(i));
    } catch {
      failed++;
    }
  }
}));
console.log(JSON.stringify({ open: sockets.length, failed }));

for await (const _ of Deno.stdin.readable) { /* hold until stdin closes */ }
await Promise.all(sockets.map((ws) => {
  if (ws.readyState !== WebSocket.OPEN) return;
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  return closed;
}));
