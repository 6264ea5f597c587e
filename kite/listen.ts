/**
 * The edge of a kite's listener: errors that say which address could not
 * be bound and what to do, and the URL a kite listening on every address
 * registers, one that other hosts can reach.
 *
 * @module
 */

/** A listen address that means "every interface". */
export function isWildcard(host: string): boolean {
  return host === "" || host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** A listener that could not be opened; the message names the address and the fix. */
export class ListenError extends Error {
  /** The address asked for. */
  readonly hostname: string;
  /** The port asked for. */
  readonly port: number;

  /** Creates the error; `cause` is the runtime's error. */
  constructor(
    message: string,
    hostname: string,
    port: number,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = "ListenError";
    this.hostname = hostname;
    this.port = port;
  }
}

/**
 * Explains why `Deno.serve` refused `hostname:port`. `portSetting` names
 * where the user sets the port (a kite's is `KITE_PORT`, Kontrol's `--port`).
 */
export function listenError(
  cause: unknown,
  hostname: string,
  port: number,
  portSetting = "KITE_PORT (or config.port; 0 picks a free port)",
): ListenError {
  const where = `${hostname}:${port}`;
  let why: string;
  if (cause instanceof Deno.errors.AddrInUse) {
    why = `port ${port} is already in use by another process ` +
      `(another kite or Kontrol?): stop it, or choose another port with ${portSetting}`;
  } else if (cause instanceof Deno.errors.NotCapable) {
    why = `no permission to listen: run deno with --allow-net=${where}`;
  } else if (cause instanceof Deno.errors.AddrNotAvailable) {
    why = `${hostname} is not an address of this machine: ` +
      "listen on one of its addresses or on 0.0.0.0";
  } else if (cause instanceof Deno.errors.PermissionDenied) {
    why =
      `the system refused port ${port} (ports below 1024 need privileges): ` +
      `choose another port with ${portSetting}`;
  } else {
    why = cause instanceof Error ? cause.message : String(cause);
  }
  return new ListenError(
    `cannot listen on ${where}: ${why}`,
    hostname,
    port,
    cause,
  );
}

/** What {@linkcode reachableHost} found, and why when it fell back. */
export interface ReachableHost {
  /** An address other hosts can use, or `127.0.0.1`. */
  host: string;
  /** Why `127.0.0.1` was chosen; absent when an interface address was found. */
  fallback?: string;
}

/**
 * The address a kite listening on every interface tells Kontrol: the first
 * non-loopback IPv4 address of this machine (as Go's kite uses its local
 * IP), else an IPv6 one, else `127.0.0.1`. Needs
 * `--allow-sys=networkInterfaces`; without it, `127.0.0.1` and the reason.
 */
export function reachableHost(
  interfaces: () => Deno.NetworkInterfaceInfo[] = () =>
    Deno.networkInterfaces(),
): ReachableHost {
  let list: Deno.NetworkInterfaceInfo[];
  try {
    list = interfaces();
  } catch (err) {
    const fallback = err instanceof Deno.errors.NotCapable
      ? "no permission to list network interfaces (run with --allow-sys=networkInterfaces)"
      : `cannot list network interfaces (${(err as Error).message})`;
    return { host: "127.0.0.1", fallback };
  }
  const usable = list.filter((i) =>
    !isLoopback(i.address) && !i.address.startsWith("fe80:") &&
    !i.address.startsWith("169.254.")
  );
  const v4 = usable.find((i) => i.family === "IPv4");
  if (v4) return { host: v4.address };
  const v6 = usable.find((i) => i.family === "IPv6");
  if (v6) return { host: `[${v6.address}]` };
  return {
    host: "127.0.0.1",
    fallback: "no network interface other than loopback",
  };
}

function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1";
}

/**
 * The certificate and key a kite serves HTTPS/WSS with, read from the PEM
 * files of `tlsCert`/`tlsKey` (`KITE_TLS_CERT`/`KITE_TLS_KEY`); `undefined`
 * when neither is set.
 * @throws {TypeError} when only one is set, or a file cannot be read (the
 * message names the file and the variable).
 */
export function readTls(
  config: { tlsCert: string; tlsKey: string },
): { cert: string; key: string } | undefined {
  if (!config.tlsCert && !config.tlsKey) return undefined;
  if (!config.tlsCert || !config.tlsKey) {
    throw new TypeError(
      "TLS needs both KITE_TLS_CERT and KITE_TLS_KEY (config.tlsCert and config.tlsKey); only one is set",
    );
  }
  const read = (path: string, what: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (cause) {
      const hint = cause instanceof Deno.errors.NotCapable
        ? `run deno with --allow-read=${path}`
        : (cause as Error).message;
      throw new TypeError(`cannot read the TLS ${what} ${path}: ${hint}`, {
        cause,
      });
    }
  };
  return {
    cert: read(config.tlsCert, "certificate (KITE_TLS_CERT)"),
    key: read(config.tlsKey, "key (KITE_TLS_KEY)"),
  };
}
