/**
 * `deno task soak`: load, soak and fault runs against servers in child
 * processes on 127.0.0.1.
 *
 *     deno task soak                 # all four at full size
 *     deno task soak --only clients  # clients | callbacks | restart | kontrol | faults
 *     deno task soak --scale 0.1     # everything ten times smaller
 *
 * Full size: 1,000 clients × 1,000 calls; 1,000,000 callback calls on one
 * connection; 50 `dialForever` clients across 3 kite restarts; 100
 * `registerForever` kites across a Kontrol restart on KV; 2 Kontrols and
 * 200 kites per shared storage through a storage cut, clock skew and a
 * storage crash. Exits 1 when a check fails.
 *
 * @module
 */
import {
  callbackFlood,
  kiteRestart,
  kontrolRestart,
  manyClients,
} from "./scenarios.ts";
import { kiteChild, kontrolChild } from "./servers.ts";
import { mib } from "./stats.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const only = arg("only");
const scale = Number(arg("scale") ?? "1");
const n = (full: number) => Math.max(1, Math.round(full * scale));
const problems: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
  console.log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
};
const report: Record<string, unknown> = {
  machine:
    `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
  scale,
};

if (!only || only === "clients") {
  const clients = n(1000);
  const calls = n(1000);
  console.log(
    `\n${clients} clients × ${calls} calls against one kite (child process)`,
  );
  const server = await kiteChild();
  try {
    // Two rounds on one server: the heap must come back each time, and RSS
    // must plateau (the allocator keeps freed pages) rather than grow.
    const rounds = [];
    for (let round = 1; round <= 2; round++) {
      const r = await manyClients(server, { clients, calls, window: 10 });
      const s = r.server;
      console.log(
        `  round ${round}: ${r.calls} calls in ${r.elapsedMs} ms (${r.callsPerSec}/s); server heap ` +
          `${mib(s.baseline.heapUsed)} → ${mib(s.loaded.heapUsed)} → ${
            mib(s.after.heapUsed)
          } MiB, ` +
          `RSS ${mib(s.baseline.rss)} → ${mib(s.loaded.rss)} → ${
            mib(s.after.rss)
          } MiB`,
      );
      check(r.ok === r.calls, `${r.ok}/${r.calls} right answers`);
      check(
        r.errors === 0 && r.wrong === 0,
        `0 errors (${r.errors}), 0 wrong (${r.wrong}) ${
          r.firstErrors.join("; ")
        }`,
      );
      check(r.lost === 0, `0 lost replies (${r.lost})`);
      check(
        s.loaded.connections === clients,
        `${s.loaded.connections} connections while loaded`,
      );
      check(
        s.after.connections === 0 && s.after.callbacks === 0 &&
          s.after.pending === 0,
        `after they left: ${s.after.connections} connections, ${s.after.callbacks} callbacks, ${s.after.pending} pending`,
      );
      check(
        s.after.heapUsed < s.baseline.heapUsed + 16 * 2 ** 20,
        `server heap back within 16 MiB of baseline (${
          mib(s.after.heapUsed - s.baseline.heapUsed)
        } MiB above)`,
      );
      check(
        r.clientLeft.callbacks === 0 && r.clientLeft.pending === 0,
        "client side holds no callbacks or pending calls",
      );
      rounds.push(r);
    }
    const [first, second] = rounds.map((r) => r.server.after.rss);
    check(
      second <= first * 1.1 + 8 * 2 ** 20,
      `RSS plateaus: ${mib(first)} MiB after round 1, ${
        mib(second)
      } MiB after round 2`,
    );
    report.clients = rounds;
  } finally {
    await server.close();
  }
}

if (!only || only === "callbacks") {
  const calls = n(1_000_000);
  console.log(
    `\n${calls} calls with a fresh callback each, one connection (child process)`,
  );
  const server = await kiteChild();
  try {
    const r = await callbackFlood(server, { calls, window: 100 });
    const heaps = r.samples.map((s) => s.heapMiB);
    const rss = r.samples.map((s) => s.rssMiB);
    console.log(
      `  ${r.calls} calls in ${r.elapsedMs} ms (${r.callsPerSec}/s); server heap samples ${
        heaps.join(", ")
      } MiB; RSS ${rss.join(", ")} MiB`,
    );
    check(
      r.ok === r.calls && r.callbacksRun === r.calls,
      `${r.ok} right answers, ${r.callbacksRun} callbacks run`,
    );
    check(
      r.errors === 0 && r.wrong === 0 && r.lost === 0,
      `0 errors (${r.errors}), 0 wrong (${r.wrong}), 0 lost (${r.lost})`,
    );
    check(
      r.maxClientCallbacks <= 2 * 100,
      `client callback table at most ${r.maxClientCallbacks} (window 100)`,
    );
    check(
      r.finalClientCallbacks === 0,
      `client callback table ends at ${r.finalClientCallbacks}`,
    );
    check(
      r.samples.every((s) => s.callbacks === 0),
      "server holds no callbacks at any sample",
    );
    const later = heaps.slice(1);
    check(
      Math.max(...later) - Math.min(...later) < 32,
      `server heap flat within 32 MiB (${
        Math.round((Math.max(...later) - Math.min(...later)) * 10) / 10
      } MiB spread)`,
    );
    report.callbacks = r;
  } finally {
    await server.close();
  }
}

if (!only || only === "restart") {
  const clients = n(50);
  console.log(
    `\n${clients} dialForever clients across 3 kite restarts (SIGKILL)`,
  );
  const server = await kiteChild();
  try {
    const r = await kiteRestart(server, {
      clients,
      restarts: 3,
      downMs: 1_000,
      loadMs: 2_000,
    });
    console.log(
      `  ${r.calls} calls: ${r.ok} ok, ${r.disconnect} disconnect, ${r.sendError} sendError, ${r.other} other, ${r.hung} hung; ` +
        `every client back within ${r.maxResumeMs} ms`,
    );
    check(r.hung === 0, `0 hung calls (${r.hung})`);
    check(
      r.wrong === 0 && r.other === 0,
      `only disconnect/sendError failures (${r.other} other: ${
        r.otherErrors.join("; ")
      })`,
    );
    check(
      r.disconnect > 0,
      `pending calls failed with disconnect (${r.disconnect})`,
    );
    check(
      r.resumed === clients,
      `${r.resumed}/${clients} clients resumed after every restart`,
    );
    report.restart = r;
  } finally {
    await server.close();
  }
}

if (!only || only === "kontrol") {
  const kites = n(100);
  console.log(
    `\n${kites} registerForever kites across a Kontrol restart on KV (SIGKILL)`,
  );
  const kontrol = await kontrolChild();
  try {
    const r = await kontrolRestart(kontrol, {
      kites,
      loadClients: 8,
      downMs: 1_000,
    });
    console.log(
      `  ${r.back}/${r.kites} back in ${r.allBackMs} ms; getKites lists ${r.listed} (${r.listedOurs} ours); ` +
        `load: ${r.loadCalls} getKites, ${r.loadOk} ok, ${r.loadErrors} failed during the outage, ${r.loadHung} hung`,
    );
    check(
      r.registeredBefore === kites,
      `${r.registeredBefore} registered before`,
    );
    check(
      r.back === kites && r.allBackMs >= 0 && r.allBackMs <= 15_000,
      `every kite back within 15 s (${r.allBackMs} ms)`,
    );
    check(
      r.listed === kites && r.listedOurs === kites,
      "0 lost, no duplicates",
    );
    check(r.loadHung === 0, "no getKites call hung");
    report.kontrol = r;
  } finally {
    await kontrol.close();
  }
}

if (!only || only === "faults") {
  const kites = n(200);
  console.log(
    `\n2 Kontrols, ${kites} kites on etcd and on PostgreSQL: storage cut, clock skew, storage crash (tests/kontrol_faults_test.ts)`,
  );
  // The CI test at full size: its own servers and processes, its own checks.
  const run = await new Deno.Command("deno", {
    args: ["test", "--allow-all", "tests/kontrol_faults_test.ts"],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { KITE_TEST_FAULT_KITES: String(kites), KITE_TEST_FAULT_FULL: "1" },
    stdin: "null",
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  console.log(out.split("\n").filter((l) => / \.\.\. /.test(l)).join("\n"));
  check(run.success, "both engines pass the fault runs");
  if (!run.success) console.log(new TextDecoder().decode(run.stderr));
  report.faults = { kites, ok: run.success };
}

console.log(`\nreport: ${JSON.stringify(report)}`);
console.log(
  problems.length ? `\nsoak: FAILED (${problems.length})` : "\nsoak: OK",
);
Deno.exit(problems.length ? 1 : 0);
