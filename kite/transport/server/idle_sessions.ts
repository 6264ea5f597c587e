/**
 * `idleSessionMs`: a session that has sent no message that long after it
 * opened is closed with code 4001, whatever its transport. One shared timer
 * for all sessions ({@linkcode Heartbeats}); the call path pays only the
 * session's "heard yet" flag.
 *
 * @module
 */

import type { Clock } from "../../clock.ts";
import type { CloseInfo, Session } from "../session.ts";
import { Heartbeats } from "./sockjs_session.ts";

/** Watches new sessions until their first message; a no-op when `ms` is 0. */
export class IdleSessions {
  readonly #watch: Heartbeats | undefined;
  readonly #reason: CloseInfo;
  /** Sessions that have not sent a message yet, checked once when their time is up. */
  readonly #silent = new Map<Session, SilenceCheck>();

  /** Closes sessions silent for `ms` after opening; 0 never does. */
  constructor(clock: Clock, ms: number) {
    this.#reason = idleTooLong(ms);
    if (ms > 0) this.#watch = new Heartbeats(clock, ms);
  }

  /** Starts the idle check of a new session. */
  watch(session: Session): void {
    const watch = this.#watch;
    if (!watch) return;
    const check = new SilenceCheck(session, this.#silent, this.#reason);
    this.#silent.set(session, check);
    watch.add(check);
  }

  /** The session sent its first message or ended: it is not idle. */
  heard(session: Session): void {
    const check = this.#silent.get(session);
    if (!check) return;
    this.#silent.delete(session);
    this.#watch!.delete(check);
  }

  /** Stops every check (server shutdown). */
  clear(): void {
    for (const check of this.#silent.values()) this.#watch?.delete(check);
    this.#silent.clear();
  }
}

/**
 * Closes a session that has sent nothing by the time it is checked (once:
 * `beat` returns false, so {@linkcode Heartbeats} drops it either way).
 */
class SilenceCheck {
  constructor(
    readonly session: Session,
    readonly silent: Map<Session, SilenceCheck>,
    readonly reason: CloseInfo,
  ) {}

  beat(): boolean {
    this.silent.delete(this.session);
    if (!this.session.closed) {
      this.session.close(this.reason.code, this.reason.reason);
    }
    return false;
  }
}

/** The close reason of a session that sent nothing within `ms`. */
export function idleTooLong(ms: number): CloseInfo {
  return {
    code: 4001,
    reason: `Idle session: no message within ${ms} ms of opening`,
  };
}
