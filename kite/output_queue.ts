/**
 * Writes to a stream without blocking the event loop: `kite.print` is
 * called by peers, and a synchronous write to a pipe nobody reads would
 * freeze the whole kite. What waits is bounded; beyond the bound, output
 * is dropped and counted.
 *
 * @module
 */

/** Where queued output goes (`Deno.stdout` has this shape). */
export interface OutputSink {
  /** Writes some of `bytes`; resolves with how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Bytes `kite.print` may keep waiting for stdout. */
export const DEFAULT_OUTPUT_QUEUE_BYTES = 1 << 20;

/** A bounded queue of writes to one sink, written one at a time, in order. */
export class OutputQueue {
  readonly #sink: OutputSink;
  readonly #maxBytes: number;
  #chunks: Uint8Array[] = [];
  #queuedBytes = 0;
  #writing = false;
  #dropped = 0;
  #droppedBytes = 0;
  #failure: unknown;

  /** Writes to `sink`, holding at most `maxBytes` not yet written. */
  constructor(sink: OutputSink, maxBytes: number = DEFAULT_OUTPUT_QUEUE_BYTES) {
    this.#sink = sink;
    this.#maxBytes = maxBytes;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Writes refused so far because the queue was full, and their bytes. */
  get dropped(): { writes: number; bytes: number } {
    return { writes: this.#dropped, bytes: this.#droppedBytes };
  }

  /** Set once the sink failed (e.g. stdout closed); later writes are dropped. */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Queues `bytes`; never blocks, never throws.
   * @returns false when they were dropped (queue full, or the sink failed).
   */
  push(bytes: Uint8Array): boolean {
    if (
      this.#failure !== undefined ||
      this.#queuedBytes + bytes.length > this.#maxBytes
    ) {
      this.#dropped++;
      this.#droppedBytes += bytes.length;
      return false;
    }
    this.#chunks.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) void this.#drain();
    return true;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#chunks.length > 0) {
        let chunk = this.#chunks[0];
        while (chunk.length > 0) {
          const n = await this.#sink.write(chunk);
          chunk = chunk.subarray(n);
          this.#queuedBytes -= n;
        }
        this.#chunks.shift();
      }
    } catch (error) {
      this.#failure = error;
      this.#chunks = [];
      this.#queuedBytes = 0;
    } finally {
      this.#writing = false;
    }
  }
}
