/**
 * `deno task kontrol --metrics host:port` (here KONTROL_METRICS) serves the
 * metrics on that private address only, under the launcher's scoped
 * permissions; the public Kontrol port does not serve them.
 */
import { readSettings } from "../kontrol/settings.ts";
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { freePort } from "./helpers/wait.ts";
import {
  FIXTURES,
  type RunningKontrol,
  startTask,
} from "./helpers/kontrol_task.ts";
import { promtoolCheck, sample } from "./helpers/prometheus.ts";

Deno.test("readSettings() reads --metrics: off, on, or a private host:port", () => {
  const none = () => undefined;
  assertEquals(readSettings([], none).metrics, "off");
  assertEquals(readSettings(["--metrics", "on"], none).metrics, "on");
  assertEquals(readSettings(["--metrics=9400"], none).metrics, {
    hostname: "127.0.0.1",
    port: 9400,
  });
  assertEquals(
    readSettings(
      [],
      (n) => n === "KONTROL_METRICS" ? "0.0.0.0:9401" : undefined,
    )
      .metrics,
    { hostname: "0.0.0.0", port: 9401 },
  );
  assertThrows(
    () => readSettings(["--metrics", "yes please"], none),
    RangeError,
    "host:port",
  );
});

Deno.test("deno task kontrol with KONTROL_METRICS=127.0.0.1:<port> serves metrics there only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_metrics_" });
  const port = freePort();
  const metricsPort = freePort();
  let running: RunningKontrol | undefined;
  try {
    running = await startTask({
      KITE_HOME: `${dir}/home`,
      KONTROL_DATA: `${dir}/data`,
      KONTROL_IP: "127.0.0.1",
      KONTROL_PORT: String(port),
      KONTROL_USERNAME: "kontrol",
      KONTROL_PUBLICKEYFILE: `${FIXTURES}kontrol_public.pem`,
      KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
      KONTROL_METRICS: `127.0.0.1:${metricsPort}`,
    });
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await res.text();
    assertEquals(res.status, 200, text);
    assertEquals(sample(text, "kontrol_watchers"), 0);
    await promtoolCheck(text);
    const pub = await fetch(`http://127.0.0.1:${port}/kite/metrics`);
    const body = await pub.text();
    assert(
      !body.includes("kontrol_watchers"),
      `public port serves metrics: ${body}`,
    );
  } finally {
    if (running) assertEquals(await running.stop(), 0, running.output());
    await Deno.remove(dir, { recursive: true });
  }
});
