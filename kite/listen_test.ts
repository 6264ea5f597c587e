import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { isWildcard, reachableHost, readTls } from "./listen.ts";

const nic = (
  name: string,
  family: "IPv4" | "IPv6",
  address: string,
): Deno.NetworkInterfaceInfo => ({
  name,
  family,
  address,
  netmask: "",
  scopeid: null,
  cidr: "",
  mac: "",
});

Deno.test("reachableHost() picks the first non-loopback IPv4 address", () => {
  assertEquals(
    reachableHost(() => [
      nic("lo", "IPv4", "127.0.0.1"),
      nic("eth0", "IPv6", "fe80::1"),
      nic("eth0", "IPv6", "fd00::2"),
      nic("eth0", "IPv4", "192.0.2.7"),
      nic("eth1", "IPv4", "198.51.100.3"),
    ]),
    { host: "192.0.2.7" },
  );
});

Deno.test("reachableHost() takes a global IPv6 address when there is no IPv4 one", () => {
  assertEquals(
    reachableHost(() => [
      nic("lo", "IPv6", "::1"),
      nic("eth0", "IPv6", "fe80::1"),
      nic("eth0", "IPv6", "fd00::2"),
    ]),
    { host: "[fd00::2]" },
  );
});

Deno.test("reachableHost() falls back to 127.0.0.1 and says why", () => {
  assertEquals(reachableHost(() => [nic("lo", "IPv4", "127.0.0.1")]), {
    host: "127.0.0.1",
    fallback: "no network interface other than loopback",
  });
  assertEquals(
    reachableHost(() => {
      throw new Deno.errors.NotCapable("Requires sys access");
    }),
    {
      host: "127.0.0.1",
      fallback:
        "no permission to list network interfaces (run with --allow-sys=networkInterfaces)",
    },
  );
});

Deno.test("isWildcard() knows the every-address forms", () => {
  assertEquals(
    ["", "0.0.0.0", "::", "[::]", "127.0.0.1", "192.0.2.1"].map(isWildcard),
    [true, true, true, true, false, false],
  );
});

Deno.test("readTls() needs both files and names the one it cannot read", () => {
  assertEquals(readTls({ tlsCert: "", tlsKey: "" }), undefined);
  assertThrows(
    () => readTls({ tlsCert: "c.pem", tlsKey: "" }),
    TypeError,
    "both KITE_TLS_CERT and KITE_TLS_KEY",
  );
  assertThrows(
    () =>
      readTls({ tlsCert: "/nonexistent/c.pem", tlsKey: "/nonexistent/k.pem" }),
    TypeError,
    "/nonexistent/c.pem",
  );
});
