/**
 * HTTP/1.1 spoken by hand over TCP, for requests no well-behaved client
 * sends: a body that is declared but never sent, a chunked body that grows
 * until the server stops it, a request head cut in half.
 *
 * @module
 */
import { within } from "./wait.ts";

const encoder = new TextEncoder();

/** A response as read off the socket. */
export interface RawResponse {
  /** Status code, e.g. 413. */
  status: number;
  /** Head and whatever of the body arrived with it. */
  text: string;
}

/** Reads until a full response head has arrived (or the socket closes). */
async function readHead(conn: Deno.Conn): Promise<RawResponse> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
    if (text.includes("\r\n\r\n")) {
      // Give the start of the body a moment to come with it.
      const more = await Promise.race([
        conn.read(buf),
        new Promise<null>((r) => setTimeout(() => r(null), 50)),
      ]).catch(() => null);
      if (typeof more === "number") {
        text += new TextDecoder().decode(buf.subarray(0, more));
      }
      break;
    }
  }
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  if (!m) throw new Error(`no HTTP response: ${JSON.stringify(text)}`);
  return { status: Number(m[1]), text };
}

/** The head of a request to `path`, with extra header lines. */
function head(method: string, path: string, headers: string[]): string {
  return [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", ...headers, "", ""]
    .join("\r\n");
}

/**
 * Sends a head declaring a `declared`-byte body, then only a few bytes of
 * it, and returns the response: a server that waits for the body never
 * answers and the guard fails.
 */
export async function declaredBody(
  port: number,
  method: string,
  path: string,
  declared: number,
  extra: string[] = [],
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(
      head(method, path, [`Content-Length: ${declared}`, ...extra]) + '["x',
    ));
    return await within(readHead(conn), `${method} ${path}: an answer`);
  } finally {
    conn.close();
  }
}

/**
 * Sends a chunked body in 16 KiB chunks until the server answers or
 * `maxBytes` are written; returns the answer and how much was written.
 */
export async function growingBody(
  port: number,
  method: string,
  path: string,
  maxBytes: number,
  extra: string[] = [],
): Promise<RawResponse & { written: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(
      head(method, path, ["Transfer-Encoding: chunked", ...extra]),
    ));
    let answered: RawResponse | undefined;
    const answer = readHead(conn).then((r) => answered = r);
    answer.catch(() => {});
    const payload = "x".repeat(16 * 1024);
    const chunk = encoder.encode(
      `${payload.length.toString(16)}\r\n${payload}\r\n`,
    );
    let written = 0;
    while (!answered && written < maxBytes) {
      try {
        await within(conn.write(chunk), "a chunk to be taken");
      } catch {
        break; // the server closed its side or stopped reading
      }
      written += payload.length;
      // Let the answer in between chunks.
      await new Promise((r) => setTimeout(r, 0));
    }
    const response = await within(answer, `${method} ${path}: an answer`);
    return { ...response, written };
  } finally {
    conn.close();
  }
}

/** Header lines of a WebSocket upgrade request. */
export const UPGRADE: string[] = [
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version: 13",
];

/** Sends one request without a body and returns the response head. */
export async function rawRequest(
  port: number,
  method: string,
  path: string,
  extra: string[] = [],
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(head(method, path, extra)));
    return await within(readHead(conn), `${method} ${path}: an answer`);
  } finally {
    conn.close();
  }
}

/** Opens `count` connections that each send half a request head and wait. */
export async function halfHeads(
  port: number,
  count: number,
): Promise<{ conns: Deno.Conn[]; refused: number }> {
  const conns: Deno.Conn[] = [];
  let refused = 0;
  for (let i = 0; i < count; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(
        encoder.encode("GET /kite/info HTTP/1.1\r\nHost: x\r\n"),
      );
    } catch {
      refused++;
    }
  }
  return { conns, refused };
}

/** Reads one answer (head, then a Content-Length body); its status line. */
export async function readResponse(conn: Deno.Conn): Promise<string> {
  let bytes = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const text = new TextDecoder().decode(bytes);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const length = Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? 0);
      if (bytes.length >= end + 4 + length) return text.split("\r\n")[0];
    }
    const n = await conn.read(buf);
    if (n === null) return "<closed>";
    bytes = new Uint8Array([...bytes, ...buf.subarray(0, n)]);
  }
}

/** The first WebSocket frame's opcode and payload text (a close: its code). */
export async function readFrame(
  conn: Deno.Conn,
): Promise<Record<string, unknown>> {
  let bytes: number[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    if (bytes.length >= 2) {
      const len7 = bytes[1] & 0x7f;
      const start = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
      const len = len7 === 126 ? (bytes[2] << 8) | bytes[3] : len7;
      if (bytes.length >= start + len) {
        const payload = new Uint8Array(bytes.slice(start, start + len));
        const opcode = bytes[0] & 0x0f;
        return opcode === 8
          ? { opcode, code: (payload[0] << 8) | payload[1] }
          : { opcode, text: new TextDecoder().decode(payload) };
      }
    }
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return { closed: true };
    bytes = [...bytes, ...buf.subarray(0, n)];
  }
}

/**
 * A masked WebSocket frame (`opcode` 0x81 text, 0x82 binary; mask 0, so
 * the payload goes as it is) carrying a `kite.ping` call.
 */
export function pingFrame(opcode: number): Uint8Array {
  const call = encoder.encode(JSON.stringify({
    method: "kite.ping",
    arguments: [{
      kite: { id: "1", username: "x", environment: "x", name: "x" },
      withArgs: [],
      responseCallback: "[Function]",
    }],
    callbacks: { 0: ["0", "responseCallback"] },
    links: [],
  }));
  const frame = new Uint8Array(8 + call.length);
  frame.set([opcode, 0x80 | 126, call.length >> 8, call.length & 0xff]);
  frame.set(call, 8);
  return frame;
}
