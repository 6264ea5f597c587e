import { assertEquals, assertRejects } from "../tests/helpers/assert.ts";
import { testKite, waitFor } from "../tests/helpers/kite_harness.ts";
import { KiteError } from "./errors.ts";
import { ProxyRegistration } from "./proxy_registration.ts";

Deno.test("ProxyRegistration calls the proxy's register with its argument and hands on the URL; again after the proxy connection drops", async () => {
  const proxy = testKite("proxy", { disableAuthentication: true });
  const seen: unknown[] = [];
  let n = 0;
  proxy.handle("register", (r) => {
    seen.push(r.args.one().string());
    return `http://127.0.0.1:1/proxy/kite-${++n}`;
  });
  const { url } = await proxy.serve();
  const kite = testKite("math");
  const urls: string[] = [];
  const reg = new ProxyRegistration(kite, {
    url,
    name: "proxy",
    argument: () => "http://10.0.0.5:6000/kite",
    onURL: (u) => Promise.resolve(void urls.push(u)),
    retryMs: 50,
  });
  try {
    assertEquals(await reg.start(), "http://127.0.0.1:1/proxy/kite-1");
    assertEquals(seen, ["http://10.0.0.5:6000/kite"]);
    for (const c of proxy.connections) c.close();
    await waitFor(() => urls.length === 2, "a second registration");
    assertEquals(urls, [
      "http://127.0.0.1:1/proxy/kite-1",
      "http://127.0.0.1:1/proxy/kite-2",
    ]);
    assertEquals(reg.url, "http://127.0.0.1:1/proxy/kite-2");
  } finally {
    reg.close();
    await kite.close();
    await proxy.close();
  }
});

Deno.test("ProxyRegistration rejects at once when the proxy refuses the kite.key, and an answer that is no URL is retried", async () => {
  const proxy = testKite("proxy", { disableAuthentication: true });
  let calls = 0;
  proxy.handle("register", () => {
    if (++calls === 1) return 42;
    throw new KiteError("authenticationError", "no kite.key");
  });
  const { url } = await proxy.serve();
  const kite = testKite("math");
  const reg = new ProxyRegistration(kite, {
    url,
    name: "proxy",
    argument: () => "",
    onURL: () => Promise.resolve(),
    retryMs: 20,
  });
  try {
    await assertRejects(() => reg.start(), KiteError, "no kite.key");
    assertEquals(calls, 2);
  } finally {
    reg.close();
    await kite.close();
    await proxy.close();
  }
});
