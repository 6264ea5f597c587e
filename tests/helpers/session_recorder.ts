/**
 * Records what a client session delivers, for the transport tests.
 *
 * @module
 */
import type {
  CloseInfo,
  SessionHandler,
} from "../../kite/transport/session.ts";

/** A FIFO whose `next()` waits for the next item; `all` keeps every item. */
export class Queue<T> {
  readonly all: T[] = [];
  #items: T[] = [];
  #waiters: ((item: T) => void)[] = [];
  push(item: T): void {
    this.all.push(item);
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  next(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** A handler that records messages and closes; `onMessage` sees each message first. */
export function recorder(onMessage?: (message: string) => void) {
  const messages = new Queue<string>();
  const closes: CloseInfo[] = [];
  const closed = Promise.withResolvers<CloseInfo>();
  const handler: SessionHandler = {
    onMessage(message) {
      onMessage?.(message);
      messages.push(message);
    },
    onClose(info) {
      closes.push(info);
      closed.resolve(info);
    },
  };
  return { handler, messages, closes, closed: closed.promise };
}
