/**
 * A self-signed TLS certificate for 127.0.0.1 and localhost, made by
 * openssl (Debian's) in a test's temporary directory.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";

/** Writes `cert.pem` and `key.pem` into `dir`; returns their paths. */
export async function selfSigned(
  dir: string,
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      // A self-signed leaf: rustls refuses a CA certificate as a server's.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "extendedKeyUsage=serverAuth",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return { cert, key };
}
