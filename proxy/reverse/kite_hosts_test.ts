import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import { KiteError } from "../../kite/errors.ts";
import { KiteHosts, parseIP } from "./kite_hosts.ts";

const noDns = () => Promise.reject(new Error("no DNS in this test"));

async function refused(hosts: KiteHosts, url: string, from: string) {
  const err = await assertRejects(() => hosts.check(new URL(url), from));
  assert(err instanceof KiteError, String(err));
  assertEquals(err.type, "authenticationError");
  assertMatch(err.message, /--kite-hosts \/ KITE_PROXY_KITE_HOSTS/);
  return err.message;
}

Deno.test("parseIP() reads IPv4, IPv6 and IPv4-mapped literals as 16 bytes", () => {
  assertEquals(parseIP("10.1.2.3"), parseIP("::ffff:10.1.2.3"));
  assertEquals(parseIP("::ffff:a01:203"), parseIP("10.1.2.3"));
  assertEquals(parseIP("::1")?.[15], 1);
  assertEquals(parseIP("fe80::1%eth0"), parseIP("fe80:0:0:0:0:0:0:1"));
  for (
    const bad of ["10.1.2", "256.1.1.1", "1::2::3", "1:2:3:4:5:6:7:8:9", "x"]
  ) {
    assertEquals(parseIP(bad), undefined, bad);
  }
});

Deno.test("KiteHosts: by default a kite may register only the address it registers from", async () => {
  const hosts = new KiteHosts([], noDns);
  const url = new URL("http://10.0.0.5:6000/kite");
  assertEquals(await hosts.check(url, "10.0.0.5:41000"), url);
  assertEquals(
    (await hosts.check(new URL("http://[::ffff:10.0.0.5]:1/"), "10.0.0.5:2"))
      .port,
    "1",
  );
  const why = await refused(hosts, "http://127.0.0.1:5432/", "10.0.0.5:41000");
  assertMatch(why, /from \(10\.0\.0\.5\): 127\.0\.0\.1:5432 is refused/);
  await refused(hosts, "http://169.254.169.254/latest", "10.0.0.5:1");
  await refused(hosts, "http://127.0.0.2:6000/kite", "127.0.0.1:9");
  await refused(hosts, "http://0.0.0.0:6000/kite", "127.0.0.1:9");
  await refused(hosts, "http://[::1]:6000/kite", "10.0.0.5:1");
  await refused(hosts, "http://10.0.0.5:6000/kite", ""); // address unknown
  // One host's loopback, whichever family.
  await hosts.check(new URL("http://[::1]:6000/kite"), "127.0.0.1:9");
});

Deno.test("KiteHosts: listed addresses, ranges, names and * widen it", async () => {
  const hosts = KiteHosts.parse(
    "10.0.0.0/8, fd00::/8,203.0.113.7,kites.internal",
    noDns,
  );
  for (
    const url of [
      "http://10.200.1.1:1/",
      "http://[fd12::5]:1/",
      "https://203.0.113.7/kite",
      "http://KITES.internal:6000/kite",
    ]
  ) {
    await hosts.check(new URL(url), "192.0.2.1:5");
  }
  await refused(hosts, "http://11.0.0.1:1/", "192.0.2.1:5");
  await refused(hosts, "http://203.0.113.8/", "192.0.2.1:5");
  await refused(hosts, "http://other.internal/", "192.0.2.1:5");
  await KiteHosts.parse("*").check(
    new URL("http://169.254.169.254/"),
    "192.0.2.1:5",
  );
  for (const bad of ["10.0.0.0/33", "fd00::/129", "a b", "1.2.3.4/8/9"]) {
    assertThrows(() => KiteHosts.parse(bad), TypeError, bad);
  }
});

Deno.test("KiteHosts: a host name must resolve to allowed addresses; plain HTTP is dialed at the one checked", async () => {
  let answer = ["10.0.0.5"];
  const hosts = new KiteHosts([], () => Promise.resolve(answer));
  const pinned = await hosts.check(
    new URL("http://kite.example:6000/kite?x=1"),
    "10.0.0.5:9",
  );
  assertEquals(pinned.href, "http://10.0.0.5:6000/kite?x=1");
  // TLS: dialed by name (its certificate names it).
  const tls = new URL("https://kite.example/kite");
  assertEquals(await hosts.check(tls, "10.0.0.5:9"), tls);
  answer = ["10.0.0.5", "127.0.0.1"];
  assertEquals(
    (await hosts.check(new URL("http://kite.example/"), "10.0.0.5:9")).host,
    "10.0.0.5",
  );
  await refused(hosts, "https://kite.example/", "10.0.0.5:9");
  answer = ["169.254.169.254"];
  const why = await refused(hosts, "http://kite.example/", "10.0.0.5:9");
  assertMatch(why, /resolves to 169\.254\.169\.254/);
  // localhost is the loopback, without DNS.
  assertEquals(
    (await new KiteHosts([], noDns).check(
      new URL("http://localhost:6000/kite"),
      "127.0.0.1:9",
    )).host,
    "127.0.0.1:6000",
  );
  await refused(new KiteHosts([], noDns), "http://nowhere.test/", "1.2.3.4:5");
});
