/**
 * What a proxy process gives up once it serves. Its kite.key, TLS files,
 * `KITE_*` variables and host name are read while it starts; from then on
 * it needs only the network, so file reads, environment variables and
 * system information are revoked: whoever made the process run code of
 * theirs (a bug in a parser of hostile bytes) could not read a file with
 * it. The network cannot be scoped: a proxy listens where its operator
 * says and dials kites at the addresses they register from.
 *
 * @module
 */

/** The permissions a proxy needs only while it starts. */
export const STARTUP_PERMISSIONS = ["read", "env", "sys"] as const;

/** Revokes {@linkcode STARTUP_PERMISSIONS}, whether granted in whole, in part or not at all. */
export async function dropStartupPermissions(): Promise<void> {
  for (const name of STARTUP_PERMISSIONS) {
    await Deno.permissions.revoke({ name });
  }
}
