/**
 * A watch on Kontrol that outlives its connection: getKites with a watch
 * callback, and on every reconnection (the same Kontrol restarted, or
 * another one of `kontrolURL` took over) the same again, handing the full
 * list over so the watcher can resync what it missed meanwhile.
 *
 * @module
 */
import { Backoff } from "../backoff.ts";
import { KiteError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { KontrolClient } from "../kontrol_client.ts";
import type { Logger } from "../log.ts";
import {
  type KiteEvent,
  type KiteWithToken,
  type KontrolQuery,
  makeQuery,
} from "../protocol.ts";

/** The part of a kite a pool and its watch use (a `Kite` is one). */
export interface PoolHost {
  /** Settings (`timeoutMs` bounds the calls to Kontrol). */
  readonly config: { readonly timeoutMs: number };
  /** Time source of backoffs and breakers. */
  readonly clock: Clock;
  /** Where watch failures are logged. */
  readonly logger: Logger;
  /** The kite's Kontrol client. */
  readonly kontrol: KontrolClient;
  /** Runs `fn` when the kite closes. */
  addCloser(fn: () => void | Promise<void>): () => void;
}

/** What a {@linkcode KontrolWatch} reports. */
export interface WatchHandlers {
  /** The complete list, after every (re)watch. */
  sync(kites: KiteWithToken[]): void;
  /** A kite registered or went away. */
  event(event: KiteEvent): void;
  /** A (re)watch failed; it is tried again after a backoff. */
  error(error: KiteError): void;
}

/** @internal Keeps one getKites watch alive until closed. */
export class KontrolWatch {
  readonly #kite: PoolHost;
  readonly #query: KontrolQuery;
  readonly #handlers: WatchHandlers;
  readonly #backoff = new Backoff({ initialMs: 100, maxMs: 5_000 });
  #closed = false;
  #cancel: (() => Promise<void>) | undefined;
  #timer: number | undefined;
  /** Resolves after the first sync; rejects if the first watch cannot start at all. */
  readonly first: Promise<void>;
  #firstDone!: () => void;
  #firstFailed!: (err: KiteError) => void;
  #synced = false;

  constructor(
    kite: PoolHost,
    query: Partial<KontrolQuery>,
    handlers: WatchHandlers,
  ) {
    this.#kite = kite;
    this.#query = makeQuery(query);
    this.#handlers = handlers;
    this.first = new Promise((resolve, reject) => {
      this.#firstDone = resolve;
      this.#firstFailed = reject;
    });
    // A caller that never calls must not see an unhandled rejection.
    this.first.catch(() => {});
    void this.#start();
  }

  async #start(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#watch();
      this.#backoff.reset();
    } catch (err) {
      if (this.#closed) return;
      const error = KiteError.from(err);
      // Configuration problems (no Kontrol URL, no kite.key) do not heal.
      if (!this.#synced && isPermanent(error)) {
        this.#firstFailed(error);
        return;
      }
      this.#handlers.error(error);
      this.#timer = this.#kite.clock.setTimeout(() => {
        this.#timer = undefined;
        void this.#start();
      }, this.#backoff.next());
    }
  }

  async #watch(): Promise<void> {
    const kontrol = this.#kite.kontrol;
    const conn = await kontrol.connection();
    if (this.#closed) return;
    const callback = (reply: { result?: KiteEvent } | null) => {
      if (!this.#closed && reply?.result) this.#handlers.event(reply.result);
    };
    let live = true;
    const off = conn.onDisconnect(() => {
      live = false;
      off();
      this.#cancel = undefined;
      // Kontrol drops a watch with its connection: watch again once back.
      if (!this.#closed) void this.#start();
    });
    let answer: { kites?: KiteWithToken[]; watcherID?: string };
    try {
      answer = await conn.tellWithTimeout(
        "getKites",
        this.#kite.config.timeoutMs,
        { query: this.#query, watchCallback: callback, who: null },
      ) as typeof answer;
    } catch (err) {
      off();
      conn.releaseCallback(callback);
      // A drop while asking is handled by the disconnect listener above.
      if (!live) return;
      throw err;
    }
    this.#cancel = async () => {
      off();
      conn.releaseCallback(callback);
      if (answer.watcherID && conn.connected) {
        await conn.tellWithTimeout(
          "cancelWatcher",
          this.#kite.config.timeoutMs,
          answer.watcherID,
        );
      }
    };
    if (this.#closed) return void await this.#cancel().catch(() => {});
    this.#handlers.sync(answer.kites ?? []);
    if (!this.#synced) {
      this.#synced = true;
      this.#firstDone();
    }
  }

  /** Stops watching (tells Kontrol when connected). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#firstFailed(new KiteError("sendError", "the pool is closed"));
    if (this.#timer !== undefined) this.#kite.clock.clearTimeout(this.#timer);
    const cancel = this.#cancel;
    this.#cancel = undefined;
    await cancel?.().catch((err) =>
      this.#kite.logger.debug(`cancelWatcher failed: ${err.message}`)
    );
  }
}

function isPermanent(error: KiteError): boolean {
  return error.message.startsWith("no Kontrol URL") ||
    error.message.startsWith("no kite.key");
}
