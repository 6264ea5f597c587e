/**
 * The one kite logger: levels (`KITE_LOG_LEVEL`, docs/protocol.md §7.1),
 * fields (request id, method, caller, trace id), and two formats
 * (`KITE_LOG_FORMAT`): `text` for a terminal, `json` for one object per
 * line. Quiet by default: INFO and up, and nothing per call at INFO.
 *
 * @module
 */
import type { LogFormat, LogLevel } from "./config.ts";

const ORDER: Record<LogLevel, number> = {
  DEBUG: 0,
  INFO: 1,
  WARNING: 2,
  ERROR: 3,
  FATAL: 4,
};

/** Named values a log line carries besides its message. */
export type LogFields = Readonly<Record<string, unknown>>;

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
  /**
   * Optional: a logger whose lines also carry `fields`. Loggers without it
   * get plain lines (see {@linkcode withFields}).
   */
  child?(fields: LogFields): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** `text` or `json`. @default {"text"} */
  format?: LogFormat;
  /** Fields on every line. @default {{}} */
  fields?: LogFields;
  /** Where a finished line goes. @default {console.error (stderr)} */
  write?: (line: string) => void;
}

/**
 * A logger that writes lines at or above `level`: `[name] LEVEL message
 * key=value…` as text, or `{"time","level","kite","msg",…fields}` as JSON.
 */
export function createLogger(
  name: string,
  level: LogLevel,
  options: LoggerOptions = {},
): Logger {
  const min = ORDER[level];
  const write = options.write ?? ((line: string) => console.error(line));
  const json = options.format === "json";
  const make = (fields: LogFields): Logger => {
    const at = (l: LogLevel) => (message: string, ...data: unknown[]) => {
      if (ORDER[l] < min) return;
      write(
        (json ? jsonLine : textLine)({ name, level: l, message, fields, data }),
      );
    };
    return {
      debug: at("DEBUG"),
      info: at("INFO"),
      warning: at("WARNING"),
      error: at("ERROR"),
      child: (more) => make({ ...fields, ...more }),
    };
  };
  return make(options.fields ?? {});
}

/** `logger` with `fields` on its lines, when it can carry fields. */
export function withFields(logger: Logger, fields: LogFields): Logger {
  return logger.child ? logger.child(fields) : logger;
}

interface Line {
  name: string;
  level: LogLevel;
  message: string;
  fields: LogFields;
  data: unknown[];
}

function textLine({ name, level, message, fields, data }: Line): string {
  let line = `[${name}] ${level} ${message}`;
  for (const k in fields) {
    if (fields[k] !== undefined) line += ` ${k}=${text(fields[k])}`;
  }
  for (const d of data) line += " " + text(d);
  return line;
}

function jsonLine({ name, level, message, fields, data }: Line): string {
  const o: Record<string, unknown> = {
    time: new Date().toISOString(),
    level: level.toLowerCase(),
    kite: name,
    msg: message,
  };
  for (const k in fields) if (fields[k] !== undefined) o[k] = fields[k];
  if (data.length > 0) {
    o.data = data.map((d) => d instanceof Error ? d.message : d);
  }
  try {
    return JSON.stringify(o);
  } catch {
    // A cycle or a BigInt in data: the line still goes out.
    return JSON.stringify({ ...o, data: data.map(text) });
  }
}

function text(v: unknown): string {
  if (typeof v === "string") return /\s|"/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
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
