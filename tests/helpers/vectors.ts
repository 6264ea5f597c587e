/**
 * Reads the recorded Go kite and kite.js traffic kept in this repository
 * under `tests/fixtures/vectors/` (how it was recorded: the README.md beside
 * each peer's recordings).
 *
 * @module
 */

/** Directory holding `go-kite/` and `kitejs/`, inside the repository. */
export const VECTORS_URL: URL = new URL(
  "../fixtures/vectors/",
  import.meta.url,
);

/** The text of one fixture file, e.g. `go-kite/kontrol-public-key.pem`. */
export function readVectorText(file: string): string {
  return Deno.readTextFileSync(new URL(file, VECTORS_URL));
}

/** One dnode message found in a recording, with where it came from. */
export interface RecordedMessage {
  /** Recording file, e.g. `go-kite/02-callbacks.jsonl`. */
  file: string;
  /** `c2s` or `s2c`. */
  dir: string;
  /** The exact dnode JSON text. */
  text: string;
}

/** Every line of a recording, parsed. */
export function readRecording(file: string): Record<string, unknown>[] {
  return readVectorText(file).split("\n").filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The recording files of one peer (`go-kite` or `kitejs`). */
export function recordingFiles(peer: "go-kite" | "kitejs"): string[] {
  return [...Deno.readDirSync(new URL(`${peer}/`, VECTORS_URL))]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".jsonl")).sort().map((n) => `${peer}/${n}`);
}

/** Splits a SockJS or raw payload into dnode message texts. */
function messagesOf(payload: string): string[] {
  if (payload.startsWith("a[")) return JSON.parse(payload.slice(1));
  if (payload.startsWith("[")) {
    const arr = JSON.parse(payload);
    return Array.isArray(arr) && arr.every((x) => typeof x === "string")
      ? arr
      : [];
  }
  if (payload.startsWith("{") && payload.includes('"method"')) return [payload];
  return [];
}

/** All dnode messages carried in WebSocket frames and XHR bodies of a recording. */
export function recordedMessages(file: string): RecordedMessage[] {
  const out: RecordedMessage[] = [];
  for (const r of readRecording(file)) {
    const payload = (r.frame ?? r.text ??
      (r.type === "http" || r.kind === "http-body" ? r.body : undefined)) as
        | string
        | undefined;
    if (typeof payload !== "string" || r.kind === "http-head") continue;
    for (const line of payload.split("\n")) {
      try {
        for (const text of messagesOf(line)) {
          out.push({ file, dir: String(r.dir), text });
        }
      } catch {
        // not a message payload (welcome text, info JSON, headers)
      }
    }
  }
  return out;
}

/**
 * The headers a recorded sockjs-go XHR answer (to a Go client, which sends
 * no `Origin`) has where ours differ on purpose, following the SockJS
 * protocol test-suite and sockjs-node (docs/protocol.md §1.2): `Cache-Control`
 * also says `no-transform`, and with no `Origin` there is no
 * `Access-Control-Allow-Credentials`. Every other header is as recorded.
 */
export function asSockjsNodeAnswers(
  recorded: Record<string, string | null>,
): Record<string, string | null> {
  const out = { ...recorded };
  if ("cache-control" in out) {
    out["cache-control"] =
      "no-store, no-cache, no-transform, must-revalidate, max-age=0";
  }
  if ("access-control-allow-credentials" in out) {
    out["access-control-allow-credentials"] = null;
  }
  return out;
}
