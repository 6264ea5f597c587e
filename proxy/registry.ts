/**
 * The kites a proxy kite serves, by kite id (shared by the reverse and the
 * tunnel proxy): who registered each one over which connection, what it
 * has open through the proxy now, and what it forwarded so far. A kite is
 * forgotten when the connection it registered over drops (as Go's proxies
 * do), and whatever callers had open to it is closed with a reason.
 *
 * @module
 */
import type { Client } from "../kite/client.ts";
import { KiteError } from "../kite/errors.ts";

/** Something open through the proxy for a kite; closed when the kite goes. */
export type Stream = (reason: string) => void;

/** One registered kite. */
export interface Registered<T> {
  /** The kite's id (the `kite.id` of its `register` call). */
  readonly id: string;
  /** The authenticated username that registered it. */
  readonly username: string;
  /** The connection it registered over. */
  readonly client: Client;
  /** Where the proxy forwards to (the reverse proxy: the kite's own URL). */
  target: T;
  /** Callers' connections and requests open to it now. */
  open: number;
  /** Connections and requests forwarded to it so far. */
  forwarded: number;
  /** Bytes forwarded from callers to the kite. */
  bytesIn: number;
  /** Bytes forwarded from the kite to callers. */
  bytesOut: number;
  /** What is open for it, to close when it goes. */
  readonly streams: Set<Stream>;
}

/** Kites by id, forgotten when their registration connection drops. */
export class ProxyRegistry<T> {
  readonly #kites = new Map<string, Registered<T>>();
  readonly #limit: number;

  /**
   * At most `limit` kites at once (a bound on what registrations hold).
   * Call {@linkcode ProxyRegistry.dropConnection} from the proxy kite's
   * `onDisconnect`.
   */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Registers (or registers again) kite `id` for `username` over `client`.
   * @throws {KiteError} `authenticationError` when another user holds `id`
   * (a kite id is not a credential: only its owner may move it);
   * `requestLimitError` when the proxy holds `limit` kites.
   */
  add(id: string, username: string, client: Client, target: T): Registered<T> {
    const old = this.#kites.get(id);
    if (old && old.username !== username) {
      throw new KiteError(
        "authenticationError",
        `kite id ${id} is registered with this proxy by another user`,
      );
    }
    if (!old && this.#kites.size >= this.#limit) {
      throw new KiteError(
        "requestLimitError",
        `this proxy serves ${this.#limit} kites already; try another proxy`,
      );
    }
    if (old?.client === client) {
      // Again over the same connection: what is open stays open.
      old.target = target;
      return old;
    }
    if (old) this.#drop(old, `kite ${id} registered again`);
    const entry: Registered<T> = {
      id,
      username,
      client,
      target,
      open: 0,
      forwarded: old?.forwarded ?? 0,
      bytesIn: old?.bytesIn ?? 0,
      bytesOut: old?.bytesOut ?? 0,
      streams: new Set(),
    };
    this.#kites.set(id, entry);
    return entry;
  }

  /** The kite registered as `id`, if any. */
  get(id: string): Registered<T> | undefined {
    return this.#kites.get(id);
  }

  /** Every registered kite. */
  values(): IterableIterator<Registered<T>> {
    return this.#kites.values();
  }

  /** Number of registered kites. */
  get size(): number {
    return this.#kites.size;
  }

  /** Forgets the kites registered over `client` (it disconnected). */
  dropConnection(client: Client): Registered<T>[] {
    const gone: Registered<T>[] = [];
    for (const entry of this.#kites.values()) {
      if (entry.client === client) gone.push(entry);
    }
    for (const entry of gone) {
      this.#drop(entry, `kite ${entry.id} left the proxy`);
    }
    return gone;
  }

  /** Forgets every kite, closing what is open for them. */
  clear(reason: string): void {
    for (const entry of [...this.#kites.values()]) this.#drop(entry, reason);
  }

  #drop(entry: Registered<T>, reason: string): void {
    if (this.#kites.get(entry.id) === entry) this.#kites.delete(entry.id);
    for (const close of [...entry.streams]) close(reason);
    entry.streams.clear();
  }
}
