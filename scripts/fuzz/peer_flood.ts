/**
 * The fuzzer's stateful attack on slots: one peer (127.0.0.1) opens XHR
 * sessions and then WebSockets until the server refuses it, holds them
 * while the well-behaved clients keep calling, then lets go; afterwards a
 * new session must be accepted again.
 *
 * @module
 */

/** Per-address caps the fuzzed servers run with. */
export interface PeerCaps {
  /** `maxConnectionsPerAddress`. */
  connections: number;
  /** `maxXhrSessionsPerAddress`. */
  xhrSessions: number;
}

/** What one flood did. */
export interface FloodResult {
  /** XHR sessions accepted before the first refusal. */
  xhrAccepted: number;
  /** WebSockets accepted before the first refusal. */
  wsAccepted: number;
  /** Problems found (empty when the server behaved). */
  problems: string[];
}

/** Opens one XHR session; its status and text. */
async function openXhr(
  origin: string,
  id: string,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${origin}/kite/1/${id}/xhr`, {
    method: "POST",
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, text: await res.text() };
}

/**
 * Keeps an open XHR session alive by keeping a poll attached (a session
 * nobody polls expires after the disconnect delay, which a loaded machine
 * can outlast while the flood goes on); `release` aborts the poll, which
 * ends the session at once.
 */
function holdXhr(
  origin: string,
  id: string,
): { release(): Promise<void>; ended: string | undefined } {
  const abort = new AbortController();
  const hold = {
    ended: undefined as string | undefined,
    release: () => {
      abort.abort();
      return polling;
    },
  };
  const polling = (async () => {
    while (!abort.signal.aborted) {
      const res = await fetch(`${origin}/kite/1/${id}/xhr`, {
        method: "POST",
        signal: abort.signal,
      });
      const text = await res.text();
      // A heartbeat: poll again. An open: the session expired before this
      // poll came (a stall longer than the disconnect delay) and the poll
      // opened it anew, so it holds a slot again. Anything else (a close,
      // a refusal) ends the hold.
      if (text !== "h\n" && text !== "o\n") {
        hold.ended = `${res.status} ${text.slice(0, 60)}`;
        return;
      }
    }
  })().catch(() => {});
  return hold;
}

/** Opens one SockJS WebSocket; the socket, or the refusal's status text. */
function openWebSocket(origin: string, id: string): Promise<WebSocket | null> {
  const socket = new WebSocket(
    `${origin.replace("http", "ws")}/kite/1/${id}/websocket`,
  );
  return new Promise((resolve) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = () => resolve(null);
  });
}

/**
 * Floods `origin` from this address: XHR sessions until refused, then
 * WebSockets until refused (at most `caps` + 10 of each), checking that
 * the refusals name the per-address limits. `pause` runs while every slot
 * is held; then all are let go and one more session must be accepted
 * within `recoverMs`.
 */
export async function peerFlood(
  origin: string,
  caps: PeerCaps,
  pause: () => Promise<void>,
  recoverMs: number,
): Promise<FloodResult> {
  const problems: string[] = [];
  const tag = crypto.randomUUID().slice(0, 8);
  // All at once: unpolled XHR sessions expire, so one after the other
  // would never reach the cap on a slow machine.
  // Each accepted session is held by a poll from the moment it opens.
  const held: ReturnType<typeof holdXhr>[] = [];
  const opens = await Promise.all(
    Array.from(
      { length: caps.xhrSessions + 10 },
      async (_, i) => {
        const id = `flood${tag}x${i}`;
        const r = await openXhr(origin, id);
        if (r.text === "o\n") held.push(holdXhr(origin, id));
        return r;
      },
    ),
  );
  const xhrAccepted = opens.filter((r) => r.text === "o\n").length;
  const refusal = opens.find((r) => r.status === 503)?.text ?? "";
  for (const r of opens) {
    if (r.status !== 503 && r.text !== "o\n") {
      problems.push(`XHR open answered ${r.status} ${r.text.slice(0, 80)}`);
    }
  }
  if (!/maxXhrSessionsPerAddress/.test(refusal)) {
    problems.push(
      `${xhrAccepted} XHR sessions, then no refusal naming maxXhrSessionsPerAddress: ${refusal}`,
    );
  }
  const opened = await Promise.all(
    Array.from(
      { length: caps.connections + 10 },
      (_, i) => openWebSocket(origin, `flood${tag}w${i}`),
    ),
  );
  const sockets = opened.filter((s): s is WebSocket => s !== null);
  if (sockets.length === opened.length) {
    problems.push(`${sockets.length} WebSockets and no refusal`);
  }
  // The same refusal over plain HTTP, to read its text. A session the fuzz
  // inputs left behind may expire during the flood and free its slot: a
  // new session may then take it, and is held like the others. Once every
  // slot is ours, the next one must be refused.
  let extras = 0;
  let extra = await openXhr(origin, `flood${tag}extra0`);
  while (extra.text === "o\n" && extras < caps.xhrSessions) {
    held.push(holdXhr(origin, `flood${tag}extra${extras}`));
    extras++;
    extra = await openXhr(origin, `flood${tag}extra${extras}`);
  }
  if (extra.status !== 503) {
    const ended = held.filter((h) => h.ended).map((h) => h.ended);
    const gone = sockets.filter((s) => s.readyState !== WebSocket.OPEN).length;
    problems.push(
      `with every slot held, a new session got ${extra.status} ` +
        `(${xhrAccepted} XHR held, ${extras} more accepted, ${ended.length} holds ended ${
          JSON.stringify(ended.slice(0, 3))
        }; ${sockets.length} WebSockets, ${gone} no longer open)`,
    );
  }
  await pause();
  const closed = sockets.map((s) =>
    new Promise<void>((resolve) => {
      if (s.readyState === WebSocket.CLOSED) return resolve();
      s.onclose = () => resolve();
      s.close();
    })
  );
  await Promise.all(closed);
  await Promise.all(held.map((h) => h.release()));
  // The server forgets an XHR session when its poll is aborted; let it see
  // the aborts.
  const deadline = Date.now() + recoverMs;
  for (let i = 0;; i++) {
    const r = await openXhr(origin, `flood${tag}after${i}`);
    if (r.text === "o\n") break;
    if (Date.now() > deadline) {
      problems.push(`no session accepted ${recoverMs} ms after the flood`);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { xhrAccepted, wsAccepted: sockets.length, problems };
}
