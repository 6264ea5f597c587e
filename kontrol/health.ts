/**
 * Whether Kontrol can use its storage. Health is earned: a probe reads the
 * storage every `probeIntervalMs`, and every write Kontrol makes reports
 * its outcome. Failures lasting `graceMs` make Kontrol unhealthy; the first
 * success makes it healthy again. Kontrol steps aside while unhealthy (see
 * `kontrol.ts`): kites it cannot persist move to another Kontrol.
 *
 * @module
 */
import type { Clock } from "../kite/clock.ts";
import type { Logger } from "../kite/log.ts";

/** Timing of the storage probe. */
export interface HealthTiming {
  /** How often the storage is probed. @default {5000} */
  probeIntervalMs: number;
  /**
   * How long failures must last before Kontrol steps aside: one blip of
   * the storage does not move every kite. @default {5000}
   */
  graceMs: number;
}

/** Defaults of {@linkcode HealthTiming}. */
export const DEFAULT_HEALTH_TIMING: HealthTiming = {
  probeIntervalMs: 5_000,
  graceMs: 5_000,
};

/** Tracks storage health from a periodic probe and reported writes. */
export class StorageHealth {
  readonly #probe: () => Promise<unknown>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timing: HealthTiming;
  readonly #onChange: (healthy: boolean) => void;
  #failingSince: number | undefined;
  #problem: string | undefined;
  #healthy = true;
  #timer: number | undefined;
  #stopped = true;

  /**
   * `probe` reads the storage (bounded by the storage's own timeout);
   * `onChange` runs on every transition.
   */
  constructor(
    probe: () => Promise<unknown>,
    clock: Clock,
    logger: Logger,
    timing: Partial<HealthTiming> = {},
    onChange: (healthy: boolean) => void = () => {},
  ) {
    this.#probe = probe;
    this.#clock = clock;
    this.#logger = logger;
    this.#timing = { ...DEFAULT_HEALTH_TIMING, ...timing };
    this.#onChange = onChange;
  }

  /** False while the storage has been failing for longer than the grace. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** The last failure's message while unhealthy. */
  get problem(): string | undefined {
    return this.#healthy ? undefined : this.#problem;
  }

  /** Timing in force. */
  get timing(): HealthTiming {
    return this.#timing;
  }

  /** A storage operation succeeded. */
  ok(): void {
    this.#failingSince = undefined;
    if (this.#healthy) return;
    this.#healthy = true;
    this.#logger.info("storage works again: accepting registrations");
    this.#onChange(true);
  }

  /** A storage operation failed. */
  fail(error: unknown): void {
    const now = this.#clock.now();
    this.#problem = error instanceof Error ? error.message : String(error);
    this.#failingSince ??= now;
    if (!this.#healthy || now - this.#failingSince < this.#timing.graceMs) {
      return;
    }
    this.#healthy = false;
    this.#logger.error(
      `storage failing for ${
        now - this.#failingSince
      } ms (${this.#problem}): refusing registrations, sending kites to other Kontrols`,
    );
    this.#onChange(false);
  }

  /** Starts probing. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  /** Stops probing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(async () => {
      this.#timer = undefined;
      try {
        await this.#probe();
        if (!this.#stopped) this.ok();
      } catch (err) {
        if (!this.#stopped) this.fail(err);
      }
      this.#schedule();
    }, this.#timing.probeIntervalMs);
  }
}
