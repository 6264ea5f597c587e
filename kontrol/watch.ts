/**
 * One `getKites` watcher (docs/protocol.md §8.2): forwards the storage's
 * REGISTER/DEREGISTER events to the caller's callback in order, and keeps
 * the set of kites the caller was told about, so that
 *
 * - an event that changes nothing for the caller (a second REGISTER of a
 *   kite it knows, e.g. one written back after a storage reset, or a
 *   DEREGISTER of one it never heard of) is not sent, and
 * - when the storage may have missed events (its watch reconnected, it was
 *   reset, Kontrol got its storage back), {@linkcode KontrolWatch.resync}
 *   reads the current set and sends the differences as ordinary events —
 *   nothing new on the wire.
 *
 * @module
 */
import type { Client } from "../kite/client.ts";
import type {
  KiteEvent,
  KiteIdentity,
  KontrolQuery,
} from "../kite/protocol.ts";
import type { Logger } from "../kite/log.ts";
import type { StorageEvent, Unsubscribe } from "../storage/storage.ts";
import type { KontrolServices } from "./services.ts";

/** What a watch needs to know about its caller. */
export interface WatchTarget {
  /** The caller's connection. */
  client: Client;
  /** The watchCallback it passed. */
  callback: (reply: unknown) => void;
  /** The query it watches. */
  query: KontrolQuery;
  /** Signs the caller a token for `kite`, with the kite's key pair. */
  token(kite: KiteIdentity, keyId: string): Promise<string>;
}

/** Resyncs a watch tries before giving up until the next gap. */
const RESYNC_ATTEMPTS = 3;

/** A running watch of one caller. */
export class KontrolWatch {
  readonly #kontrol: KontrolServices;
  readonly #target: WatchTarget;
  readonly #logger: Logger;
  /** The kites the caller believes registered, by id. */
  readonly #told: Map<string, KiteIdentity>;
  readonly #unsubscribe: Unsubscribe;
  /** Sends in order: a REGISTER waiting for its token must not be overtaken. */
  #queue: Promise<void> = Promise.resolve();
  /** Bumped by every storage event, so a resync knows it raced one. */
  #events = 0;
  #cancelled = false;

  /** Starts forwarding events; `told` are the kites the caller just got. */
  constructor(
    kontrol: KontrolServices,
    target: WatchTarget,
    told: Iterable<KiteIdentity>,
  ) {
    this.#kontrol = kontrol;
    this.#target = target;
    this.#logger = kontrol.kite.logger;
    this.#told = new Map([...told].map((k) => [k.id, k]));
    this.#unsubscribe = kontrol.storage.watch(
      target.query,
      (event) => this.#onEvent(event),
    );
  }

  /** Stops forwarding. */
  cancel(): void {
    this.#cancelled = true;
    this.#unsubscribe();
  }

  /**
   * Reads the watched set and sends what the caller missed: DEREGISTER for
   * kites it knows that are gone, REGISTER for new ones.
   */
  async resync(): Promise<void> {
    for (let attempt = 0; attempt < RESYNC_ATTEMPTS; attempt++) {
      if (this.#cancelled) return;
      const before = this.#events;
      let current;
      try {
        current = await this.#kontrol.storage.get(this.#target.query);
      } catch (err) {
        this.#logger.warning(
          `resynchronising a watcher failed: ${(err as Error).message}`,
        );
        return;
      }
      // An event arrived meanwhile: the read may predate it; read again.
      if (this.#events !== before) continue;
      const ids = new Set(current.map((k) => k.kite.id));
      for (const [id, kite] of [...this.#told]) {
        if (ids.has(id)) continue;
        this.#told.delete(id);
        this.#send({ action: "DEREGISTER", kite });
      }
      for (const k of current) {
        if (this.#told.has(k.kite.id)) continue;
        this.#told.set(k.kite.id, k.kite);
        this.#send(
          { action: "REGISTER", kite: k.kite },
          { url: k.url, keyId: k.keyId },
        );
      }
      return;
    }
  }

  #onEvent(event: StorageEvent): void {
    this.#events++;
    const id = event.kite.id;
    if (event.action === "REGISTER") {
      if (this.#told.has(id)) return;
      this.#told.set(id, event.kite);
      this.#send({ action: "REGISTER", kite: event.kite }, {
        url: event.url ?? "",
        keyId: event.keyId ?? "",
      });
    } else {
      if (!this.#told.delete(id)) return;
      this.#send({ action: "DEREGISTER", kite: event.kite });
    }
  }

  #send(event: KiteEvent, register?: { url: string; keyId: string }): void {
    const { client, callback } = this.#target;
    this.#queue = this.#queue.then(async () => {
      if (register?.url) {
        event.url = register.url;
        try {
          event.token = await this.#target.token(event.kite, register.keyId);
        } catch (err) {
          this.#logger.debug(
            `no token for watched kite: ${(err as Error).message}`,
          );
        }
      }
      if (client.connected && !this.#cancelled) {
        callback({ error: null, result: event });
      }
    });
  }
}
