/**
 * The kite side of a `getKites` watch (docs/protocol.md §8.2) that
 * survives its connection: when the connection to Kontrol drops, the watch
 * is set up again on the next connection (the same Kontrol or another of
 * the list), and the kites found then are compared with what the caller
 * was told, the differences delivered as ordinary REGISTER/DEREGISTER
 * events. Nothing new on the wire.
 *
 * @module
 */
import { Backoff } from "./backoff.ts";
import type { Client } from "./client.ts";
import { KiteError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { KiteEvent, KiteWithToken, KontrolQuery } from "./protocol.ts";

/** What a watch needs from the Kontrol client. */
export interface WatchHost {
  /** The connection to Kontrol, dialing the list as needed. */
  connection(): Promise<Client>;
  /** Bound on each call. */
  timeoutMs: number;
  /** Where failures are logged. */
  logger: Logger;
  /** Waits `ms` (the kite's clock); false when the client closed meanwhile. */
  sleep(ms: number): Promise<boolean>;
}

/** One watch, re-established after every drop until cancelled. */
export class KontrolWatcher {
  readonly #host: WatchHost;
  readonly #query: KontrolQuery;
  readonly #fn: (event: KiteEvent) => void;
  /** The kites the caller was told about, by id. */
  readonly #known = new Map<string, KiteEvent["kite"]>();
  #client: Client | undefined;
  #callback: ((reply: { result?: KiteEvent }) => void) | undefined;
  #watcherID: string | undefined;
  #off: (() => void) | undefined;
  #cancelled = false;
  readonly #initial: boolean;

  /** `initial`: the kites found when the watch starts are passed on as REGISTER events too. */
  constructor(
    host: WatchHost,
    query: KontrolQuery,
    fn: (event: KiteEvent) => void,
    initial = false,
  ) {
    this.#host = host;
    this.#query = query;
    this.#fn = fn;
    this.#initial = initial;
  }

  /** Sets the watch up the first time; rejects when that fails. */
  async start(): Promise<void> {
    await this.#subscribe(false);
  }

  async #subscribe(resync: boolean): Promise<void> {
    const client = await this.#host.connection();
    // Kites whose events arrived before the answer: newer than the answer.
    const touched = new Set<string>();
    const callback = (reply: { result?: KiteEvent }) => {
      const event = reply?.result;
      if (!event || this.#cancelled || this.#callback !== callback) return;
      touched.add(event.kite.id);
      this.#deliver(event);
    };
    this.#callback = callback;
    const result = await client.tellWithTimeout(
      "getKites",
      this.#host.timeoutMs,
      { query: this.#query, watchCallback: callback, who: null },
    ) as { kites?: KiteWithToken[]; watcherID?: string };
    if (this.#cancelled) return;
    this.#client = client;
    this.#watcherID = result.watcherID;
    const kites = result.kites ?? [];
    if (resync || this.#initial) {
      const now = new Set(kites.map((k) => k.kite.id));
      for (const [id, kite] of [...this.#known]) {
        if (now.has(id) || touched.has(id)) continue;
        this.#deliver({ action: "DEREGISTER", kite });
      }
      for (const k of kites) {
        if (this.#known.has(k.kite.id) || touched.has(k.kite.id)) continue;
        this.#deliver({
          action: "REGISTER",
          kite: k.kite,
          url: k.url,
          token: k.token,
        });
      }
    } else {
      for (const k of kites) {
        if (!touched.has(k.kite.id)) this.#known.set(k.kite.id, k.kite);
      }
    }
    this.#off = client.onDisconnect(() => {
      this.#off?.();
      this.#off = undefined;
      if (!this.#cancelled) void this.#rewatch();
    });
  }

  /** Passes an event on unless it changes nothing for the caller. */
  #deliver(event: KiteEvent): void {
    const id = event.kite.id;
    if (event.action === "REGISTER") {
      if (this.#known.has(id)) return;
      this.#known.set(id, event.kite);
    } else if (!this.#known.delete(id)) return;
    try {
      this.#fn(event);
    } catch (err) {
      this.#host.logger.warning(
        `watchKites listener failed: ${(err as Error).message}`,
      );
    }
  }

  /** The connection dropped: watch again, then tell what changed. */
  async #rewatch(): Promise<void> {
    if (this.#client && this.#callback) {
      this.#client.releaseCallback(this.#callback);
    }
    const backoff = new Backoff({ initialMs: 200, maxMs: 5_000 });
    while (!this.#cancelled) {
      try {
        await this.#subscribe(true);
        return;
      } catch (err) {
        this.#host.logger.debug(
          `watching kites again failed: ${(err as Error).message}`,
        );
        if (!await this.#host.sleep(backoff.next())) return;
      }
    }
  }

  /** Stops the watch; never rejects. */
  cancel(): Promise<void> {
    this.#cancelled = true;
    this.#off?.();
    const client = this.#client;
    const id = this.#watcherID;
    if (client && this.#callback) client.releaseCallback(this.#callback);
    if (!client || !id || !client.connected) return Promise.resolve();
    return client.tellWithTimeout("cancelWatcher", this.#host.timeoutMs, id)
      .then(() => {}, (err: unknown) => {
        const gone = err instanceof KiteError &&
          (err.type === "disconnect" || err.type === "sendError");
        const text = `cancelWatcher ${id}: ${(err as Error).message}`;
        if (gone) this.#host.logger.debug(text);
        else this.#host.logger.warning(text);
      });
  }
}
