/**
 * Three kites in a chain, A → B → C, each its own process with metrics and
 * tracing on: `relay` on A calls B, which calls C. Prints the answer, the
 * metrics URLs to scrape, and keeps running until Ctrl-C.
 *
 *     OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
 *       deno task example:observability
 *
 * Ports 7001 (A), 7002 (B), 7003 (C) unless `HOP_BASE_PORT` says otherwise.
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const base = Number(Deno.env.get("HOP_BASE_PORT") ?? 7001);
const hop = new URL("./hop.ts", import.meta.url).pathname;
const children: Deno.ChildProcess[] = [];

async function start(name: string, port: number, next?: string) {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-sys",
      "--allow-read",
      hop,
      name,
      ...(next ? [next] : []),
    ],
    env: { HOP_PORT: String(port), OTEL_SERVICE_NAME: name },
    stdout: "piped",
  }).spawn();
  children.push(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("serving")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`kite ${name} exited; is port ${port} free?`);
    seen += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  return `http://127.0.0.1:${port}/kite`;
}

const c = await start("C", base + 2);
const b = await start("B", base + 1, c);
const a = await start("A", base, b);
const caller = new Kite("caller", "1.0.0", {
  config: { disableAuthentication: true, logLevel: "ERROR" },
});
const client = caller.newClient(a);
await client.dial();
console.log("relay through the chain:", await client.tell("relay"));
console.log("metrics (Prometheus text):");
for (const url of [a, b, c]) console.log(`  ${url}/metrics`);
if (!Deno.env.get("OTEL_DENO")) {
  console.log("no traces exported: run with OTEL_DENO=true (see README)");
}
await caller.close();
if (Deno.args.includes("--once")) {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((ch) => ch.status));
} else {
  console.log("Ctrl-C to stop");
  Deno.addSignalListener("SIGINT", () => {
    for (const child of children) child.kill("SIGTERM");
    Deno.exit(0);
  });
}
