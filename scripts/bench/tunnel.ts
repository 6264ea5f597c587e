/**
 * Calls through the tunnel proxy against the same kite called directly:
 * one connection calling one at a time, and 50 connections each calling
 * one at a time; calls/s and p50 per path, rounds alternating the order
 * so both paths meet the same machine. The proxy and the kite are
 * processes of their own; Kontrol (which only signs the kite.keys) and
 * the callers run here.
 *
 * @module
 */
import type { Kite } from "../../mod.ts";
import {
  freePort,
  kontrolKite,
  startTestKontrol,
} from "../../tests/helpers/kontrol_harness.ts";
import { spawnDeno } from "../../tests/helpers/processes.ts";
import { spawnTunnelProxy } from "../../tests/helpers/tunnel_processes.ts";
import { cpuMedian, measureCalls, type Sample } from "./one_at_a_time.ts";
import { median, round } from "./stats.ts";

/** Settings of {@linkcode benchTunnel}. */
export interface TunnelBenchOptions {
  /** Counted rounds (one more warms up). */
  rounds: number;
  /** Length of one measurement, ms. */
  ms: number;
}

/** One case: a path and a number of connections. */
export interface TunnelBenchRow {
  case: string;
  "direct calls/s": number;
  "tunnel calls/s": number;
  "direct p50 µs": number;
  "tunnel p50 µs": number;
  /** Median over rounds of tunnel/direct within the round. */
  "tunnel × direct": number;
  /** CPU (user + system) per call, µs, medians; absent without `/proc`. */
  "direct kite CPU µs"?: number;
  "tunnel kite CPU µs"?: number;
  "tunnel proxy CPU µs"?: number;
}

async function dialAll(caller: Kite, url: string, n: number) {
  const clients = Array.from({ length: n }, () => caller.newClient(url));
  await Promise.all(clients.map((c) => c.dial()));
  return clients;
}

/** Runs the tunnel benchmark. */
export async function benchTunnel(
  options: TunnelBenchOptions,
): Promise<TunnelBenchRow[]> {
  const tk = await startTestKontrol();
  const home = await Deno.makeTempDir({ prefix: "tunnel_bench_" });
  const stops: (() => Promise<void>)[] = [];
  let caller: Kite | undefined;
  try {
    await Deno.mkdir(`${home}/proxy`);
    await Deno.writeTextFile(
      `${home}/proxy/kite.key`,
      await tk.kiteKey("kontrol"),
    );
    await Deno.writeTextFile(`${home}/kite.key`, await tk.kiteKey("alice"));
    const port = freePort();
    const proxy = await spawnTunnelProxy(`${home}/proxy`, port, {
      KITE_METRICS: "0",
    });
    stops.push(proxy.kill);
    const kite = await spawnDeno(
      [
        "run",
        "--allow-all",
        new URL("./tunnel_kite.ts", import.meta.url).pathname,
      ],
      { KITE_HOME: home, TUNNEL_URL: `http://127.0.0.1:${port}/kite` },
      { ready: /^ready (\S+) (\S+)/, what: "the tunnel bench kite" },
    );
    stops.push(async () => {
      kite.child.kill("SIGKILL");
      await kite.child.status;
      await kite.drained;
    });
    const [, directURL, tunnelURL] = kite.ready;
    caller = await kontrolKite(tk, "caller", "bob", { logLevel: "FATAL" });
    const rows: TunnelBenchRow[] = [];
    for (const conns of [1, 50]) {
      const direct = await dialAll(caller, directURL, conns);
      const tunnel = await dialAll(caller, tunnelURL, conns);
      const d: Sample[] = [];
      const t: Sample[] = [];
      const directPids = [kite.child.pid];
      const tunnelPids = [kite.child.pid, proxy.pid];
      for (let r = 0; r <= options.rounds; r++) {
        const pair = r % 2
          ? [
            await measureCalls(tunnel, options.ms, tunnelPids),
            await measureCalls(direct, options.ms, directPids),
          ]
            .reverse()
          : [
            await measureCalls(direct, options.ms, directPids),
            await measureCalls(tunnel, options.ms, tunnelPids),
          ];
        if (r === 0) continue; // warm-up
        d.push(pair[0]);
        t.push(pair[1]);
      }
      for (const c of [...direct, ...tunnel]) c.close();
      rows.push({
        case: conns === 1
          ? "1 connection, one call at a time"
          : `${conns} connections, one call at a time each`,
        "direct calls/s": round(median(d.map((x) => x.perSec))),
        "tunnel calls/s": round(median(t.map((x) => x.perSec))),
        "direct p50 µs": round(median(d.map((x) => x.p50Us))),
        "tunnel p50 µs": round(median(t.map((x) => x.p50Us))),
        "tunnel × direct": round(
          median(t.map((x, i) => x.perSec / d[i].perSec)),
          2,
        ),
        "direct kite CPU µs": cpuMedian(d, 0),
        "tunnel kite CPU µs": cpuMedian(t, 0),
        "tunnel proxy CPU µs": cpuMedian(t, 1),
      });
    }
    return rows;
  } finally {
    await caller?.close();
    for (const stop of stops.reverse()) await stop();
    await tk.close();
    await Deno.remove(home, { recursive: true });
  }
}

if (import.meta.main) {
  console.table(await benchTunnel({ rounds: 7, ms: 1_000 }));
}
