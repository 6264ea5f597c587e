import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { configFromEnv, DEFAULT_CONFIG, parseGoDuration } from "./config.ts";

/** A fake environment. */
function env(
  vars: Record<string, string>,
): (name: string) => string | undefined {
  return (name) => vars[name];
}

Deno.test("parseGoDuration() reads Go durations into milliseconds", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["-0", 0],
    ["0s", 0],
    ["300ms", 300],
    ["10s", 10_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["2h45m30.5s", 9_930_500],
    ["1m0s", 60_000],
    [".5s", 500],
    ["5.s", 5_000],
    ["+5s", 5_000],
    ["-1.5s", -1_500],
    ["1500us", 1.5],
    ["1500\u00b5s", 1.5],
    ["1500\u03bcs", 1.5],
    ["2000000ns", 2],
    ["1h1m1s1ms", 3_661_001],
  ];
  for (const [text, ms] of cases) {
    assertEquals(parseGoDuration(text), ms, text);
  }
});

Deno.test("parseGoDuration() refuses what Go refuses, with a RangeError", () => {
  for (
    const text of [
      "",
      "-",
      "+",
      "10",
      "00",
      "s",
      "1d",
      "1w",
      "1S",
      "1 s",
      " 1s",
      "1s ",
      "1h x",
      "--1s",
      "1.2.3s",
      ".s",
      "1e3s",
      "ten seconds",
    ]
  ) {
    const err = assertThrows(() => parseGoDuration(text), RangeError);
    assertEquals(
      err.message.includes(JSON.stringify(text)),
      true,
      `message names the input: ${err.message}`,
    );
  }
});

Deno.test("configFromEnv() returns only the variables that are set", () => {
  assertEquals(configFromEnv(env({})), {});
  // Go ignores empty variables.
  assertEquals(
    configFromEnv(env({ KITE_USERNAME: "", KITE_PORT: "", KITE_TIMEOUT: "" })),
    {},
  );
  assertEquals(
    configFromEnv(env({
      KITE_USERNAME: "alice",
      KITE_ENVIRONMENT: "production",
      KITE_REGION: "eu",
      KITE_IP: "127.0.0.1",
      KITE_PORT: "3636",
      KITE_KONTROL_URL: "http://127.0.0.1:4000/kite",
      KITE_TRANSPORT: "XHRPolling",
      KITE_TIMEOUT: "30s",
      KITE_VERIFY_TTL: "1h",
      KITE_LOG_LEVEL: "debug",
    })),
    {
      username: "alice",
      environment: "production",
      region: "eu",
      ip: "127.0.0.1",
      port: 3636,
      kontrolURL: "http://127.0.0.1:4000/kite",
      transport: "xhr-polling",
      timeoutMs: 30_000,
      verifyTtlMs: 3_600_000,
      logLevel: "DEBUG",
    },
  );
});

Deno.test("configFromEnv() maps Go's transport names and log levels", () => {
  const transports: [string, string][] = [
    ["WebSocket", "websocket"],
    ["auto", "websocket"],
    ["XHRPolling", "xhr-polling"],
    ["raw-websocket", "raw-websocket"],
  ];
  for (const [value, transport] of transports) {
    assertEquals(configFromEnv(env({ KITE_TRANSPORT: value })), {
      transport: transport as "websocket",
    });
  }
  const levels: [string, string][] = [
    ["DEBUG", "DEBUG"],
    ["warning", "WARNING"],
    ["Error", "ERROR"],
    ["FATAL", "FATAL"],
    ["INFO", "INFO"],
    ["chatty", "INFO"],
  ];
  for (const [value, level] of levels) {
    assertEquals(configFromEnv(env({ KITE_LOG_LEVEL: value })), {
      logLevel: level as "INFO",
    });
  }
  assertEquals(configFromEnv(env({ KITE_PORT: "0" })), { port: 0 });
  assertEquals(configFromEnv(env({ KITE_PORT: "65535" })), { port: 65535 });
});

Deno.test("configFromEnv() throws a RangeError naming the variable for bad values", () => {
  const bad: Record<string, string[]> = {
    KITE_PORT: ["abc", "-1", "65536", "1.5", "0x10", "1e3", " 80", "80 "],
    KITE_TIMEOUT: ["10", "forever", "1d"],
    KITE_VERIFY_TTL: ["5", "soon"],
    // Go's names are case-sensitive; our own lower-case names are accepted too.
    KITE_TRANSPORT: ["WEBSOCKET", "xhr", "SockJS"],
  };
  for (const [name, values] of Object.entries(bad)) {
    for (const value of values) {
      const err = assertThrows(
        () => configFromEnv(env({ [name]: value })),
        RangeError,
      );
      assertEquals(
        err.message.startsWith(name),
        true,
        `${name}=${value}: ${err.message}`,
      );
    }
  }
});

Deno.test("DEFAULT_CONFIG holds Go's defaults and cannot be changed", () => {
  assertEquals(DEFAULT_CONFIG.username, "unknown");
  assertEquals(DEFAULT_CONFIG.environment, "unknown");
  assertEquals(DEFAULT_CONFIG.region, "unknown");
  assertEquals(DEFAULT_CONFIG.ip, "0.0.0.0");
  assertEquals(DEFAULT_CONFIG.port, 0);
  assertEquals(DEFAULT_CONFIG.timeoutMs, 15_000);
  assertEquals(DEFAULT_CONFIG.disableAuthentication, false);
  assertEquals(Object.isFrozen(DEFAULT_CONFIG), true);
});
