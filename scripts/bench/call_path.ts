/**
 * Call-path benchmark: `square(4)` over one connection, sequential and with
 * 100 calls in flight, for a raw Deno WebSocket JSON echo (the floor) and
 * our kite over SockJS websocket and raw websocket. Contenders alternate
 * within each round; figures are medians over the rounds.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import type { Client } from "../../mod.ts";
import { median, quantile, round } from "./stats.ts";

/** One contender's figures. */
export interface CallPathResult {
  name: string;
  sequentialPerSec: number;
  p50Us: number;
  p99Us: number;
  inFlightPerSec: number;
}

async function startServer(
  mode: "raw" | "kite",
): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      new URL("./servers.ts", import.meta.url).pathname,
      mode,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${mode} server exited`);
    buf += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(buf.split("\n")[0]);
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

interface Caller {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

async function rawCaller(port: number): Promise<Caller> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let next = 0;
  const pending = new Map<number, (v: unknown) => void>();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    pending.get(msg.id)?.(msg.result);
    pending.delete(msg.id);
  };
  return {
    call() {
      const id = next++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, n: 4 }));
      });
    },
    close() {
      const closed = new Promise((r) => ws.onclose = r);
      ws.close();
      return closed.then(() => {});
    },
  };
}

async function kiteCaller(
  port: number,
  transport: "websocket" | "raw-websocket",
): Promise<Caller> {
  const kite = new Kite("bench", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  const client: Client = kite.newClient(`http://127.0.0.1:${port}/kite`, {
    transport,
  });
  await client.dial();
  return { call: () => client.tell("square", 4), close: () => kite.close() };
}

async function sequential(
  c: Caller,
  ms: number,
): Promise<{ perSec: number; lat: number[] }> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await c.call();
    lat.push((performance.now() - t) * 1000);
  }
  return { perSec: lat.length / (ms / 1000), lat };
}

async function inFlight(c: Caller, ms: number, depth = 100): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  const lane = async () => {
    while (performance.now() < end) {
      await c.call();
      done++;
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  return done / ((performance.now() - start) / 1000);
}

/** Runs the call-path benchmark. */
export async function benchCallPath(
  rounds = 5,
  ms = 1000,
): Promise<CallPathResult[]> {
  const raw = await startServer("raw");
  const kite = await startServer("kite");
  const contenders: [string, () => Promise<Caller>][] = [
    ["raw Deno WebSocket echo", () => rawCaller(raw.port)],
    ["kite (SockJS websocket)", () => kiteCaller(kite.port, "websocket")],
    ["kite (raw websocket)", () => kiteCaller(kite.port, "raw-websocket")],
  ];
  const samples = new Map<
    string,
    { seq: number[]; lat: number[]; fly: number[] }
  >();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [name, make] of contenders) {
        const c = await make();
        for (let i = 0; i < 200; i++) await c.call(); // warm-up
        const s = await sequential(c, ms);
        const f = await inFlight(c, ms);
        await c.close();
        const entry = samples.get(name) ?? { seq: [], lat: [], fly: [] };
        entry.seq.push(s.perSec);
        entry.lat.push(...s.lat);
        entry.fly.push(f);
        samples.set(name, entry);
      }
    }
  } finally {
    await raw.stop();
    await kite.stop();
  }
  return [...samples].map(([name, s]) => ({
    name,
    sequentialPerSec: round(median(s.seq)),
    p50Us: round(quantile(s.lat, 0.5)),
    p99Us: round(quantile(s.lat, 0.99)),
    inFlightPerSec: round(median(s.fly)),
  }));
}
