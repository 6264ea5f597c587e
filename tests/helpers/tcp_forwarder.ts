/**
 * A TCP forwarder on 127.0.0.1 that a test can cut: `stop()` closes the
 * listener and every forwarded connection (the client sees its server
 * vanish, and new connections are refused), `start()` listens again on
 * the same port. Used to cut one Kontrol off from its storage.
 *
 * @module
 */

/** Forwards `127.0.0.1:<port>` to a target until stopped. */
export class TcpForwarder {
  readonly #target: Deno.ConnectOptions;
  readonly #conns = new Set<Deno.Conn>();
  readonly #pipes = new Set<Promise<void>>();
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  #port = 0;

  /** Creates a forwarder to `target`; call {@linkcode TcpForwarder.start}. */
  constructor(target: { hostname: string; port: number }) {
    this.#target = target;
  }

  /** The local port (fixed after the first start). */
  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:<port>`. */
  get hostPort(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Listens (again, on the same port) and forwards. */
  start(): void {
    if (this.#listener) return;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: this.#port });
    this.#listener = listener;
    this.#port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = (async () => {
      for await (const conn of listener) this.#forward(conn);
    })().catch(() => {});
  }

  #forward(conn: Deno.Conn): void {
    this.#conns.add(conn);
    const pipe = (async () => {
      let up: Deno.Conn | undefined;
      try {
        up = await Deno.connect(this.#target);
        this.#conns.add(up);
        await Promise.all([
          conn.readable.pipeTo(up.writable).catch(() => {}),
          up.readable.pipeTo(conn.writable).catch(() => {}),
        ]);
      } catch {
        // target down: the client sees its connection closed
      } finally {
        for (const c of [conn, up]) {
          if (!c || !this.#conns.delete(c)) continue;
          try {
            c.close();
          } catch { /* closed by pipeTo */ }
        }
      }
    })();
    this.#pipes.add(pipe);
    pipe.finally(() => this.#pipes.delete(pipe));
  }

  /** Cuts every forwarded connection and refuses new ones. */
  async stop(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    this.#listener = undefined;
    listener.close();
    await this.#accepting;
    for (const c of [...this.#conns]) {
      this.#conns.delete(c);
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await Promise.all([...this.#pipes]);
  }
}
