/**
 * One attempt of a pool call on one instance, and how its failure is
 * judged: retry elsewhere or not, and whether the instance's breaker
 * counts it.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { KiteError } from "../errors.ts";
import type { Member } from "./member.ts";

/** A failed attempt. */
export interface Failure {
  ok: false;
  error: KiteError;
  /** Another instance may be tried. */
  retry: boolean;
  /** The instance did not answer (its breaker counted a failure). */
  connectionLevel: boolean;
}

/** What one attempt gave. */
export type Outcome = { ok: true; result: unknown } | Failure;

/**
 * Calls `method` on `member` within `deadline` (ms since the epoch,
 * `Infinity` for none), dialing first when needed, and records the
 * outcome in its breaker and latency.
 */
export async function callOnce(
  member: Member,
  method: string,
  args: unknown[],
  deadline: number,
  clock: Clock,
  idempotent: boolean,
  learn: boolean,
  signal?: AbortSignal,
): Promise<Outcome> {
  const start = clock.now();
  member.outstanding++;
  let sent = false;
  try {
    if (!member.found.client.connected || learn && !member.asked) {
      await member.connect(learn);
    }
    const left = deadline === Infinity ? 0 : deadline - clock.now();
    if (deadline !== Infinity && left <= 0) {
      throw new KiteError("timeout", `No response to "${method}" in time`);
    }
    sent = true;
    const result = await member.found.client.call(method, args, {
      timeoutMs: left,
      signal,
    });
    succeeded(member, start, clock);
    return { ok: true, result };
  } catch (err) {
    member.outstanding--;
    return failed(member, method, err, sent, idempotent, signal);
  }
}

/** Records an answer `member` gave to a call started at `start`. */
export function succeeded(member: Member, start: number, clock: Clock): void {
  member.outstanding--;
  member.breaker.success();
  member.observe(clock.now() - start);
  member.closeIfIdle();
}

/**
 * Judges a failed call to `member` (`outstanding` already counted down):
 * its breaker counts it when the instance did not answer.
 */
export function failed(
  member: Member,
  method: string,
  err: unknown,
  sent: boolean,
  idempotent: boolean,
  signal: AbortSignal | undefined,
): Failure {
  member.closeIfIdle();
  const error = KiteError.from(err);
  // Given up by the caller: says nothing about the instance.
  if (signal?.aborted) {
    return { ok: false, error, connectionLevel: false, retry: false };
  }
  const kind = judge(error, sent);
  if (kind === "unreachable" || kind === "lost") member.breaker.failure();
  else member.breaker.success();
  return {
    ok: false,
    error,
    connectionLevel: kind === "unreachable" || kind === "lost",
    retry: kind === "unreachable" || kind === "refused" ||
      (kind === "lost" && (idempotent || member.idempotent.has(method))),
  };
}

/**
 * - `unreachable`: the call never left (dial failure, no session, send error)
 * - `refused`: the instance shed it unrun (`requestLimitError`)
 * - `lost`: sent, then the connection dropped or the time ran out
 * - `answered`: the instance's own (application) error
 *
 * Errors from the remote carry its request id; ours have none, so a
 * handler that passes on a `disconnect` of its own callee is an answer.
 */
function judge(
  error: KiteError,
  sent: boolean,
): "unreachable" | "refused" | "lost" | "answered" {
  if (error.type === "requestLimitError") return "refused";
  if (error.id !== "") return "answered";
  if (error.type === "timeout") return "lost";
  if (!sent || error.type === "sendError") return "unreachable";
  if (error.type === "disconnect") return "lost";
  return "answered";
}
