/**
 * A small levelled logger (`KITE_LOG_LEVEL`, docs/protocol.md §7.1).
 *
 * @module
 */
import type { LogLevel } from "./config.ts";

const ORDER: Record<LogLevel, number> = {
  DEBUG: 0,
  INFO: 1,
  WARNING: 2,
  ERROR: 3,
  FATAL: 4,
};

/** Where kite messages go. */
export interface Logger {
  /** Verbose diagnostics. */
  debug(message: string, ...data: unknown[]): void;
  /** Normal events. */
  info(message: string, ...data: unknown[]): void;
  /** Something went wrong but work continues. */
  warning(message: string, ...data: unknown[]): void;
  /** A failure. */
  error(message: string, ...data: unknown[]): void;
}

/** A logger that writes `[name] LEVEL message` to stderr at or above `level`. */
export function createLogger(name: string, level: LogLevel): Logger {
  const min = ORDER[level];
  const at = (l: LogLevel) => (message: string, ...data: unknown[]) => {
    if (ORDER[l] >= min) console.error(`[${name}] ${l} ${message}`, ...data);
  };
  return {
    debug: at("DEBUG"),
    info: at("INFO"),
    warning: at("WARNING"),
    error: at("ERROR"),
  };
}

/**
 * A log function that writes at most one line per `intervalMs` (the first
 * at once); the next line written says how many were held back. For retry
 * loops, so a user sees what they wait for without a flood.
 */
export function rateLimited(
  log: (message: string) => void,
  intervalMs: number,
  now: () => number,
): (message: string) => void {
  let last = -Infinity;
  let held = 0;
  return (message) => {
    const t = now();
    if (t - last < intervalMs) {
      held++;
      return;
    }
    last = t;
    log(held > 0 ? `${message} (${held} similar lines held back)` : message);
    held = 0;
  };
}
